"""A sweep's hyperparameter search (`search:`): the experiment file, the studies, tune-then-confirm, the page.

Most tests swap the trial child (`python -m dilbench.sweep.trial`) and `dilbench train` for fake trainers (a
few lines, no TensorFlow) whose accuracy is a smooth function of the learning rate; the fake trial reports to
its study through the real StudyLink, so asking, pruning, telling and reconciling are Optuna's and ours. The
test marked slow runs the Done-when search for real on tiny MNIST; tests/faults/test_search_kill.py kills it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from toolkit import (
    FAKE_TRAINER_START,
    PNG,
    REPO,
    SEARCH_PROFILE,
    child_env,
    invoke,
    meta,
    squeeze,
    study_trials,
    sweep,
    tiny_search,
)

import dilbench.sweep.execute as execute
from dilbench.config import ConfigError
from dilbench.sweep.experiment import load_experiment
from dilbench.sweep.plan import make_plan

EXPERIMENT = (tiny_search("tune").replace(f"  tiny: {SEARCH_PROFILE}", "  quick: {train.epochs: 3, model.channels: 4}")
              .replace("3.0e-2]", "1.0e-1]").replace("  seeds: [100, 101]\n  startup_trials: 2\n", "  seeds: [100]\n  sampler_seed: 3\n"))

# The fake trainer of both commands: `train CONFIG --runs-dir D [--trial SPEC]` or `train --resume RUN [--trial SPEC]`.
# eval_acc after epoch e: 0.5 + 0.3 exp(-(log10(lr) + 2.5)^2) + 0.02 e (+0.05 unfair_back, +0.001 seed): best near lr 3e-3.
# A trial reports each epoch to its study through the real StudyLink and stops when the pruner says so. FAKE_DIE names a
# run that dies hard (os._exit) after its first epoch, leaving `running`; FAKE_NO_TELL one that dies after recording
# `completed`, before telling its study; FAKE_DIVERGE a learning rate above which a run's loss becomes NaN at once.
FAKE = r'''
import json, math, os, secrets, sys, time
from datetime import datetime, timezone
import yaml
''' + FAKE_TRAINER_START + r'''spec = json.load(open(args[args.index("--trial") + 1])) if "--trial" in args else None
if spec and "search" not in meta:
    meta["search"] = {k: spec[k] for k in ("study", "study_id", "group", "trial", "params", "role") if k in spec}

def write(status, **more):
    meta.update(status=status, **more)
    tmp = meta_file + ".tmp"
    json.dump(meta, open(tmp, "w"))
    os.replace(tmp, meta_file)

write("running", resumes=meta.get("resumes", []) + ([1] if args[1] == "--resume" else []))
link = None
if spec and spec["role"] == "tune":
    from dilbench.sweep.trial import StudyLink
    link = StudyLink(spec)
metrics_file = os.path.join(run, "metrics.jsonl")
records = [json.loads(l) for l in open(metrics_file)] if os.path.exists(metrics_file) else []
lr, epochs = config["optimizer"]["lr"], config["train"]["epochs"]
flops = 150.0 if config["schedule"]["name"] == "unfair_back" else 100.0
for epoch in range(len(records) + 1, epochs + 1):
    time.sleep(float(os.environ.get("FAKE_SLEEP", "0")))
    if lr > float(os.environ.get("FAKE_DIVERGE", "1e9")):
        write("failed", error=f"loss became nan at epoch {epoch}, step 1")
        if link:
            link.report(float("nan"), epoch)
            link.tell("PRUNED", why=f"diverged: loss became nan at epoch {epoch}, step 1")
        print("Error: loss became nan", file=sys.stderr)
        sys.exit(1)
    acc = (0.5 + 0.3 * math.exp(-(math.log10(lr) + 2.5) ** 2) + 0.02 * epoch
           + 0.05 * (config["schedule"]["name"] == "unfair_back") + 0.001 * config["seed"])
    records.append({"epoch": epoch, "train_loss": 1.0, "train_acc": acc, "eval_loss": 1.0, "eval_acc": acc,
                    "eval_split": "validation" if config["train"].get("eval") == "validation" else "test",
                    "seconds": 1.0, "images_per_s": 100.0, "train_flops": epoch * flops})
    open(metrics_file, "w").write("".join(json.dumps(r) + "\n" for r in records))
    if name in os.environ.get("FAKE_DIE", "").split(","):
        os._exit(9)
    if link:
        link.report(acc, epoch)
        if epoch < epochs and link.should_prune():
            write("pruned", ended="2026-01-01T00:05:00+00:00", final_eval_acc=acc, error=None, pruned="by the pruner")
            link.tell("PRUNED")
            sys.exit(0)
write("completed", ended="2026-01-01T00:05:00+00:00", final_eval_acc=records[-1]["eval_acc"], error=None)
if name in os.environ.get("FAKE_NO_TELL", "").split(","):
    os._exit(9)
if link:
    link.tell("COMPLETE", records[-1]["eval_acc"])
print(run)
'''


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    path = tmp_path / "exp" / "experiment.yaml"
    path.parent.mkdir()
    path.write_text(EXPERIMENT)
    return path


@pytest.fixture
def fake(tmp_path: Path, monkeypatch) -> Path:
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE)
    monkeypatch.setattr(execute, "TRAIN", (sys.executable, str(script)))
    monkeypatch.setattr(execute, "TRIAL", (sys.executable, str(script)))
    monkeypatch.setattr(execute, "POLL_SECONDS", 0.02)
    monkeypatch.setenv("PYTHONPATH", child_env()["PYTHONPATH"])
    for var in ("FAKE_DIE", "FAKE_NO_TELL", "FAKE_DIVERGE", "FAKE_SLEEP"):
        monkeypatch.delenv(var, raising=False)
    return script


def run_dirs(runs_dir: Path, pattern: str) -> list[Path]:
    return sorted(runs_dir.glob(f"{pattern}-*-*-*"))


# ---- the experiment file ----------------------------------------------------------------------------
@pytest.mark.parametrize("edit, message", [
    (("    optimizer.lr: {log_uniform", "    optimizer.lrr: {log_uniform"),
     "experiment.yaml:16: optimizer.lrr: unknown key (did you mean 'lr'?)"),
    (("{log_uniform: [1.0e-4, 1.0e-1]}", "{log_uniform: [0, 1.0e-1]}"),
     "experiment.yaml:16: search.space.optimizer.lr.log_uniform: a log scale needs low > 0, got 0"),
    (("{log_uniform: [1.0e-4, 1.0e-1]}", "{loguniform: [1.0e-4, 1.0e-1]}"),
     "experiment.yaml:16: search.space.optimizer.lr.loguniform: unknown distribution 'loguniform' (did you mean 'log_uniform'?)"),
    (("{log_uniform: [1.0e-4, 1.0e-1]}", "{uniform: [1.0, 0.5]}"),
     "experiment.yaml:16: search.space.optimizer.lr.uniform: low must be below high, got [1.0, 0.5]"),
    (("    optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}", "    seed: {int: [0, 9]}"),
     "experiment.yaml:16: search.space.seed: cannot be searched: tuning runs take search.seeds"),
    (("    optimizer.lr: {log_uniform: [1.0e-4, 1.0e-1]}", "    model.channels: {int: [0, 8]}"),
     "experiment.yaml:16: model.channels: must be > 0, got 0 (run a-trial0, profile quick)"),
    (("  seeds: [100]", "  seeds: [1, 100]"),
     "experiment.yaml:19: search.seeds: 1 is a confirmation seed (the runs that judge the tuned values: seeds 0, 1)"),
    (("  pruner: {median:", "  pruner: {medain:"), "experiment.yaml:18: search.pruner.medain: unknown pruner 'medain' "
                                                   "(did you mean 'median'?)"),
    (("  method: tpe", "  method: grid"), "experiment.yaml:13: search.method: expected one of tpe, random, got 'grid'"),
    (("  trials: 4", "  trials: 0"), "experiment.yaml:14: search.trials: must be >= 1, got 0"),
    (("  quick: {train", "  quick: {search: {trials: -1}, train"), "experiment.yaml:9: profiles.quick.search.trials: must be >= 1"),
    (("  quick: {train", "  quick: {cases: [a, b], train"), "experiment.yaml:9: profiles.quick.cases[1]: unknown case 'b'"),
])
def test_search_errors_name_file_line_and_key(experiment, edit, message):
    experiment.write_text(EXPERIMENT.replace(*edit))
    with pytest.raises(ConfigError) as err:
        make_plan(load_experiment(experiment))
    assert message in str(err.value)


def test_the_plan_holds_tuned_groups_their_trials_and_confirmation_runs(experiment):
    experiment.write_text(EXPERIMENT.replace("  quick: {train", "  quick: {cases: [c], search: {trials: 2}, train"))
    plan = make_plan(load_experiment(experiment))
    assert [run.name for run in plan.runs] == ["c-seed0", "c-seed1"]  # the profile runs case c only
    assert plan.claims == [] and [c.says for c in plan.left_out_claims()] == ["unfair_back beats standard"]
    assert plan.search is not None and plan.search.trials == 2 and plan.search.random_trials == 2
    (tuned,) = plan.tuned
    assert (tuned.group, tuned.tuned, [name for name, _, _ in tuned.confirm]) == ("c", "c-tuned", ["c-tuned-seed0", "c-tuned-seed1"])
    trial = plan.trial_run(tuned, 3, {"optimizer.lr": 0.002}, {"study": "s"})
    config = trial.config
    assert (trial.name, trial.group, config.seed, config.optimizer.lr, config.train.eval, config.data.validation) == (
        "c-trial3", "c-trials", 100, 0.002, "validation", 0.2)
    assert (config.train.epochs, config.model.channels, config.schedule.name) == (3, 4, "unfair_back")
    assert trial.search["role"] == "tune" and trial.search["pruner"] == {"median": {"startup_trials": 1, "warmup_epochs": 1}}
    confirm = plan.confirm_runs(tuned, 3, {"optimizer.lr": 0.002}, {})
    assert [(r.name, r.group, r.config.seed, r.config.optimizer.lr, r.config.train.eval) for r in confirm] == [
        ("c-tuned-seed0", "c-tuned", 0, 0.002, "test"), ("c-tuned-seed1", "c-tuned", 1, 0.002, "test")]


def test_dry_run_prints_the_space_and_budget_writes_nothing_and_imports_no_tensorflow(experiment):
    code = ("import sys; from dilbench.cli import main; sys.argv = ['dilbench', 'sweep', sys.argv[1], '--dry-run']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nprint('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(experiment)], cwd=REPO, env=child_env(), capture_output=True,
                         text=True, check=True)
    lines = out.stdout.splitlines()
    assert lines[-1] == "False"
    text = out.stdout
    assert "search: TPE (2 random trial(s) first" in text and "4 trial(s) per tuned group" in text
    assert "  space: optimizer.lr log-uniform [0.0001, 0.1]" in text
    assert "  metric: final_eval_acc (maximize) on a validation split of 0.2 of the training images" in text
    assert "  pruner: median (a trial stops after an epoch whose eval_acc is worse than the median" in text
    assert "  budget per group: 4 trial(s) x at most 3 epoch(s) = at most 12 epochs of tuning" in text
    assert re.search(r"tune +a +0 of 4 trials finished \(none yet\); study .*study-a\.log", text)
    assert re.search(r"confirm +c-tuned +after tuning: c-tuned-seed0, c-tuned-seed1", text)
    assert "would: start 4, tune 8 trial(s), confirm 4 run(s)" in text
    assert sorted(p.name for p in experiment.parent.iterdir()) == ["experiment.yaml"]


# ---- tune, then confirm ---------------------------------------------------------------------------
def test_search_tunes_each_group_prunes_confirms_and_writes_the_page(experiment, fake):
    result = sweep(experiment)
    assert result.exit_code == 0, result.output
    runs_dir = experiment.parent / "runs" / "quick"
    for group in ("a", "c"):
        trials = study_trials(runs_dir, group)
        assert [t["number"] for t in trials] == [0, 1, 2, 3]
        assert {t["state"] for t in trials} <= {"COMPLETE", "PRUNED"}
        for trial in trials:  # one run directory per trial, recording its study, trial and values
            (run,) = run_dirs(runs_dir, f"{group}-trial{trial['number']}")
            search = meta(run)["search"]
            assert (search["trial"], search["params"], search["role"]) == (trial["number"], trial["params"], "tune")
            assert meta(run)["status"] == {"COMPLETE": "completed", "PRUNED": "pruned"}[trial["state"]]
            assert meta(run)["sweep"]["group"] == f"{group}-trials"
        best = max((t for t in trials if t["state"] == "COMPLETE"), key=lambda t: t["value"])
        for seed in (0, 1):
            (run,) = run_dirs(runs_dir, f"{group}-tuned-seed{seed}")
            config = yaml.safe_load((run / "config.yaml").read_text())
            assert config["optimizer"]["lr"] == best["params"]["optimizer.lr"] and config["seed"] == seed
            assert meta(run)["search"]["role"] == "confirm" and meta(run)["search"]["trial"] == best["number"]
            assert meta(run)["sweep"]["group"] == f"{group}-tuned"
    pruned = [run for run in run_dirs(runs_dir, "*-trial*") if meta(run)["status"] == "pruned"]
    assert pruned, "the median pruner stopped no trial"
    listed = invoke("compare", runs_dir, "--columns", "run,status", "--format", "json")
    assert {row["run"] for row in json.loads(listed.output) if row["status"] == "pruned"} == {p.name for p in pruned}
    shown = invoke("show", pruned[0])
    assert re.search(r"status +pruned \(1/3 epochs\)", shown.output) and re.search(r"search +trial \d of study tune/quick/", shown.output)

    results = experiment.parent / "results" / "quick"
    page = squeeze((results / "RESULTS.md").read_text())
    assert (results / "search.png").read_bytes()[:8] == PNG
    assert "## Tuning" in page and "**Tune, then confirm.** Each tuned group (`a`, `c`) gets the same tuning budget: **4 trials**" in page
    assert re.search(r"\| a \| 4 of 4 \| \d complete(, \d pruned)? \| \d+ of at most 12 \| [0-9.]+e\d+ \|", page)
    assert "| group | trials finished | of which | epochs trained | training FLOPs |" in page
    assert "| claim | groups | at equal epochs | at equal FLOPs | tuned, at equal epochs | tuned, at equal FLOPs |" in page
    assert "### Tuned groups at equal epochs" in page and "| unfair_back beats standard | c-tuned > a-tuned | final_eval_acc |" in page
    assert ("and 2 of the 1 claims between tuned groups" not in page
            and "of the 1 claims between tuned groups at equal epochs" in page)
    assert "tuned and fixed-rate claims are one family" in page
    assert "| a-tuned | schedule=standard, tuned optimizer.lr=" in page

    status = sweep(experiment, "--status")
    assert status.exit_code == 0
    assert re.search(r"tune +a +4 of 4 trials finished", status.output)
    assert "  completed  a-tuned-seed0" in status.output
    again = sweep(experiment)
    assert again.exit_code == 0 and "will: skip 4" in again.output and "[1/" not in again.output


def test_jobs_share_the_study_and_never_ask_past_the_budget(experiment, fake, monkeypatch):
    monkeypatch.setenv("FAKE_SLEEP", "0.05")
    result = sweep(experiment, "--jobs", "3")
    assert result.exit_code == 0, result.output
    runs_dir = experiment.parent / "runs" / "quick"
    for group in ("a", "c"):
        assert [t["number"] for t in study_trials(runs_dir, group)] == [0, 1, 2, 3]
        assert len(run_dirs(runs_dir, f"{group}-trial*")) == 4 and len(run_dirs(runs_dir, f"{group}-tuned-*")) == 2


def test_a_dead_trial_is_resumed_an_asked_one_started_a_told_one_never_repeated(experiment, fake, monkeypatch):
    """What kill -9 can leave: a trial asked but never started, a trial whose run died mid-way, and a run that
    completed before its process could tell the study. Re-running finishes exactly trials 0..3 of each study."""
    monkeypatch.setenv("FAKE_DIE", "a-trial1")
    monkeypatch.setenv("FAKE_NO_TELL", "c-trial0")
    monkeypatch.setattr("dilbench.sweep.tuning.REFRESH_SECONDS", 1e9)  # this sweep does not reconcile while it runs
    result = sweep(experiment)
    assert result.exit_code == 1
    assert "a-trial1: failed" in result.output and "tuning a: 3 of 4 trials finished; not finished: a-trial1" in result.output
    runs_dir = experiment.parent / "runs" / "quick"
    states = [t["state"] for t in study_trials(runs_dir, "a")]
    assert states[1] == "RUNNING" and len(states) == 4
    (dead,) = run_dirs(runs_dir, "a-trial1")
    assert meta(dead)["status"] == "running"
    assert not run_dirs(runs_dir, "a-tuned-*")  # tuning not done: nothing confirmed
    (c0,) = run_dirs(runs_dir, "c-trial0")  # completed, but killed before it told the study
    assert meta(c0)["status"] == "completed"

    monkeypatch.delenv("FAKE_DIE")
    result = sweep(experiment)
    assert result.exit_code == 0, result.output
    assert re.search(r"trial 1 +running; optimizer.lr=[0-9.e-]+; resume a-trial1: running, but its process is gone after 1/3 "
                     r"epochs", result.output)
    for group in ("a", "c"):
        trials = study_trials(runs_dir, group)
        assert [t["number"] for t in trials] == [0, 1, 2, 3] and all(t["state"] != "RUNNING" for t in trials)
        assert len(run_dirs(runs_dir, f"{group}-trial*")) == 4  # none repeated
    assert run_dirs(runs_dir, "a-trial1") == [dead] and meta(dead)["resumes"] == [1]
    assert study_trials(runs_dir, "c")[0]["state"] == "COMPLETE"
    assert len(run_dirs(runs_dir, "*-tuned-*")) == 4


def test_a_diverged_trial_is_finished_and_ranked_last(experiment, fake, monkeypatch):
    monkeypatch.setenv("FAKE_DIVERGE", "0.01")
    experiment.write_text(EXPERIMENT.replace("  trials: 4", "  trials: 6").replace("method: tpe", "method: random"))
    result = sweep(experiment)
    assert result.exit_code == 0, result.output  # a diverged trial is a result of tuning, not a failed sweep
    runs_dir = experiment.parent / "runs" / "quick"
    trials = study_trials(runs_dir, "a")
    diverged = [t for t in trials if t["params"]["optimizer.lr"] > 0.01]
    assert diverged and all(t["state"] == "PRUNED" and t["value"] is None for t in diverged)
    for trial in diverged:
        (run,) = run_dirs(runs_dir, f"a-trial{trial['number']}")
        assert meta(run)["status"] == "failed"
    assert "diverged" in result.output
    page = (experiment.parent / "results" / "quick" / "RESULTS.md").read_text()
    assert "diverged" in page
    again = sweep(experiment, "--dry-run")  # finished: never resumed
    assert again.exit_code == 0 and "tune 0" not in again.output and "resume" not in again.output


def test_a_changed_search_is_an_error_until_moved_or_rerun(experiment, fake):
    assert sweep(experiment).exit_code == 0
    experiment.write_text(EXPERIMENT.replace("metric: final_eval_acc", "metric: best_eval_acc"))
    result = invoke("sweep", experiment, catch_exceptions=True)
    assert result.exit_code == 2
    assert "study tune/quick/a was made with other search settings or another tuning config (metric: final_eval_acc -> " \
           "best_eval_acc)" in result.output
    experiment.write_text(EXPERIMENT.replace("trials: 4", "trials: 5"))  # a larger budget continues the same studies
    more = sweep(experiment)
    assert more.exit_code in (0, 2), more.output
    runs_dir = experiment.parent / "runs" / "quick"
    assert [t["number"] for t in study_trials(runs_dir, "a")] == [0, 1, 2, 3, 4]


# ---- Slurm: tuning slots, then the confirmation runs (a real cluster: tests/test_slurm.py) --------------
def test_slurm_dry_run_submits_tuning_slots_then_the_confirmation_runs_after_them(experiment):
    result = sweep(experiment, "--launcher", "slurm", "--dry-run", "--jobs", "2")
    assert result.exit_code == 0, result.output
    first = result.output.split("would submit this job script:\n", 1)[1].split("would submit this job script for", 1)[0]
    second = result.output.split("would submit this job script for the confirmation runs, after the first:\n", 1)[1]
    assert "RUNS=(a-seed0 a-seed1 c-seed0 c-seed1 tune:a tune:a tune:a tune:a tune:c tune:c tune:c tune:c)" in first
    assert "#SBATCH --array=0-11%2" in first and "--dependency" not in first
    assert "RUNS=(a-tuned-seed0 a-tuned-seed1 c-tuned-seed0 c-tuned-seed1)" in second
    assert "#SBATCH --array=0-3%2" in second and "#SBATCH --dependency=afterany:<array 1>" in second
    assert sorted(p.name for p in experiment.parent.iterdir()) == ["experiment.yaml"]  # wrote nothing


def test_a_slurm_tuning_slot_takes_the_next_trial_and_the_last_task_writes_the_page(experiment, fake, monkeypatch):
    """Array tasks run here one after another, as Slurm would run them: each tuning slot asks for its trial."""
    from dilbench.sweep.slurm_task import run_task

    monkeypatch.setenv("SLURM_JOB_ID", "5")
    command = "dilbench sweep exp --launcher slurm"
    for name in ["a-seed0", "a-seed1", "c-seed0", "c-seed1", *["tune:a"] * 4, *["tune:c"] * 4]:
        assert run_task(experiment, None, None, name, False, command) == 0, name
    runs_dir = experiment.parent / "runs" / "quick"
    assert [t["number"] for t in study_trials(runs_dir, "a")] == [0, 1, 2, 3]
    assert run_task(experiment, None, None, "tune:a", False, command) == 0  # a fifth slot: nothing left to do
    assert len(run_dirs(runs_dir, "a-trial*")) == 4
    results = experiment.parent / "results" / "quick" / "RESULTS.md"
    assert not results.exists()  # the confirmation runs have not run
    for name in ["a-tuned-seed0", "a-tuned-seed1", "c-tuned-seed0", "c-tuned-seed1"]:
        assert run_task(experiment, None, None, name, False, command) == 0, name
    assert "### Tuned groups at equal epochs" in results.read_text()  # the last task wrote it


# ---- the Done-when search, for real (TensorFlow, tiny MNIST) ------------------------------------------
REAL = tiny_search()


def real_sweep(path: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dilbench", "sweep", str(path), *args], cwd=path.parent,
                          env=child_env({"TF_CPP_MIN_LOG_LEVEL": "3"}),
                          capture_output=True, text=True, timeout=timeout)


def assert_done_when_search(path: Path, runs_dir: Path, results: Path) -> None:
    """What the issue's Done-when asks of the small search, once it has run: every trial once, pruned runs in
    compare, confirmation runs on the grid seeds, and a page whose claims carry CI, raw and adjusted p, seeds needed."""
    for group in ("a", "c"):
        trials = study_trials(runs_dir, group)
        assert [t["number"] for t in trials] == [0, 1, 2, 3]
        assert all(t["state"] in ("COMPLETE", "PRUNED") for t in trials), trials
        for trial in trials:
            (run,) = run_dirs(runs_dir, f"{group}-trial{trial['number']}")  # exactly one run directory per trial
            assert meta(run)["search"]["params"] == trial["params"] and meta(run)["search"]["trial"] == trial["number"]
        assert sorted(yaml.safe_load((r / "config.yaml").read_text())["seed"] for r in run_dirs(runs_dir, f"{group}-tuned-*")) == [0, 1]
    listed = invoke("compare", runs_dir, "--columns", "run,status", "--format", "json")
    statuses = {row["run"]: row["status"] for row in json.loads(listed.output)}
    pruned = {run.name for run in run_dirs(runs_dir, "*-trial*") if meta(run)["status"] == "pruned"}
    assert {name for name, status in statuses.items() if status == "pruned"} == pruned
    page = squeeze((results / "RESULTS.md").read_text())
    assert "## Tuning" in page and (results / "search.png").read_bytes()[:8] == PNG
    assert "| difference [95% CI] | raw p | adjusted p | verdict | seeds needed |" in page
    assert "| unfair_back beats standard | c-tuned > a-tuned |" in page
    assert "| unfair_back beats standard | c > a |" in page  # the fixed-rate arms beside the tuned ones


@pytest.mark.slow
def test_the_small_search_runs_for_real_and_prunes_and_confirms(tmp_path):
    """2 cases, TPE, 4 trials each, the median pruner, 2 confirmation seeds: real `dilbench sweep` on tiny MNIST."""
    path = tmp_path / "experiment.yaml"
    path.write_text(REAL)
    dry = real_sweep(path, "--profile", "tiny", "--dry-run")
    assert dry.returncode == 0 and "would: start 4, tune 8 trial(s), confirm 4 run(s)" in dry.stdout, dry.stdout + dry.stderr
    done = real_sweep(path, "--profile", "tiny", "--jobs", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    assert_done_when_search(path, tmp_path / "runs" / "tiny", tmp_path / "results" / "tiny")


def test_a_profile_may_hold_the_whole_search_or_turn_it_off(experiment):
    head, search = EXPERIMENT.split("search:\n")
    body = yaml.safe_load("search:\n" + search)["search"]
    profile = f"  tuned: {{cases: [a], search: {json.dumps(body)}}}"
    experiment.write_text(head.replace("  quick: {train.epochs: 3, model.channels: 4}",
                                       "  quick: {train.epochs: 3, model.channels: 4}\n" + profile))
    spec = load_experiment(experiment)
    assert make_plan(spec, "quick").search is None and not make_plan(spec, "quick").tuned  # only `tuned` searches
    tuned = make_plan(spec, "tuned")
    assert tuned.search is not None and [t.group for t in tuned.tuned] == ["a"] and tuned.search.trials == 4
    experiment.write_text(EXPERIMENT.replace("  quick: {train", "  quick: {search: false, train"))
    assert make_plan(load_experiment(experiment), "quick").search is None


# ---- --dashboard ------------------------------------------------------------------------------------------
def test_dashboard_serves_each_started_study_live_until_ctrl_c(experiment):
    """optuna-dashboard on the studies the search has started (case c has none yet: not served), reading the
    journal as a sweep appends to it: a trial told while it runs shows on the next request; Ctrl-C stops it, exit 0."""
    import signal
    import time
    import urllib.request

    from dilbench.sweep.study import Study

    plan = make_plan(load_experiment(experiment), "quick")
    study = Study.open(plan, plan.tuned[0], create=True)
    assert study is not None
    for value in (0.5, 0.6):
        number, _ = study.ask()
        study.tell(number, "COMPLETE", value)
    board = subprocess.Popen([sys.executable, "-m", "dilbench", "sweep", str(experiment), "--profile", "quick", "--dashboard"],
                             env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = board.stdout.readline()  # type: ignore[union-attr]
        found = re.fullmatch(r"a: (http://127\.0\.0\.1:\d+)/dashboard/  \(study tune/quick/a\)\n", first)
        assert found, first + board.stderr.read()  # type: ignore[union-attr]
        assert board.stdout.readline().startswith("optuna-dashboard is running")  # type: ignore[union-attr]

        def get(path: str) -> dict:
            with urllib.request.urlopen(found[1] + path, timeout=30) as response:
                return json.load(response)

        (summary,) = get("/api/studies")["study_summaries"]
        assert summary["study_name"] == "tune/quick/a"
        values = lambda: sorted(trial["values"][0] for trial in get(f"/api/studies/{summary['study_id']}")["trials"])
        assert values() == [0.5, 0.6]
        number, _ = study.ask()
        study.tell(number, "COMPLETE", 0.7)
        deadline = time.monotonic() + 30  # optuna-dashboard re-reads a study's trials 2 s after it last did
        while (seen := values()) != [0.5, 0.6, 0.7] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert seen == [0.5, 0.6, 0.7]
    finally:
        board.send_signal(signal.SIGINT)
        out, err = board.communicate(timeout=60)
    assert board.returncode == 0 and out.endswith("optuna-dashboard stopped\n"), err


@pytest.mark.parametrize("args, message", [
    (["--profile", "quick"], "no study of profile quick yet"),
    (["--profile", "quick", "--status"], "--dashboard only shows the search's studies"),
])
def test_dashboard_refuses_what_it_cannot_show(experiment, args, message):
    result = invoke("sweep", experiment, *args, "--dashboard")
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr


def test_dashboard_of_a_profile_without_search_says_so(tmp_path):
    path = tmp_path / "exp" / "experiment.yaml"
    path.parent.mkdir()
    path.write_text(EXPERIMENT.split("search:")[0])
    result = invoke("sweep", path, "--profile", "quick", "--dashboard")
    assert result.exit_code == 2 and result.stderr == (
        "Error: profile quick has no search (a `search:` section); --dashboard shows a search's studies\n")


def test_dashboard_without_optuna_dashboard_says_how_to_install_it(experiment, monkeypatch):
    from dilbench.sweep.study import Study

    plan = make_plan(load_experiment(experiment), "quick")
    Study.open(plan, plan.tuned[0], create=True)
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # import fails as when not installed
    result = invoke("sweep", experiment, "--profile", "quick", "--dashboard")
    assert result.exit_code == 2 and result.stderr == (
        "Error: --dashboard needs optuna-dashboard: pip install 'dilbench[dashboard]' (or: pip install optuna-dashboard)\n")
