"""Sweeps and multi-worker runs on a real Slurm: `make test-slurm` (marked `slurm`, not in `make test`).

The cluster is the one that answers (`scontrol ping`), else the single-node one `.ci/slurm up` starts
on this machine (root; Debian's slurm-wlm + munge), stopped again when the session ends. Without
either, every test skips and says why. Runs are tiny (the quickstart config with 2 channels on a few
hundred MNIST images; 8 channels on 1,280 for the runs stopped halfway), and every wait polls squeue or the
run directory with a deadline.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from toolkit import REPO, child_env, meta, study_trials, tiny_profile, tiny_search, train_args

CLUSTER = REPO / ".ci" / "slurm"
DEADLINE = 600  # seconds for any one wait: generous, as a requeued job waits out the cluster's cred_expire
pytestmark = pytest.mark.slurm

SMALL = ["model.hidden=[8]", "data.test_subset=200", "runtime.deterministic=false"]  # on top of the toolkit's TINY
SMOKE = {"name": "smoke", "cases": {"a": {"schedule": "standard"}, "b": {"schedule": "unfair_back"}}, "grid": {"seed": [0, 1]},
         "profiles": {"tiny": tiny_profile(*SMALL, "model.channels=2", "data.train_subset=256", "train.epochs=1")},
         "slurm": {"cpus_per_run": 1}}
# One run long enough to stop in the middle: 3 epochs of 1,280 images (20 steps, seconds each).
LONG = {"name": "long", "cases": {"a": {"schedule": "standard"}},
        "profiles": {"tiny": tiny_profile(*SMALL, "model.channels=8", "data.train_subset=1280", "train.epochs=3")},
        "slurm": {"cpus_per_run": 1}}


def cluster_answers() -> bool:
    ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
    nodes = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True)
    return ping.returncode == 0 and "UP" in ping.stdout and any(
        state.rstrip("*") in ("idle", "mixed", "allocated") for state in nodes.stdout.split())


@pytest.fixture(scope="session")
def slurm() -> Iterator[None]:
    """A Slurm cluster to submit to; one started here is stopped at the end of the session."""
    if shutil.which("sbatch") is None or shutil.which("scontrol") is None:
        pytest.skip("Slurm is not installed (no sbatch on PATH); `.ci/slurm install` installs it on Debian, as root")
    if cluster_answers():
        yield
        return
    if os.geteuid() != 0:
        pytest.skip("no Slurm controller answers, and starting one here (`.ci/slurm up`) needs root")
    started = subprocess.run([str(CLUSTER), "up"], capture_output=True, text=True, timeout=180)
    if started.returncode != 0:
        reason = (started.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"Slurm could not start on this machine (`.ci/slurm up`: {reason})")
    try:
        yield
    finally:
        subprocess.run([str(CLUSTER), "down"], capture_output=True, text=True, timeout=180)


@pytest.fixture
def experiment(make_experiment, slurm) -> Iterator[Callable[..., Path]]:
    """make_experiment(); every job the sweeps of its files submitted is cancelled at the end of the test."""
    written: list[Path] = []

    def write(text: str | None = None, **sections) -> Path:
        written.append(make_experiment(text, **sections))
        return written[-1]

    yield write
    for path in written:
        jobs = jobs_of(path)
        if jobs:
            subprocess.run(["scancel", *sorted({job.split("_")[0] for job in jobs.values()})], capture_output=True)


def dilbench(path: Path, *args: str, timeout: float = DEADLINE) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dilbench", "sweep", str(path), *args], cwd=path.parent, env=child_env(),
                          capture_output=True, text=True, timeout=timeout)


def runs_dir(path: Path) -> Path:
    return path.parent / "runs" / "tiny"


def jobs_of(path: Path) -> dict[str, str]:
    record = runs_dir(path) / ".sweep" / "slurm" / "jobs.json"
    return json.loads(record.read_text()) if record.exists() else {}


def run_dirs(path: Path, name: str) -> list[Path]:
    return sorted(runs_dir(path).glob(f"{name}-*-*-*"))


def epochs(run: Path) -> list[int]:
    text = (run / "metrics.jsonl").read_text() if (run / "metrics.jsonl").exists() else ""
    return [json.loads(line)["epoch"] for line in text.splitlines()]


def job_state(job: str) -> str | None:
    """The job's state while Slurm still holds it (squeue), else None."""
    out = subprocess.run(["squeue", "--array", "--noheader", "--states=all", f"--jobs={job}", "--format=%T"],
                         capture_output=True, text=True).stdout.split()
    return out[0] if out else None


