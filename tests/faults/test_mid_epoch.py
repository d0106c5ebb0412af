"""Periodic checkpoints inside an epoch (`runtime.checkpoint_every`): a run killed mid-epoch resumes from the
last one, trains only the batches after it, and ends bit-equal to a run that was never killed."""

from __future__ import annotations

import signal

import pytest
from faultlib import RISING, STEPS, checkpoint_progress, partial_files, resume, train, training_records
from toolkit import meta, the_run


@pytest.mark.parametrize(("every", "kill", "saved_at"), [
    ("2", "kill@step=2.3", (1, 2)),  # every 2 batches of the run: batches 6 (epoch 2, step 2) and 8 (the epoch's end)
    ("0.001s", "kill@step=1.3", (0, 2)),  # every millisecond: after every batch, here epoch 1's second (a time is due)
])
def test_a_run_killed_mid_epoch_resumes_from_its_last_periodic_checkpoint(reference, tmp_path, every, kill, saved_at):
    killed = train(tmp_path, f"runtime.checkpoint_every={every}", specs=(RISING, kill))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run = the_run(tmp_path)
    epoch, step = saved_at
    assert checkpoint_progress(run / "checkpoints" / "latest")["epoch"] == epoch
    assert checkpoint_progress(run / "checkpoints" / "latest")["step"] == step
    resumed = resume(run, specs=(RISING,))
    assert resumed.returncode == 0, resumed.stderr
    # it starts after the saved batch: nothing trained twice, nothing skipped
    assert f"at epoch {epoch + 1}, step {step}\n" in resumed.stderr
    assert f"epoch {epoch + 1}/3 {step + 1}/{STEPS}" in resumed.stderr or step + 1 == STEPS
    assert meta(run)["status"] == "completed"
    assert meta(run)["weights_sha256"] == meta(reference)["weights_sha256"]
    assert training_records(run) == training_records(reference)  # every epoch once, with the same numbers
    assert checkpoint_progress(run / "checkpoints" / "best") == checkpoint_progress(reference / "checkpoints" / "best")
    assert partial_files(run) == []
