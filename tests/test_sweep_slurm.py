"""`dilbench sweep --launcher slurm` without a cluster: the experiment file's `slurm:` section, the job
script, the job record and --status against fake sbatch/squeue/scontrol commands, an array task's
warning-signal requeue with a fake trainer, and the multi-worker cluster read from a Slurm step.

The same paths run against a real Slurm in tests/test_slurm.py (`make test-slurm`).
"""

from __future__ import annotations

import json
import os
import signal
import stat
import sys
import threading
import time
from pathlib import Path

import pytest
from toolkit import QUICKSTART, invoke, sweep, two_cases

import dilbench.sweep.execute as execute
from dilbench.config import ConfigError
from dilbench.errors import UsageError
from dilbench.sweep.experiment import load_experiment
from dilbench.sweep.slurm_task import run_task
from dilbench.training import cluster

EXPERIMENT = two_cases("demo") + """\
profiles:
  quick: {train.epochs: 2, model.channels: 4}
slurm:
  partition: cpu
  cpus_per_run: 4
  sbatch_options: [--qos=normal]
"""


@pytest.fixture
def experiment(make_experiment) -> Path:
    return make_experiment(EXPERIMENT)


def fake_commands(directory: Path, monkeypatch, **scripts: str) -> None:
    """Shell scripts named like Slurm's commands, first on PATH."""
    directory.mkdir(exist_ok=True)
    for name, body in scripts.items():
        path = directory / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")


@pytest.mark.parametrize("line, message", [
    ("  partiton: cpu", "experiment.yaml:11: slurm.partiton: unknown key (did you mean 'partition'?)"),
    ("  time: soon", "experiment.yaml:11: slurm.time: expected Slurm's format, e.g. 30, 2:00:00 or 1-12:00:00; got 'soon'"),
    ("  mem: lots", "experiment.yaml:11: slurm.mem: expected Slurm's format, e.g. 4000 or 16G; got 'lots'"),
    ("  cpus_per_run: 0", "experiment.yaml:11: slurm.cpus_per_run: must be >= 1, got 0"),
    ("  sbatch_options: [account=lab]", "experiment.yaml:11: slurm.sbatch_options[0]: expected an sbatch option such as --account=lab"),
    ("  sbatch_options: [--array=0-9]", "experiment.yaml:11: slurm.sbatch_options[0]: --array is set by the launcher"),
])
def test_the_slurm_section_is_validated_with_file_and_line(experiment, line, message):
    experiment.write_text(EXPERIMENT.replace("  partition: cpu\n  cpus_per_run: 4\n  sbatch_options: [--qos=normal]", line))
    with pytest.raises(ConfigError) as err:
        load_experiment(experiment)
    assert message in str(err.value)


def test_dry_run_shows_the_job_script_with_file_and_command_line_resources(experiment):
    result = sweep(experiment, "--launcher", "slurm", "--dry-run", "--jobs", "3", "--partition", "gpu", "--time", "90",
                   "--gpus-per-run", "1", "--mem", "8G", "--sbatch-option=--account=lab")
    assert result.exit_code == 0, result.output
    script = result.output.split("would submit this job script:\n", 1)[1]
    directives = [line.split(" ", 1)[1] for line in script.splitlines() if line.startswith("#SBATCH")]
    assert directives == [
        "--job-name=dilbench-demo-quick", "--array=0-3%3", "--ntasks=1", f"--chdir={Path.cwd()}",
        f"--output={experiment.parent / 'runs' / 'quick' / '.sweep' / 'slurm' / '%A_%a.out'}", "--open-mode=append",
        "--requeue", "--signal=B:USR1@90",
        "--partition=gpu", "--time=90", "--cpus-per-task=4", "--gres=gpu:1", "--mem=8G",  # the command line over the file
        "--qos=normal", "--account=lab",  # the file's sbatch options, then the command line's (a later one wins)
    ]
    assert "RUNS=(a-seed0 a-seed1 c-seed0 c-seed1)" in script
    task = script.rstrip().splitlines()[-1]
    assert task.startswith(f"exec {sys.executable} -m dilbench.sweep.slurm_task {experiment} --command ")
    assert task.endswith('--profile quick --run "${RUNS[$SLURM_ARRAY_TASK_ID]}"')
    assert sorted(p.name for p in experiment.parent.iterdir()) == ["experiment.yaml"]  # wrote nothing


