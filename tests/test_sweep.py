"""`dilbench sweep`: experiment files, the plan, what re-running does, the job runner and the results page.

Most tests swap the child `dilbench train` for a fake trainer script (a few lines, no TensorFlow) that
writes run directories the way the trainer does, so skip/resume/failure/Ctrl-C logic runs in
seconds. One test runs a real tiny sweep on the bundled MNIST sample.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from toolkit import EXPERIMENT, EXPERIMENTS, FAKE_TRAINER, PNG, QUICKSTART, REPO, invoke, nonempty, squeeze, sweep

import dilbench.sweep.execute as execute
from dilbench.config import ConfigError, dump_config, load_config
from dilbench.runs.lock import RunLock, is_locked
from dilbench.runs.owner import this_process
from dilbench.runs.rundir import RunDir
from dilbench.sweep.existing import decide, lock_path
from dilbench.sweep.experiment import load_experiment
from dilbench.sweep.plan import make_plan


@pytest.fixture
def experiment(make_experiment) -> Path:
    return make_experiment(EXPERIMENT)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch) -> Path:
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAINER)
    monkeypatch.setattr(execute, "TRAIN", (sys.executable, str(script)))
    monkeypatch.setattr(execute, "POLL_SECONDS", 0.02)
    for var in ("FAKE_FAIL", "FAKE_SLEEP", "FAKE_TRACE", "FAKE_DATA", "FAKE_PEAK"):
        monkeypatch.delenv(var, raising=False)
    return script


def statuses(runs_dir: Path) -> dict[str, str]:
    return {path.name.rsplit("-", 3)[0]: json.loads((path / "meta.json").read_text())["status"]
            for path in sorted(runs_dir.glob("*-*-*-*")) if (path / "meta.json").exists()}


# ---- the experiment file ----------------------------------------------------------------------------
@pytest.mark.parametrize("edit, message", [
    (("cases:", "casez: {}\ncases:"), "experiment.yaml:3: casez: unknown key (did you mean 'cases'?)"),
    (("seed: [0, 1]", "seed: [0, {x: 1}]"), "experiment.yaml:7: grid.seed[1]: a list holds plain values"),
    (("seed: [0, 1]", "seed: []"), "experiment.yaml:7: grid.seed: needs at least one value"),
    (("  c: {schedule", "  c: {name: x, schedule"), "experiment.yaml:5: cases.c.name: the sweep names every run"),
    (("  c: {final_eval_acc", "  cc: {final_eval_acc"), "experiment.yaml:13: published.cc: unknown group (did you mean 'c'?)"),
    (("higher: c, lower: a", "higher: c, lower: b"), "experiment.yaml:15: claims[0].lower: unknown group 'b'"),
    (("higher: c, lower: a", "higher: c, lower: c"), "experiment.yaml:15: claims[0].lower: must differ from higher"),
    (("  quick: {", "  qu ick: {"), "experiment.yaml:9: profiles.qu ick: names must be letters"),
    ((f"base: {QUICKSTART}", "base: nowhere.yaml"), "experiment.yaml:2: base: "),
])
def test_experiment_errors_name_file_line_and_key(experiment, edit, message):
    experiment.write_text(EXPERIMENT.replace(*edit))
    with pytest.raises(ConfigError) as err:
        load_experiment(experiment)
    assert message in str(err.value)


def test_experiment_files_are_read_like_configs(experiment):
    """Every problem at once, duplicate keys, NaN, alias bombs and non-UTF-8 text, as for run configs."""
    experiment.write_text(EXPERIMENT.replace("cases:", "casez: {}\ncases:").replace("0.83", "high")
                          .replace("  full: {}", "  full: {}\n  quick: {}"))
    with pytest.raises(ConfigError) as err:
        load_experiment(experiment)
    assert str(err.value).splitlines() == [
        f"{experiment}:3: casez: unknown key (did you mean 'cases'?); valid keys: name, base, about, runs_dir, results_dir, "
        "notes, cases, grid, group_over, profiles, published, claims, slurm, hooks, search",
        f"{experiment}:12: profiles.quick: duplicate key (first at line 10); keep one of them",
        f"{experiment}:15: published.c.final_eval_acc: expected float or null, got 'high'",
    ]
    experiment.write_text(EXPERIMENT.replace("final_eval_acc: 0.83", "final_eval_acc: .nan"))
    with pytest.raises(ConfigError, match=r"experiment.yaml:13: published.c.final_eval_acc: expected float or null, got nan$"):
        load_experiment(experiment)
    experiment.write_bytes(EXPERIMENT.encode() + "# na\xefve\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"experiment.yaml:17: not UTF-8 text: byte 0xef at byte offset \d+ cannot be decoded; "
                                          "save the experiment file as UTF-8"):
        load_experiment(experiment)
    experiment.write_text(EXPERIMENT + "".join(f"x{i}: &x{i} [{', '.join([f'*x{i - 1}' if i else '0'] * 10)}]\n" for i in range(9)))
    with pytest.raises(ConfigError, match="once aliases are expanded"):
        load_experiment(experiment)


@pytest.mark.parametrize("edit, message", [
    (("optimizer.lr: 3.0e-4", "optimizer.lr: fast"),
     "experiment.yaml:5: optimizer.lr: expected float, got 'fast' (run c-seed0, profile quick)"),
    (("train.epochs: 2", "train.epochs: 0"), "experiment.yaml:9: train.epochs: must be > 0, got 0 (run a-seed0, profile quick)"),
    (("seed: [0, 1]", "seed: [0, -1.5]"), "experiment.yaml:7: seed: expected int, got -1.5 (run a-seed-1.5, profile quick)"),
    (("{schedule: standard}", "{schedule: standrd}"), "experiment.yaml:4: schedule.name: unknown schedule 'standrd'"),
])
def test_a_bad_override_fails_the_whole_sweep_up_front(experiment, fake, edit, message):
    experiment.write_text(EXPERIMENT.replace(*edit))
    result = sweep(experiment)
    assert result.exit_code == 2
    assert message in result.output
    assert not (experiment.parent / "runs").exists()


def test_cases_times_grid_names_groups_and_override_order(experiment):
    grid = EXPERIMENT[:EXPERIMENT.index("published:")].replace("seed: [0, 1]", "seed: [0, 1]\n  model.hidden: {small: [8], big: [32, 32]}")
    experiment.write_text(grid)
    plan = make_plan(load_experiment(experiment))
    assert [run.name for run in plan.runs] == [
        "a-seed0-small", "a-seed0-big", "a-seed1-small", "a-seed1-big",
        "c-seed0-small", "c-seed0-big", "c-seed1-small", "c-seed1-big",
    ]
    assert [run.group for run in plan.runs][:4] == ["a-small", "a-big", "a-small", "a-big"]
    run = plan.runs[5]
    assert (run.case, run.grid) == ("c", {"seed": 0, "model.hidden": [32, 32]})
    assert (run.config.name, run.config.seed, run.config.schedule.name, run.config.optimizer.lr) == ("c-seed0-big", 0, "unfair_back", 3e-4)
    assert (run.config.model.hidden, run.config.model.channels, run.config.train.epochs) == ((32, 32), 4, 2)


def test_profiles(experiment):
    quick = make_plan(load_experiment(experiment))  # the first profile is the default
    assert quick.profile == "quick" and quick.runs_dir == experiment.parent / "runs" / "quick"
    assert quick.results_dir == experiment.parent / "results" / "quick"
    full = make_plan(load_experiment(experiment), "full")
    assert [run.config.train.epochs for run in full.runs] == [5] * 4  # the base's (configs/quickstart.yaml)
    experiment.write_text(EXPERIMENT.replace("quick: {", "quick: {schedule: standard, optimizer.lr: 0.001, "))
    with pytest.raises(Exception, match="runs a-seed0 and c-seed0 have the same config"):
        make_plan(load_experiment(experiment))  # the profile hides what tells the cases apart
    with pytest.raises(Exception, match="unknown profile 'quik' \\(did you mean 'quick'\\?\\); profiles: quick, full"):
        make_plan(load_experiment(experiment), "quik")


def test_dry_run_lists_runs_writes_nothing_and_imports_no_tensorflow(experiment):
    code = ("import sys; from dilbench.cli import main; sys.argv = ['dilbench', 'sweep', sys.argv[1], '--dry-run']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nprint('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(experiment)], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [
        f"demo, profile quick: 4 runs in {experiment.parent / 'runs' / 'quick'}",
        "  start  a-seed0  new run",
        "  start  a-seed1  new run",
        "  start  c-seed0  new run",
        "  start  c-seed1  new run",
        "would: start 4",
        "False",
    ]
    assert sorted(p.name for p in experiment.parent.iterdir()) == ["experiment.yaml"]


# ---- re-running: what is already there ----------------------------------------------------------------
def write_run(runs_dir: Path, config, status: str | None, stamp: str = "20260101-000000", epochs: int = 1) -> Path:
    """A run directory as the trainer leaves it (status None: no meta.json)."""
    run = RunDir(runs_dir / f"{config.name}-{stamp}-abcd")
    run.path.mkdir(parents=True)
    run.config.write_text(dump_config(config))
    if status:
        run.write_meta({"status": status})
    run.write_metrics([{"epoch": e, "eval_acc": 0.5} for e in range(1, epochs + 1)])
    return run.path


def test_skip_completed_resume_interrupted_or_dead_start_missing(experiment):
    plan = make_plan(load_experiment(experiment))
    a0, a1, c0, c1 = (run.config for run in plan.runs)
    done = write_run(plan.runs_dir, a0, "completed", epochs=2)
    write_run(plan.runs_dir, a0, "failed", stamp="20260102-000000")  # a later failed try: the completed one counts
    stopped = write_run(plan.runs_dir, a1, "interrupted")
    dead = write_run(plan.runs_dir, c0, "running")  # no process holds its lock
    write_run(plan.runs_dir, c1, None)  # no meta.json: cannot be resumed
    steps = decide(plan)
    assert [(s.run.name, s.action, s.path) for s in steps] == [
        ("a-seed0", "skip", done), ("a-seed1", "resume", stopped), ("c-seed0", "resume", dead), ("c-seed1", "start", None),
    ]
    assert steps[0].detail == "completed, final eval acc 0.5000"
    assert steps[1].detail == "interrupted after 1/2 epochs"
    assert steps[2].detail == "running, but its process is gone after 1/2 epochs"
    assert steps[3].detail == "new run (ignoring c-seed1-20260101-000000-abcd: no readable meta.json)"

    lock = RunLock(lock_path(plan.runs_dir, "c-seed0"))
    assert lock.acquire()
    try:
        assert [s.action for s in decide(plan)][2] == "busy"
    finally:
        lock.release()


def test_the_sweep_finds_its_runs_through_the_index(experiment, monkeypatch):
    """decide and --status read config names, statuses and epochs from compare's index: a second look
    parses no config.yaml and builds no Config. A config.yaml that flattening could misread (a key written
    twice) is still checked in full, so an edited run is never taken for the planned one."""
    import dilbench.sweep.existing as existing
    from dilbench.report import run_parts

    plan = make_plan(load_experiment(experiment))
    paths = [write_run(plan.runs_dir, run.config, "completed", epochs=2) for run in plan.runs]
    hour_ago = time.time() - 3600
    for path in [plan.runs_dir, *plan.runs_dir.rglob("*")]:
        os.utime(path, (hour_ago, hour_ago))
    parsed, built = [], []
    source = run_parts.SOURCES["config"]
    monkeypatch.setitem(run_parts.SOURCES, "config", run_parts.Source(
        "config.yaml", lambda path: parsed.append(path.parent.name) or source.read(path), source.absent))
    monkeypatch.setattr(existing, "load_config", lambda *args: built.append(args) or load_config(*args))
    assert [step.action for step in decide(plan)] == ["skip"] * 4 and len(parsed) == 4 and not built
    parsed.clear()
    assert [step.action for step in decide(plan)] == ["skip"] * 4 and not parsed and not built
    assert sweep(experiment, "--status").output.count("completed") >= 4 and not parsed

    edited = paths[0] / "config.yaml"
    edited.write_text(edited.read_text() + f"seed: {plan.runs[0].config.seed}\n")  # the same value, written twice
    os.utime(edited, (hour_ago, hour_ago))
    steps = decide(plan)
    assert steps[0].action == "changed" and "no longer valid" in steps[0].others[0].difference and len(built) == 1


def test_the_index_path_leaves_the_runtime_out_and_loads_old_form_configs(experiment, monkeypatch):
    """Through the index as without it (config_difference compares experiments): a run whose config.yaml differs
    from the plan only in runtime: is the planned run, without building a Config; one in the old form (runtime
    keys under train: and at the top) is loaded, as the loader upgrades it, and is the planned run too; one whose
    experiment differs is not, however the index read it."""
    import dilbench.sweep.existing as existing

    plan = make_plan(load_experiment(experiment))
    paths = [write_run(plan.runs_dir, run.config, "completed", epochs=2) for run in plan.runs]
    runtime_only, old_form, other = (path / "config.yaml" for path in paths[:3])
    runtime_only.write_text(runtime_only.read_text().replace("  xla: false", "  xla: true").replace("  devices: []", "  devices: [CPU:0]"))
    lines, runtime = [], []
    for line in old_form.read_text().splitlines(keepends=True):  # runtime's keys back where they were before it
        if line == "runtime:\n" or runtime and line.startswith("  "):
            runtime.append(line)
        else:
            lines.append(line)
    moved = [line for line in runtime[1:] if not line.startswith(("  deterministic:", "  checkpoint_every:"))]
    at = lines.index("train:\n") + 1
    lines[at:at] = moved
    lines.insert(2, next(line[2:] for line in runtime if line.startswith("  deterministic:")))
    old_form.write_text("".join(lines))
    assert "runtime" not in yaml.safe_load(old_form.read_text()) and "xla" in yaml.safe_load(old_form.read_text())["train"]
    other.write_text(re.sub(r"(?m)^  lr: .*$", "  lr: 0.5", other.read_text()))
    hour_ago = time.time() - 3600
    for path in [plan.runs_dir, *plan.runs_dir.rglob("*")]:
        os.utime(path, (hour_ago, hour_ago))
    built: list = []
    monkeypatch.setattr(existing, "load_config", lambda *args: built.append(args[0]) or load_config(*args))
    for _ in range(2):  # the first call reads the files, the second the index
        built.clear()
        steps = decide(plan)
        assert [step.action for step in steps] == ["skip", "skip", "changed", "skip"]
        assert steps[2].others[0].difference.startswith("optimizer.lr: 0.5 -> ")
        assert sorted(Path(path).parent for path in built) == sorted([old_form.parent, other.parent])


def test_a_crashed_or_stale_run_is_resumed_a_live_one_left_alone(experiment, tmp_path):
    """meta.json says `running` for all three: its owner's process is gone (crashed), alive and holding the
    run's lock, or on another host with the run's lock free (stale: a Slurm task on a node that died)."""
    plan = make_plan(load_experiment(experiment))
    a0, a1, c0, _ = (run.config for run in plan.runs)
    gone = subprocess.run([sys.executable, "-c", "import json; from dilbench.runs.owner import this_process; "
                           "print(json.dumps(this_process()))"], capture_output=True, text=True, check=True)
    crashed = write_run(plan.runs_dir, a0, "running")
    RunDir(crashed).update_meta(owner=json.loads(gone.stdout))
    live = write_run(plan.runs_dir, a1, "running")
    RunDir(live).update_meta(owner=this_process())
    stale = write_run(plan.runs_dir, c0, "running")
    RunDir(stale).update_meta(owner={**this_process(), "host": "elsewhere"})
    lock = RunLock(RunDir(live).lock_file)
    assert lock.acquire()
    try:
        steps = decide(plan)
    finally:
        lock.release()
    assert [(s.action, s.detail) for s in steps[:3]] == [
        ("resume", "crashed (its process is gone) after 1/2 epochs"),
        ("busy", "running in another process"),
        ("resume", "running on another host, but its lock is free after 1/2 epochs"),
    ]


def test_a_changed_experiment_file_never_reuses_runs(experiment, fake):
    plan = make_plan(load_experiment(experiment))
    old = write_run(plan.runs_dir, plan.runs[0].config, "completed")
    experiment.write_text(EXPERIMENT.replace("train.epochs: 2", "train.epochs: 3"))
    result = sweep(experiment, "--dry-run")
    assert result.exit_code == 2
    assert f"  changed  a-seed0  {old.name} has another config: train.epochs: 2 -> 3" in result.output
    assert "1 run(s) exist with another config than the experiment file now gives (a-seed0)" in result.output
    result = sweep(experiment, "--rerun-changed")
    assert result.exit_code == 0, result.output
    runs = sorted(plan.runs_dir.glob("a-seed0-*"))
    assert len(runs) == 2 and runs[0] == old  # the old run stays, a new one was made beside it
    assert "| a-seed0 | a | 0 | completed | 2 |" in squeeze((plan.results_dir / "RESULTS.md").read_text())


def test_locks_live_as_long_as_the_process_holding_them(tmp_path):
    path = tmp_path / "locks" / "x.lock"
    assert not is_locked(path)
    lock = RunLock(path)
    assert lock.acquire() and is_locked(path)
    assert not RunLock(path).acquire()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], pass_fds=(lock.fd,))
    try:
        lock.release()
        assert is_locked(path)  # the child inherited it
    finally:
        child.kill()
        child.wait()
    assert not is_locked(path)


# ---- running: jobs, failures, Ctrl-C, the results page -----------------------------------------------
def test_a_failing_run_is_reported_while_the_others_complete(experiment, fake, monkeypatch):
    monkeypatch.setenv("FAKE_FAIL", "a-seed1")
    result = sweep(experiment)
    assert result.exit_code == 1
    runs_dir = experiment.parent / "runs" / "quick"
    assert statuses(runs_dir) == {"a-seed0": "completed", "a-seed1": "failed", "c-seed0": "completed", "c-seed1": "completed"}
    lines = result.output.splitlines()
    assert "[2/4] a-seed1: failed" in result.output and "NaN loss at epoch 1, step 3" in result.output
    assert lines[-2:] == ["1 of 4 run(s) did not complete:",
                          f"  a-seed1: failed: NaN loss at epoch 1, step 3 (log: {runs_dir / 'logs' / 'a-seed1.log'})"]
    assert "Error: NaN loss" in (runs_dir / "logs" / "a-seed1.log").read_text()
    page = squeeze((experiment.parent / "results" / "quick" / "RESULTS.md").read_text())  # a has one run: no test at all
    assert ("**This page's family**: m = 0 tests: 0 of the 2 claims at equal epochs and 0 at equal FLOPs. Not tested: "
            "\"unfair_back beats standard\" (at equal epochs: fewer than 2 runs in a group, at equal FLOPs: fewer than 2 runs "
            "in a group); \"standard beats unfair_back\"") in page
    assert "| +0.1050 (no test: fewer than 2 runs in a group) | - | - | **cannot decide** | - |" in page

    monkeypatch.delenv("FAKE_FAIL")  # re-running resumes the failed run only
    result = sweep(experiment)
    assert result.exit_code == 0, result.output
    assert "will: resume 1, skip 3" in result.output
    assert set(statuses(runs_dir).values()) == {"completed"}
    (failed,) = runs_dir.glob("a-seed1-*")
    assert json.loads((failed / "meta.json").read_text())["resumes"] == [1]


def test_results_page(experiment, fake):
    result = sweep(experiment)
    assert result.exit_code == 0, result.output
    results = experiment.parent / "results" / "quick"
    assert (results / "curves.png").read_bytes()[:8] == PNG
    page = squeeze((results / "RESULTS.md").read_text())
    assert f"- Command: `dilbench sweep {experiment} --profile quick`" in page
    assert "Profile `quick`: `{train.epochs: 2, model.channels: 4}`" in page
    assert "| c | {schedule: unfair_back, optimizer.lr: 0.0003} |" in page
    # eval_acc = 0.5 + 0.1 (unfair_back) + 0.01 seed - 0.05: a 0.45, 0.46; c 0.55, 0.56
    assert ("| group | setup | n | status | varies | epochs | final_eval_acc | published final_eval_acc | best_eval_acc "
            "| final_train_acc | wall_time | images_per_s | train_flops | published note |") in page
    assert ("| a | schedule=standard | 2 | 2 completed | name, seed | 2.0 ± 0.0 [2, 2] | 0.4550 ± 0.0071 [0.4500, 0.4600] | 0.777 "
            "| 0.4550 ± 0.0071 [0.4500, 0.4600] | 0.5050 ± 0.0071 [0.5000, 0.5100] | 4.0000 ± 0.0000 [4.0000, 4.0000] "
            "| 100.0 ± 0.0 [100.0, 100.0] | 200.0 ± 0.0 [200.0, 200.0] | after 10 epochs |") in page
    assert "| c | schedule=unfair_back, optimizer.lr=0.0003 | 2 | 2 completed | name, seed | 2.0 ± 0.0 [2, 2] | 0.5550 ± 0.0071" in page
    # Welch: d = 0.1, SE = 0.01/sqrt(2) = 0.0071, t = 14.1 at df 2 (p 0.0050); the CI is d +- t(0.975, 2) SE = +-4.303 SE.
    # The family holds the 4 tests (2 claims x equal epochs and FLOPs): Holm multiplies the two smallest (tied) p by 4.
    assert ("| unfair_back beats standard | c > a | final_eval_acc | 0.83 vs 0.777 | 0.5550 ± 0.0071 (n=2) vs "
            "0.4550 ± 0.0071 (n=2) | +0.1000 [+0.0696, +0.1304] | 0.0050 | 0.020 | **supports** | 3 |") in page
    assert ("| standard beats unfair_back | a > c | final_eval_acc | 0.777 vs 0.83 | 0.4550 ± 0.0071 (n=2) vs 0.5550 ± 0.0071 (n=2) "
            "| -0.1000 [-0.1304, -0.0696] | 0.0050 | 0.020 | **contradicts** | 3 |") in page
    assert "- **supports** (1 of 2): unfair_back beats standard" in page
    assert "**This page's family**: m = 4 tests: 2 of the 2 claims at equal epochs and 2 at equal FLOPs." in page
    assert "Holm compares the smallest raw p with 0.05/4 = 0.0125" in page and "Welch's t-test" in page
    # equal compute: at a's final 200 FLOPs, c (150, 300 FLOPs per epoch 1, 2) is a third of the way from
    # epoch 1 (acc - 0.1) to epoch 2 (acc - 0.05): 0.6 + 0.01 seed - 0.1 + 0.05/3 vs a's final 0.45 + 0.01 seed
    assert "| unfair_back beats standard | c > a | **supports** (adj. p 0.020) | **supports** (adj. p 0.022) |" in page
    assert ("| unfair_back beats standard | c > a | final_eval_acc | 200 (a's final epoch) | 0.5217 ± 0.0071 (n=2) vs "
            "0.4550 ± 0.0071 (n=2) | +0.0667 [+0.0362, +0.0971] | 0.011 | 0.022 | **supports** | 3 |") in page
    assert "**At equal compute**: at a training budget, the FLOPs of the final epoch of the claim's cheaper group" in page
    assert (results / "curves_flops.png").read_bytes()[:8] == PNG and "![curves against training FLOPs](curves_flops.png)" in page
    assert "**Profile `quick` is early training on this machine, not the base setup.** It trains with `train.epochs: 2`" in page
    assert page.index("| a-seed0 | a | 0 | completed | 2 | 0.4500 |") < page.index("| c-seed1 | c | 1 | completed | 2 | 0.5600 |")
    assert "Machine: fakehost" in page
    meta = json.loads(next((experiment.parent / "runs" / "quick").glob("c-seed1-*/meta.json")).read_text())
    assert meta["sweep"] == {"experiment": "demo", "profile": "quick", "case": "c", "group": "c", "grid": {"seed": 1}}
    again = sweep(experiment, "--report-only")  # the same runs give the same page, apart from its time stamp
    assert again.exit_code == 0 and "report only, not running: skip 4" in again.output
    strip = lambda text: [line for line in text.splitlines() if "this page was written by" not in line]  # noqa: E731
    assert strip(squeeze((results / "RESULTS.md").read_text())) == strip(page)


def test_the_results_page_warns_when_a_groups_runs_read_different_data(experiment, fake, monkeypatch):
    monkeypatch.setenv("FAKE_DATA", json.dumps({"a-seed0": "a" * 64, "a-seed1": "b" * 64, "c-seed0": "a" * 64, "c-seed1": "a" * 64}))
    assert sweep(experiment).exit_code == 0
    page = (experiment.parent / "results" / "quick" / "RESULTS.md").read_text()
    assert "**Warning: runs on this page differ in what they read or ran from.**" in page
    assert f"- **Group `a`**: its runs read different data files (data sha256 {'a' * 12}: 1 run, {'b' * 12}: 1 run)." in page
    assert "Group `c`" not in page
    grouped = invoke("compare", experiment.parent / "runs" / "quick", "--group-by", "meta.sweep.group")
    assert f"warning: group meta.sweep.group=a (n=2): its runs read different data files (data sha256 {'a' * 12}" in grouped.stdout
    monkeypatch.setenv("FAKE_DATA", json.dumps({"a-seed0": "a" * 64, "a-seed1": "a" * 64, "c-seed0": "c" * 64, "c-seed1": "c" * 64}))
    for run in (experiment.parent / "runs" / "quick").glob("*-seed*-*"):
        meta = json.loads((run / "meta.json").read_text())
        meta["provenance"]["data"]["sha256"] = ("a" if run.name.startswith("a-") else "c") * 64
        (run / "meta.json").write_text(json.dumps(meta))
    assert sweep(experiment, "--report-only").exit_code == 0
    page = (experiment.parent / "results" / "quick" / "RESULTS.md").read_text()
    assert "Group `a`" not in page and "Group `c`" not in page
    assert f"- **Across groups**: its runs read different data files (data sha256 {'a' * 12}: 2 runs, {'c' * 12}: 2 runs)." in page


def test_status_shows_each_runs_peak_memory_and_suggests_slurms_mem(experiment, fake, monkeypatch):
    from dilbench.sweep.status import suggest_mem

    before = sweep(experiment, "--status").output
    assert "not started 4" in before and "suggested Slurm --mem" not in before  # nothing recorded: no advice
    monkeypatch.setenv("FAKE_PEAK", json.dumps({"a-seed0": 700 * 2**20, "c-seed1": int(2.5 * 2**30)}))
    assert sweep(experiment).exit_code == 0
    lines = sweep(experiment, "--status").output.splitlines()
    (a0,) = [line for line in lines if " a-seed0 " in line]
    assert "2/2 epochs, final eval acc 0.4500, peak 700 MiB RSS  (a-seed0-" in a0
    assert "peak 2.50 GiB RSS" in next(line for line in lines if " c-seed1 " in line)
    assert "suggested Slurm --mem: 4G (largest peak RSS 2.50 GiB of 2 run(s), +25% headroom)" in lines
    assert (suggest_mem(700 * 2**20), suggest_mem(800 * 2**20), suggest_mem(2**30)) == ("900M", "1000M", "2G")


def test_jobs_run_side_by_side_with_their_share_of_threads(experiment, fake, monkeypatch, tmp_path):
    trace = tmp_path / "trace.txt"
    monkeypatch.setenv("FAKE_TRACE", str(trace))
    monkeypatch.setenv("FAKE_SLEEP", "0.5")
    result = sweep(experiment, "--jobs", 2)
    assert result.exit_code == 0, result.output
    events = sorted((float(t), what) for what, _, t in (line.split() for line in trace.read_text().splitlines()))
    running, most = 0, 0
    for _, what in events:
        running += 1 if what == "start" else -1
        most = max(most, running)
    assert most == 2
    env = execute.thread_env(2, cpus=8)
    assert (env["TF_NUM_INTRAOP_THREADS"], env["TF_NUM_INTEROP_THREADS"], env["OMP_NUM_THREADS"]) == ("4", "4", "4")
    assert execute.thread_env(1) == dict(os.environ)


def test_ctrl_c_checkpoints_the_children_and_rerunning_resumes(experiment, fake, tmp_path, monkeypatch):
    trace = tmp_path / "trace.txt"
    driver = (f"import sys; import dilbench.sweep.execute as e; e.TRAIN = (sys.executable, {str(fake)!r})\n"
              f"from dilbench.cli import main; sys.argv = ['dilbench', 'sweep', {str(experiment)!r}, '--jobs', '2']; main()")
    env = {**os.environ, "FAKE_SLEEP": "60", "FAKE_TRACE": str(trace)}
    process = subprocess.Popen([sys.executable, "-c", driver], cwd=REPO, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while (not trace.exists() or trace.read_text().count("start") < 2) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=30)
    assert process.returncode == 130, output
    assert "Error: interrupted; a-seed0, a-seed1 saved a checkpoint. Run the same command again to resume" in output
    runs_dir = experiment.parent / "runs" / "quick"
    assert statuses(runs_dir) == {"a-seed0": "interrupted", "a-seed1": "interrupted"}
    assert trace.read_text().count("interrupted") == 2
    result = sweep(experiment)
    assert "will: start 2, resume 2" in result.output and result.exit_code == 0, result.output
    assert set(statuses(runs_dir).values()) == {"completed"}


def test_a_sweep_started_in_the_background_still_stops_its_children(experiment, tmp_path):
    """A script's `dilbench sweep ... &` inherits SIGINT ignored. Stopped with `kill` (SIGTERM), it forwards
    SIGINT to its children: they must hear it (here, trainers without handlers of their own, as a real one is
    while it starts) and the sweep end with 130, not wait out their 600-second runs."""
    trace = tmp_path / "trace.txt"
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text(f"import time\nopen({str(trace)!r}, 'a').write('start\\n')\ntime.sleep(600)\n")
    driver = (f"import sys; import dilbench.sweep.execute as e; e.TRAIN = (sys.executable, {str(sleeper)!r})\n"
              f"from dilbench.cli import main; sys.argv = ['dilbench', 'sweep', {str(experiment)!r}, '--jobs', '2']; main()")
    process = subprocess.Popen([sys.executable, "-c", driver], cwd=REPO, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    deadline = time.monotonic() + 120
    while (not trace.exists() or trace.read_text().count("start") < 2) and time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0]
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 130, output
    assert "stopping: 2 running job(s) save a checkpoint first" in output
    assert output.splitlines()[-1].startswith("Error: interrupted")


def test_real_tiny_sweep_on_the_bundled_mnist_sample(tmp_path):
    """Two real runs (context module, 4 channels, 1 epoch) side by side (missing data: test_user_path.py)."""
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump({
        "name": "tiny", "base": str(QUICKSTART),
        "cases": {"a": {"schedule": "standard"}, "c": {"schedule": "unfair_back"}},
        "profiles": {"smoke": {"data.train_subset": 256, "data.test_subset": 128, "model.channels": 4, "model.hidden": [16],
                               "train.epochs": 1, "precision": "float32"}},
    }))
    result = sweep(path, "--jobs", 2)
    assert result.exit_code == 0, result.output
    runs_dir = tmp_path / "runs" / "smoke"
    assert statuses(runs_dir) == {"a": "completed", "c": "completed"}
    page = squeeze((tmp_path / "results" / "smoke" / "RESULTS.md").read_text())
    assert "| a | schedule=standard | 1 | 1 completed | - | 1 |" in page
    assert "| c | schedule=unfair_back | 1 | 1 completed | - | 1 |" in page
    assert (tmp_path / "results" / "smoke" / "curves.png").read_bytes()[:8] == PNG


def test_shipped_experiments_are_valid():
    shipped = nonempty(sorted(EXPERIMENTS.glob("*/experiment.yaml")), "experiments/*/experiment.yaml")
    assert {"context_module", "resnet_v2_cifar", "unfair_backprop"} <= {path.parent.name for path in shipped}
    for path in shipped:
        experiment = load_experiment(path)
        for profile in experiment.spec.profiles:
            assert make_plan(experiment, profile).runs


def test_a_claim_whose_dear_arm_never_reaches_the_budget_says_so():
    from dilbench.report.runs_index import RunRecord
    from dilbench.sweep.experiment import Claim
    from dilbench.sweep.report import _at_flops

    def run(cost: float, accs: list[float]) -> RunRecord:
        return RunRecord.of(Path("r"), status="completed", metrics=[{"epoch": e, "eval_acc": a, "train_flops": e * cost}
                                                                 for e, a in enumerate(accs, start=1)])

    members = {"a": [run(100, [0.3, 0.4]), run(100, [0.3, 0.42])], "c": [run(300, [0.5, 0.6]), run(150, [0.45, 0.6])]}
    comparison = _at_flops(Claim("c", "a", "c beats a"), members)  # budget 200: only the second c run has a value there
    assert comparison.budget == 200 and comparison.cheaper == "a"
    assert comparison.values == ([pytest.approx(0.5)], [0.4, 0.42]) and comparison.runs == (2, 2)
    assert comparison.problem == "fewer than 2 runs of c reach the budget"
    assert _at_flops(Claim("c", "b", "c beats b"), members).problem == "no completed runs of b"


def test_the_library_sweep_takes_keyword_options_and_prints_through_echo(experiment):
    from dilbench.sweep.command import SweepOptions
    from dilbench.sweep.command import sweep as run_sweep

    with pytest.raises(TypeError):
        SweepOptions("quick")  # type: ignore[misc]  # keyword fields only: a call says what each value is
    lines: list[str] = []
    assert run_sweep(experiment, SweepOptions(dry_run=True, jobs=2), lines.append) == 0
    plan = make_plan(load_experiment(experiment))
    assert lines[0].splitlines()[0] == f"{plan.heading(len(plan.runs))}".splitlines()[0]
    assert [line.split()[:2] for line in lines[0].splitlines()[1:1 + len(plan.runs)]] == [["start", r.name] for r in plan.runs]
    assert not plan.runs_dir.exists() or not any(plan.runs_dir.iterdir())  # a dry run makes nothing