def wait_until(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    """Poll `condition` (a look at squeue or the run directory) until it holds; fail after `deadline` seconds."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline:.0f}s waiting for {what}")
        time.sleep(0.2)


def in_epoch_2(path: Path) -> bool:
    """The run is inside its second epoch: its log has a progress line of epoch 2 (at steps 4, 8, 12, 16 of 20)."""
    runs = run_dirs(path, "a")
    return bool(runs) and (runs[0] / "log.txt").exists() and "epoch 2/3 4/20 " in (runs[0] / "log.txt").read_text()


def job_over(job: str) -> bool:
    return job_state(job) in (None, "COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "OUT_OF_MEMORY")


def test_smoke_sweep_runs_as_one_array_and_the_last_job_writes_the_page(experiment):
    path = experiment(**SMOKE)
    submitted = dilbench(path, "--launcher", "slurm", "--jobs", "2", "--no-wait")
    assert submitted.returncode == 0, submitted.stderr
    assert "submitted job array" in submitted.stdout and "start 4" in submitted.stdout
    jobs = jobs_of(path)
    array = jobs["a-seed0"].split("_")[0]
    assert jobs == {name: f"{array}_{i}" for i, name in enumerate(["a-seed0", "a-seed1", "b-seed0", "b-seed1"])}
    (script,) = (runs_dir(path) / ".sweep" / "slurm").glob("sweep-*.sh")
    assert "#SBATCH --array=0-3%2" in script.read_text() and "#SBATCH --cpus-per-task=1" in script.read_text()
    page = path.parent / "results" / "tiny" / "RESULTS.md"
    wait_until(lambda: all(job_over(job) for job in jobs.values()), "the array's 4 tasks to end")
    assert page.is_file(), "no job wrote the results page"  # nobody else could: the sweep did not wait
    for name in jobs:
        (run,) = run_dirs(path, name)
        assert meta(run)["status"] == "completed" and epochs(run) == [1]
        assert meta(run)["sweep"]["experiment"] == "smoke"  # tagged by the page's writer
    outputs = "".join(p.read_text() for p in (runs_dir(path) / ".sweep" / "slurm").glob(f"{array}_*.out"))
    assert outputs.count("wrote ") >= 1 and f"{page.relative_to(path.parent)}" in outputs
    assert "| a-seed0 |" in page.read_text() and "| b-seed1 |" in page.read_text()
    status = dilbench(path, "--status")
    assert status.returncode == 0, status.stderr
    assert "completed 4" in status.stdout and f"Slurm job {array}_3" in status.stdout
    again = dilbench(path, "--launcher", "slurm")  # nothing left to do: nothing submitted
    assert again.returncode == 0 and "skip 4" in again.stdout and "submitted" not in again.stdout


def test_scancel_mid_run_then_rerunning_the_sweep_resumes_it(experiment):
    path = experiment(**LONG)
    assert dilbench(path, "--launcher", "slurm", "--no-wait").returncode == 0
    job = jobs_of(path)["a"]
    wait_until(lambda: in_epoch_2(path), "the run to be inside its second epoch")
    (run,) = run_dirs(path, "a")
    subprocess.run(["scancel", job], check=True)
    wait_until(lambda: job_over(job), f"job {job} to end after scancel")
    assert meta(run)["status"] == "interrupted", meta(run)  # SIGTERM: a checkpoint, then `interrupted`
    done = epochs(run)
    assert done == [1]
    rerun = dilbench(path, "--launcher", "slurm")  # waits for the new job
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"resume  a  interrupted after {len(done)}/3 epochs" in rerun.stdout
    assert run_dirs(path, "a") == [run]  # resumed in place, no new run
    assert meta(run)["status"] == "completed" and len(meta(run)["resumes"]) == 1
    assert epochs(run) == [1, 2, 3]
    assert jobs_of(path)["a"] != job  # the second submission's job


def test_the_time_limit_warning_checkpoints_requeues_and_resumes_with_each_epoch_once(experiment):
    path = experiment(**LONG)
    assert dilbench(path, "--launcher", "slurm", "--no-wait", "--time", "30").returncode == 0
    job = jobs_of(path)["a"]
    wait_until(lambda: in_epoch_2(path), "the run to be inside its second epoch")
    (run,) = run_dirs(path, "a")
    # What `--signal=B:USR1@90` delivers 90 s before the time limit: SIGUSR1 to the job script only.
    subprocess.run(["scancel", "--batch", "--signal=USR1", job], check=True)
    wait_until(lambda: meta(run)["status"] == "completed", "the requeued job to complete the run")
    wait_until(lambda: job_over(job), f"job {job} to end")
    assert epochs(run) == [1, 2, 3]  # each epoch exactly once
    assert len(meta(run)["resumes"]) == 1
    log = (run / "log.txt").read_text()
    assert re.search(r"interrupted at epoch 2, step \d+;", log)  # in the middle of the epoch: its position is checkpointed
    assert re.search(r"resumed from .* at epoch 2, step [1-9]", log)
    output = next((runs_dir(path) / ".sweep" / "slurm").glob(f"{job}.out")).read_text()
    assert "time-limit warning" in output and "requeued job" in output and "restart 1" in output
    shown = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    assert "Restarts=1" in shown


def test_two_workers_of_a_multi_worker_run_under_srun_agree(tmp_path, slurm):
    runs = tmp_path / "runs"
    settings = ["data.train_subset=96", "data.test_subset=50", "model.channels=2", "model.hidden=[8]", "train.batch_size=16",
                "train.epochs=1", "seed=3", "runtime.deterministic=false", "schedule=unfair_back", "runtime.distribute=multi_worker"]
    command = ["srun", "--nodes=1", "--ntasks=2", "--cpus-per-task=1", sys.executable, "-m", "dilbench",
               *train_args(runs, *settings, name=None)]
    environment = {key: value for key, value in child_env().items() if key != "TF_CONFIG"}  # the cluster comes from Slurm alone
    result = subprocess.run(command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=DEADLINE)
    assert result.returncode == 0, result.stderr
    (run,) = [p for p in runs.iterdir() if p.is_dir()]  # the chief's; the other worker's temporary directory is gone
    info = meta(run)
    assert info["status"] == "completed"
    assert info["distribute"] == {"strategy": "multi_worker", "replicas": 2, "global_batch_size": 16, "per_replica_batch_size": 8.0}
    digests = [line.rsplit(" ", 1)[1] for line in result.stderr.splitlines() if "final weights sha256" in line]
    assert digests == [info["weights_sha256"]] * 2  # both workers end with bit-equal weights
    updates = json.loads((run / "metrics.jsonl").read_text())["updates"]
    assert updates == [6 * n for n in range(1, 9)]  # 96 images / 16 = 6 steps of unfair_back over 8 groups


# The Done-when search of issue 22 (tests/test_search.py runs it locally): 2 cases, TPE, 4 trials each, the median
# pruner, 2 confirmation seeds. Under Slurm: one array of the fixed runs and tuning slots (each slot asks the shared
# journal-file study for its trial), then the confirmation runs, after it.
SEARCH = tiny_search("search") + "slurm:\n  cpus_per_run: 1\n"


def test_the_small_search_tunes_in_array_tasks_then_confirms_after_them(experiment):
    path = experiment(SEARCH)
    result = dilbench(path, "--launcher", "slurm", "--jobs", "2", timeout=2 * DEADLINE)  # waits for both arrays
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 run(s) and 8 tuning slot(s)" in result.stdout and "confirmation run(s), after" in result.stdout
    (tuning,) = (runs_dir(path) / ".sweep" / "slurm").glob("sweep-*Z.sh")
    (confirming,) = (runs_dir(path) / ".sweep" / "slurm").glob("sweep-*-confirm.sh")
    assert "tune:a tune:a tune:a tune:a tune:c tune:c tune:c tune:c" in tuning.read_text()
    assert "#SBATCH --dependency=afterany:" in confirming.read_text()
    for group in ("a", "c"):
        trials = study_trials(runs_dir(path), group)
        assert [t["number"] for t in trials] == [0, 1, 2, 3]  # the slots shared one study: no trial twice, none past 4
        assert all(t["state"] in ("COMPLETE", "PRUNED") for t in trials), trials
        for trial in trials:
            (run,) = run_dirs(path, f"{group}-trial{trial['number']}")
            assert meta(run)["search"]["params"] == trial["params"]
            assert meta(run)["status"] == {"COMPLETE": "completed", "PRUNED": "pruned"}[trial["state"]]
        confirm = run_dirs(path, f"{group}-tuned-seed*")
        assert len(confirm) == 2 and all(meta(run)["status"] == "completed" for run in confirm)
    page = (path.parent / "results" / "tiny" / "RESULTS.md").read_text()
    assert "## Tuning" in page and "difference [95% CI]" in page and "adjusted p" in page and "seeds needed" in page
    assert "c-tuned > a-tuned" in page
    again = dilbench(path, "--launcher", "slurm")  # all done: nothing submitted
    assert again.returncode == 0 and "submitted" not in again.stdout, again.stdout