@pytest.mark.parametrize("args, message", [
    (["--partition", "gpu"], "Error: --partition: only for --launcher slurm"),
    (["--no-wait", "--mem", "4G"], "Error: --mem, --no-wait: only for --launcher slurm"),
    (["--launcher", "slurm", "--time", "soon"], "Error: --time: expected Slurm's format, e.g. 30, 2:00:00 or 1-12:00:00; got 'soon'"),
    (["--launcher", "slurm", "--sbatch-option", "qos"], "Error: --sbatch-option: expected an sbatch option such as --account=lab"),
    (["--status", "--dry-run"], "Error: --status only shows the runs; leave out --dry-run and --report-only"),
])
def test_bad_slurm_options_are_one_line_usage_errors(experiment, args, message):
    result = invoke("sweep", experiment, *args, catch_exceptions=True)
    assert result.exit_code == 2
    assert message in result.output


def test_submit_records_each_runs_array_task_and_queued_runs_are_not_submitted_twice(experiment, tmp_path, monkeypatch):
    squeue = tmp_path / "squeue.txt"
    squeue.write_text("")
    fake_commands(tmp_path / "bin", monkeypatch,
                  sbatch=f'cp "$2" {tmp_path}/submitted.sh; echo 4242',
                  squeue=f"cat {squeue}", sacct="exit 1")
    result = sweep(experiment, "--launcher", "slurm", "--no-wait")
    assert result.exit_code == 0, result.output
    assert "submitted job array 4242: 4 run(s)" in result.output
    assert f"not waiting: `dilbench sweep {experiment} --profile quick --status` shows the runs" in result.output
    slurm_dir = experiment.parent / "runs" / "quick" / ".sweep" / "slurm"
    assert json.loads((slurm_dir / "jobs.json").read_text()) == {
        "a-seed0": "4242_0", "a-seed1": "4242_1", "c-seed0": "4242_2", "c-seed1": "4242_3"}
    (kept,) = slurm_dir.glob("sweep-*.sh")
    assert kept.read_text() == (tmp_path / "submitted.sh").read_text()  # the script sbatch got, kept beside the runs

    squeue.write_text("4242_0|PENDING|Priority\n4242_1|RUNNING|None\n4242_2|CANCELLED|None\n999_0|RUNNING|None\n")
    again = sweep(experiment, "--launcher", "slurm", "--dry-run")
    assert "  busy   a-seed0  Slurm job 4242_0 PENDING (Priority)" in again.output
    assert "  busy   a-seed1  Slurm job 4242_1 RUNNING" in again.output
    assert "RUNS=(c-seed0 c-seed1)" in again.output  # the cancelled one and the one Slurm forgot go again

    status = sweep(experiment, "--status")
    assert status.exit_code == 0
    lines = status.output.splitlines()
    assert lines[1:5] == [
        "  queued       a-seed0  Slurm job 4242_0 PENDING (Priority)",
        "  queued       a-seed1  Slurm job 4242_1 RUNNING",
        "  not started  c-seed0  Slurm job 4242_2 CANCELLED",
        "  not started  c-seed1  Slurm job 4242_3",
    ]
    page = experiment.parent / "results" / "quick" / "RESULTS.md"
    assert lines[5:] == ["queued 2, not started 2", f"results page: {page} (not written yet)"]

    fake_commands(tmp_path / "bin", monkeypatch, squeue="echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1")
    down = invoke("sweep", experiment, "--launcher", "slurm", "--no-wait", catch_exceptions=True)
    assert down.exit_code == 1  # never "nothing is queued, submit everything again"
    assert "Error: `squeue --me --array --noheader --states=all --format=%i|%T|%r` failed: cannot tell" in down.output
    assert len(list(slurm_dir.glob("sweep-*.sh"))) == 1
    status = sweep(experiment, "--status")
    assert status.exit_code == 0 and status.output.splitlines()[-1].startswith("Slurm jobs unknown: `squeue")


# An array task's child: `train CONFIG --runs-dir D` or `train --resume RUN`. The first start says
# `running` and waits for SIGTERM (then `interrupted`, as the trainer does); a resume completes.
FAKE_TRAINER = r'''
import json, os, secrets, signal, sys, time
import yaml

args = sys.argv[1:]
resumed = args[1] == "--resume"
if resumed:
    run = args[2]
else:
    source = open(args[1]).read()
    run = os.path.join(args[args.index("--runs-dir") + 1], f"{yaml.safe_load(source)['name']}-20260101-000000-{secrets.token_hex(2)}")
    os.makedirs(run)
    open(os.path.join(run, "config.yaml"), "w").write(source)
meta_file = os.path.join(run, "meta.json")
meta = json.load(open(meta_file)) if resumed else {"created": "2026-01-01T00:00:00+00:00"}

def write(status, **more):
    meta.update(status=status, **more)
    json.dump(meta, open(meta_file, "w"))

def stop(signum, frame):
    write("interrupted", error="interrupted at epoch 1, step 3; checkpoint saved")
    sys.exit(130)

signal.signal(signal.SIGTERM, stop)
write("running", resumes=meta.get("resumes", []) + ([1] if resumed else []))
if not resumed:
    open(os.environ["FAKE_STARTED"], "w").close()
    time.sleep(60)
record = {"epoch": 1, "train_loss": 1.0, "train_acc": 0.6, "eval_loss": 1.0, "eval_acc": 0.5, "eval_split": "test",
          "seconds": 2.0, "images_per_s": 100.0}
open(os.path.join(run, "metrics.jsonl"), "w").write(json.dumps(record) + "\n")
write("completed", ended="2026-01-01T00:05:00+00:00", final_eval_acc=0.5, error=None)
'''


