"""Hooks: shell commands at the end of a run or a sweep; a failing or hanging one only warns.

A real run's --on-end hook is in test_training.py (its `completed` fixture); failing and hanging hooks on
real runs are in tests/faults/test_manage_live.py.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import pytest
from toolkit import EXPERIMENT, FAKE_TRAINER, invoke

import dilbench.sweep.execute as execute
from dilbench.runs.hooks import Hook, run_hook


@pytest.fixture
def log(caplog):
    caplog.set_level(logging.INFO, logger="hooktest")
    return logging.getLogger("hooktest")


def test_a_hook_sees_its_environment_and_its_output_is_logged(tmp_path, log, caplog):
    proof = tmp_path / "proof.txt"
    ok = run_hook(Hook(f'echo "$DILBENCH_RUN_DIR $DILBENCH_RUN_STATUS" > {proof}; echo done; echo oops >&2'),
                  {"DILBENCH_RUN_DIR": "/runs/x", "DILBENCH_RUN_STATUS": "completed"}, "on-end", log)
    assert ok and proof.read_text() == "/runs/x completed\n"
    assert [r.getMessage() for r in caplog.records] == ["on-end hook: done", "on-end hook: oops"]


def test_a_failing_hook_is_one_warning(tmp_path, log, caplog):
    assert not run_hook(Hook("echo trying; exit 3"), {}, "on-end", log)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["on-end hook exited with code 3 (the status stays as it is): echo trying; exit 3"]
    assert not run_hook(Hook("/nonexistent/command"), {}, "on-end", log)  # the shell says 127: also one warning


def test_a_hanging_hook_is_stopped_at_its_timeout_with_everything_it_started(tmp_path, log, caplog):
    pids = tmp_path / "pids"
    started = time.monotonic()
    assert not run_hook(Hook(f"echo $$ > {pids}; sleep 60 & echo $! >> {pids}; echo waiting; wait", timeout=0.5), {}, "on-end", log)
    assert time.monotonic() - started < 10
    assert "on-end hook was stopped after its timeout of 0.5 s (the status stays as it is)" in caplog.text
    assert "on-end hook: waiting" in caplog.text
    for pid in map(int, pids.read_text().split()):  # the shell and its background sleep: the whole group
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and (Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z") \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_train_rejects_a_bad_hook_timeout():
    result = invoke("train", "quickstart", "--on-end", "true", "--hook-timeout", "0", catch_exceptions=True)
    assert result.exit_code == 2 and "--hook-timeout" in result.output


def test_sweep_hooks_reach_every_run_and_run_once_at_the_end(tmp_path, monkeypatch):
    experiment = tmp_path / "exp" / "experiment.yaml"
    experiment.parent.mkdir()
    proof = tmp_path / "sweep_end.json"
    hooks = (f"hooks:\n  on_run_end: 'echo $DILBENCH_RUN_DIR >> {tmp_path}/runs.txt'\n"
             f"  on_sweep_end: python3 -c 'import json, os; print(json.dumps(dict(os.environ)))' > {proof}\n  timeout: 30\n")
    experiment.write_text(EXPERIMENT + hooks)
    script = tmp_path / "fake_train.py"
    script.write_text(FAKE_TRAINER)
    monkeypatch.setattr(execute, "TRAIN", (sys.executable, str(script)))
    monkeypatch.setattr(execute, "POLL_SECONDS", 0.02)
    result = invoke("sweep", experiment)
    assert result.exit_code == 0, result.output
    runs_dir = experiment.parent / "runs" / "quick"
    for log in (runs_dir / "logs").glob("*.log"):  # every child `train` got the run hook
        assert f"--on-end echo $DILBENCH_RUN_DIR >> {tmp_path}/runs.txt --hook-timeout 30" in log.read_text()
    env = json.loads(proof.read_text())
    assert env["DILBENCH_SWEEP_STATUS"] == "completed" and env["DILBENCH_EXPERIMENT"] == "demo"
    assert env["DILBENCH_SWEEP_DIR"] == str(runs_dir.resolve())
    assert env["DILBENCH_RESULTS"] == str((experiment.parent / "results" / "quick" / "RESULTS.md").resolve())
    assert Path(env["DILBENCH_RESULTS"]).is_file()  # written before the hook runs
    proof.unlink()
    assert invoke("sweep", experiment, "--report-only", catch_exceptions=True).exit_code == 0
    assert not proof.exists()  # nothing ran: no sweep end

    monkeypatch.setenv("FAKE_FAIL", "a-seed2")
    experiment.write_text(EXPERIMENT.replace("seed: [0, 1]", "seed: [0, 1, 2]") + hooks.replace("python3", "exit 9; python3"))
    result = invoke("sweep", experiment)
    assert result.exit_code == 1  # a-seed2 failed; the failing hook changes nothing
    assert not proof.exists()


def test_experiment_hooks_are_validated(tmp_path):
    from dilbench.config import ConfigError
    from dilbench.sweep.experiment import load_experiment

    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(EXPERIMENT + "hooks: {timeout: -1, on_run_ends: x}\n")
    with pytest.raises(ConfigError) as err:
        load_experiment(experiment)
    assert "hooks.on_run_ends: unknown key (did you mean 'on_run_end'?)" in str(err.value)
    assert os.path.basename(str(experiment)) in str(err.value)
