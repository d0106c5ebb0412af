"""Two processes on one run: the second writer is refused with one line naming the owner, changes
nothing, and the first finishes as if alone."""

from __future__ import annotations

import platform
import signal

import pytest
from faultlib import RISING, one_line_error, resume, spawn, train, train_args, training_records, wait_for
from toolkit import meta, the_run


@pytest.mark.parametrize("first", ["new run", "resume"])
def test_a_second_writer_is_refused_while_the_first_trains(reference, tmp_path, first):
    signals = tmp_path / "signals"
    signals.mkdir()
    runs = tmp_path / "runs"
    env = {"FAULT_DIR": str(signals)}
    if first == "new run":
        owner = spawn(*train_args(runs), specs=(RISING, "wait@step=2.2"), env=env)
    else:  # a crashed run, resumed by one process while a second tries too
        assert train(runs, specs=(RISING, "kill@step=2.1")).returncode == -signal.SIGKILL
        owner = spawn("train", "--resume", str(the_run(runs)), specs=(RISING, "wait@step=2.2"), env=env)
    try:
        wait_for(signals / "waiting", owner)
        run = the_run(runs)
        before = (run / "meta.json").read_text()
        second = resume(run, specs=(RISING,))
        assert second.returncode == 1
        line = one_line_error(second)
        assert line.startswith(f"Error: {run} is being written by pid {owner.pid} on {platform.node()} (since ")
        assert (run / "meta.json").read_text() == before  # the refused process wrote nothing
    finally:
        (signals / "go").touch()
        _, stderr = owner.communicate(timeout=300)
    assert owner.returncode == 0, stderr
    assert meta(run)["status"] == "completed"
    assert meta(run)["weights_sha256"] == meta(reference)["weights_sha256"]
    assert training_records(run) == training_records(reference)
