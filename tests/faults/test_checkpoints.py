"""Checkpoints under faults: best/ never regresses; a truncated, corrupt or missing checkpoint is named
in one line, an older one is used only when it agrees with metrics.jsonl, and a run is never silently
started over (`--restart` does that, keeping the old records aside)."""

from __future__ import annotations

import json
import shutil
import signal

import pytest
from faultlib import EPOCHS, checkpoint_progress, one_line_error, resume, train
from toolkit import meta, metrics, the_run

FALLING = "acc=0.7,0.5,0.5"  # epoch 1 stays the best: best/ is older than latest/


def digest_and_training(run):
    return meta(run)["weights_sha256"], [(r["epoch"], r["train_loss"], r["updates_total"]) for r in metrics(run)]


@pytest.mark.parametrize("second", ["acc=0.5,0.7,0.6", "acc=0.5,0.65,0.6"])
def test_best_never_regresses_across_a_resume(tmp_path, second):
    """acc 0.5, 0.7 then killed; the resumed run sees 0.6 (after a kill at the start of epoch 3) or
    re-trains epoch 2 to 0.65 (after a kill between epoch 2's saves of best/ and latest/): best/ keeps 0.7."""
    kill = "kill@step=3.1" if second == "acc=0.5,0.7,0.6" else "kill@save=4"
    assert train(tmp_path, specs=("acc=0.5,0.7,0.6", kill)).returncode == -signal.SIGKILL
    run = the_run(tmp_path)
    resumed = resume(run, specs=(second,))
    assert resumed.returncode == 0, resumed.stderr
    best = checkpoint_progress(run / "checkpoints" / "best")
    assert (best["epoch"], best["best_acc"]) == (2, 0.7)
    if kill == "kill@save=4":  # epoch 2 was trained again: its first record is kept aside, not lost
        (old,) = run.glob("metrics.jsonl.old-*")
        assert [json.loads(line)["eval_acc"] for line in old.read_text().splitlines()] == [0.5, 0.7]


@pytest.fixture(scope="module")
def killed(tmp_path_factory):
    """A run killed at the start of epoch 3: latest/ckpt-3 at epoch 2, best/ckpt-1 at epoch 1."""
    runs = tmp_path_factory.mktemp("killed")
    assert train(runs, specs=(FALLING, "kill@step=3.1")).returncode == -signal.SIGKILL
    run = the_run(runs)
    assert [p.name for p in sorted((run / "checkpoints").glob("*/ckpt-*.index"))] == ["ckpt-1.index", "ckpt-3.index"]
    return run


@pytest.fixture
def copy(killed, tmp_path):
    return shutil.copytree(killed, tmp_path / killed.name)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The same run never killed, for bit-equality."""
    runs = tmp_path_factory.mktemp("straight")
    assert train(runs, specs=(FALLING,)).returncode == 0
    return the_run(runs)


def truncate(run):
    data = run / "checkpoints" / "latest" / "ckpt-3.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])


@pytest.mark.parametrize("damage, said", [
    (truncate, "checkpoints/latest/ckpt-3 is unreadable ("),
    (lambda run: shutil.rmtree(run / "checkpoints" / "latest"), "checkpoints/latest holds no checkpoint;"),
])
def test_a_damaged_latest_checkpoint_falls_back_to_best_and_says_so(copy, straight, damage, said):
    damage(copy)
    resumed = resume(copy, specs=(FALLING,))
    assert resumed.returncode == 0, resumed.stderr
    warning = next(line for line in resumed.stderr.splitlines() if line.startswith(said))
    assert warning.endswith("resuming instead from checkpoints/best/ckpt-1 (the end of epoch 1), which agrees with metrics.jsonl")
    assert digest_and_training(copy) == digest_and_training(straight)
    (old,) = copy.glob("metrics.jsonl.old-*")  # epoch 2 was trained again; its first record is kept
    assert [json.loads(line)["epoch"] for line in old.read_text().splitlines()] == [1, 2]


def test_a_checkpoint_that_disagrees_with_metrics_is_not_used(copy, straight):
    """metrics.jsonl lost epoch 2's record: latest/ (epoch 2) cannot be continued from; best/ (epoch 1) can."""
    lines = (copy / "metrics.jsonl").read_text().splitlines(keepends=True)
    (copy / "metrics.jsonl").write_text(lines[0])
    resumed = resume(copy, specs=(FALLING,))
    assert resumed.returncode == 0, resumed.stderr
    assert ("checkpoints/latest/ckpt-3 is at the end of epoch 2 but metrics.jsonl records 1 epoch(s); resuming instead "
            "from checkpoints/best/ckpt-1") in resumed.stderr
    assert digest_and_training(copy) == digest_and_training(straight)


def test_a_torn_checkpoint_state_file_hides_nothing(copy, straight):
    (copy / "checkpoints" / "latest" / "checkpoint").write_text("model_checkpoint_path: \"ckpt-")
    resumed = resume(copy, specs=(FALLING,))
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from checkpoints/latest/ckpt-3 at the end of epoch 2" in resumed.stderr
    assert not any(line.startswith("epoch 1/") for line in resumed.stderr.splitlines())  # nothing trained twice
    assert digest_and_training(copy) == digest_and_training(straight)


def test_unreadable_checkpoints_are_named_and_restart_keeps_the_old_records(copy, straight):
    for index in (copy / "checkpoints").glob("*/ckpt-*.index"):
        index.write_bytes(b"\0garbage" * 16)
    records = (copy / "metrics.jsonl").read_text()
    resumed = resume(copy, specs=(FALLING,))
    assert resumed.returncode == 1
    line = one_line_error(resumed)
    assert line.startswith(f"Error: cannot resume {copy}: checkpoints/latest/ckpt-3 is unreadable (")
    assert "; checkpoints/best/ckpt-1 is unreadable (" in line
    assert line.endswith(f"to start over keeping the old records aside: dilbench train --resume {copy} --restart")
    assert meta(copy)["status"] == "failed" and meta(copy)["error"] == line.removeprefix("Error: ")
    assert (copy / "metrics.jsonl").read_text() == records

    restarted = resume(copy, "--restart", specs=(FALLING,))
    assert restarted.returncode == 0, restarted.stderr
    assert digest_and_training(copy) == digest_and_training(straight)
    (old,) = copy.glob("metrics.jsonl.old-*")
    assert old.read_text() == records
    assert len(list(copy.glob("checkpoints.old-*/*/ckpt-*.index"))) == 2 and list(copy.glob("events.old-*"))
    assert meta(copy)["resumes"][-1]["restart"] is True


def test_resume_without_checkpoints_refuses_instead_of_starting_over(copy):
    shutil.rmtree(copy / "checkpoints")
    before = {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file() and not p.name.startswith(".")}
    resumed = resume(copy)
    assert resumed.returncode == 1
    assert one_line_error(resumed) == (
        f"Error: {copy}: no checkpoint left in {copy / 'checkpoints'} but metrics.jsonl records 2 epoch(s), so resuming "
        f"would start over and rewrite them. To start over keeping them as metrics.jsonl.old-<time>: "
        f"dilbench train --resume {copy} --restart")
    assert {p.name: p.read_bytes() for p in copy.iterdir() if p.is_file() and not p.name.startswith(".")} == before
    assert EPOCHS == 3
