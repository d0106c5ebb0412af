"""kill -9 of a searching sweep mid-study, and of the trials it was training: re-running the sweep loses no
finished trial and repeats none (issue 22's Done-when), resumes the trials that were cut off, and confirms.

Real processes throughout: `dilbench sweep --jobs 2` on tiny MNIST (2 cases, TPE, 4 trials each, the median
pruner, 2 confirmation seeds), killed with SIGKILL once a trial has finished, together with the trial processes
it had running (they run in their own session, so a kill of the sweep alone would let them finish).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from toolkit import child_env, invoke, meta, study_trials, tiny_search

EXPERIMENT = tiny_search()


def sweep_command(path: Path, *args: str) -> tuple[list[str], dict[str, str]]:
    return ([sys.executable, "-m", "dilbench", "sweep", str(path), "--profile", "tiny", *args],
            child_env({"TF_CPP_MIN_LOG_LEVEL": "3"}))


def trial_dirs(runs_dir: Path, group: str, number: int) -> list[Path]:
    return sorted(runs_dir.glob(f"{group}-trial{number}-*-*-*"))


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(p) for p in text.split()]
    return found


def test_kill_9_of_the_sweep_mid_study_then_rerun_loses_and_repeats_no_trial(tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text(EXPERIMENT)
    runs_dir = tmp_path / "runs" / "tiny"
    command, env = sweep_command(path, "--jobs", "2")
    sweep = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 600

    def finished() -> list[dict]:
        return [t for g in ("a", "c") for t in study_trials(runs_dir, g) if t["state"] in ("COMPLETE", "PRUNED")]

    try:  # kill once a trial has finished and others are running (a trial runs the fixed runs' way: seconds each)
        while not (finished() and any(t["state"] == "RUNNING" for g in ("a", "c") for t in study_trials(runs_dir, g))):
            assert sweep.poll() is None, f"the sweep ended before it could be killed mid-study:\n{sweep.stdout.read()}"  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "no trial finished within 600 s"
            time.sleep(0.5)
        running = children(sweep.pid)
        sweep.send_signal(signal.SIGKILL)
        for pid in running:  # the trials it was training, as a machine's crash would stop them
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    finally:
        sweep.kill()
        sweep.wait()
    time.sleep(1)
    before = {}  # what the killed sweep had finished: (group, number) -> trial, and its one run directory
    for group in ("a", "c"):
        for trial in study_trials(runs_dir, group):
            if trial["state"] in ("COMPLETE", "PRUNED"):
                (run,) = trial_dirs(runs_dir, group, trial["number"])
                before[group, trial["number"]] = (trial, run, (run / "metrics.jsonl").read_text())
    assert before, "the sweep was killed before any trial finished"
    cut_off = [(g, t["number"]) for g in ("a", "c") for t in study_trials(runs_dir, g) if t["state"] == "RUNNING"]

    rerun = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1200)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    for group in ("a", "c"):
        after = study_trials(runs_dir, group)
        assert [t["number"] for t in after] == [0, 1, 2, 3], after  # none repeated, none past the budget
        assert all(t["state"] in ("COMPLETE", "PRUNED") for t in after), after
        for trial in after:
            runs = trial_dirs(runs_dir, group, trial["number"])
            assert len(runs) == 1, runs  # one run directory per trial: a cut-off trial was resumed, not started anew
            assert meta(runs[0])["search"]["params"] == trial["params"]
            if (group, trial["number"]) in before:  # finished before the kill: kept as it was
                old, run, records = before[group, trial["number"]]
                assert (trial, runs[0], (runs[0] / "metrics.jsonl").read_text()) == (old, run, records)
                assert not meta(run).get("resumes")
        assert len(list(runs_dir.glob(f"{group}-tuned-seed*-*-*-*"))) == 2
    for group, number in cut_off:
        (run,) = trial_dirs(runs_dir, group, number)
        assert meta(run)["status"] in ("completed", "pruned")
    listed = invoke("compare", runs_dir, "--columns", "run,status", "--format", "json")
    statuses = {row["run"]: row["status"] for row in json.loads(listed.output)}
    assert {n for n, s in statuses.items() if s == "pruned"} == {
        r.name for r in runs_dir.glob("*-trial*-*-*-*") if meta(r)["status"] == "pruned"}
    page = (tmp_path / "results" / "tiny" / "RESULTS.md").read_text()
    assert "## Tuning" in page and "adjusted p" in page and "seeds needed" in page and "95% CI" in page