def test_an_array_task_checkpoints_and_requeues_on_the_time_limit_warning_then_resumes(tmp_path, monkeypatch):
    path = tmp_path / "exp" / "experiment.yaml"
    path.parent.mkdir()
    path.write_text(f"name: one\nbase: {QUICKSTART}\ncases:\n  a: {{schedule: standard}}\n")
    trainer = tmp_path / "fake_train.py"
    trainer.write_text(FAKE_TRAINER)
    monkeypatch.setattr(execute, "TRAIN", (sys.executable, str(trainer)))
    started = tmp_path / "started"
    monkeypatch.setenv("FAKE_STARTED", str(started))
    fake_commands(tmp_path / "bin", monkeypatch, scontrol=f'echo "$@" >> {tmp_path}/scontrol.txt')
    monkeypatch.setenv("SLURM_JOB_ID", "77")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "3")

    def warn_when_training() -> None:  # Slurm's `--signal=B:USR1@90`, once the run trains and the task listens
        deadline = time.monotonic() + 60
        while not (started.exists() and signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, None)):
            if time.monotonic() > deadline:
                return
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGUSR1)

    sigterm = signal.getsignal(signal.SIGTERM)
    warner = threading.Thread(target=warn_when_training)
    warner.start()
    try:
        code = run_task(path, None, None, "a", False, "dilbench sweep exp --launcher slurm")
    finally:
        warner.join()
        signal.signal(signal.SIGTERM, sigterm)  # the task ignores SIGTERM after requeueing itself
    assert code == 0
    assert (tmp_path / "scontrol.txt").read_text() == "requeue 77\n"
    (run,) = (path.parent / "runs").glob("a-*")
    assert json.loads((run / "meta.json").read_text())["status"] == "interrupted"
    assert not (path.parent / "results").exists()

    assert run_task(path, None, None, "a", False, "dilbench sweep exp --launcher slurm") == 0  # the requeued start
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["resumes"] == [1]
    assert meta["sweep"]["experiment"] == "one"  # the last run to complete wrote the page
    assert "dilbench sweep exp --launcher slurm" in (path.parent / "results" / "RESULTS.md").read_text()
    log = (path.parent / "runs" / "logs" / "a.log").read_text()
    assert "train --resume" in log and (tmp_path / "scontrol.txt").read_text() == "requeue 77\n"  # no second requeue


# ---- multi-worker runs: the cluster from the Slurm step ---------------------------------------------
@pytest.fixture
def slurm_step(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    for key, value in {"SLURM_JOB_ID": "5", "SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_NODELIST": "node[07-08]",
                       "SLURM_STEP_TASKS_PER_NODE": "1(x2)", "SLURM_PROCID": "1"}.items():
        monkeypatch.setenv(key, value)


def test_workers_know_their_task_from_tf_config_or_the_slurm_step(slurm_step, monkeypatch):
    assert cluster.worker_task() == ("worker", 1) and not cluster.is_chief_task(("worker", 1))
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert cluster.worker_task() == ("worker", 0) and cluster.is_chief_task(("worker", 0))
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["h:1"], "worker": ["h:2"]}, "task": {"type": "worker", "index": 0}}))
    assert cluster.worker_task() == ("worker", 0) and not cluster.is_chief_task(("worker", 0))  # $TF_CONFIG wins
    assert cluster.slurm_resolver() is None
    monkeypatch.delenv("TF_CONFIG")
    monkeypatch.delenv("SLURM_STEP_NUM_TASKS")  # a batch script without srun: no cluster
    with pytest.raises(UsageError, match="start every worker with `srun` inside a Slurm job, or set \\$TF_CONFIG"):
        cluster.worker_task()


def test_the_slurm_resolver_builds_the_cluster_of_the_step(slurm_step):
    resolver = cluster.slurm_resolver()
    port = cluster.port_base()
    assert port == 20000 + 5 * 16
    assert resolver.cluster_spec().as_dict() == {"worker": [f"node07:{port}", f"node08:{port}"]}
    assert resolver.get_task_info() == ("worker", 1)
    assert resolver.num_accelerators() == {"GPU": 0}  # what this process sees, not a count it made up
    assert "CUDA_VISIBLE_DEVICES" not in os.environ  # Slurm's GPU binding is left alone
