"""kill -9 at exact and at random moments: the run says `crashed` (not `running`), the resume cleans
what the killed writes left, and the run ends bit-equal to one that was never killed."""

from __future__ import annotations

import json
import random
import signal
import subprocess

from faultlib import RISING, checkpoint_progress, partial_files, resume, spawn, train, train_args, training_records
from toolkit import invoke, meta, metrics, the_run

# One run, killed again at each resume; each process counts its own steps, saves and writes.
KILLS = [
    ("kill@step=1.2", ["checkpoints/start/ckpt-0.index"]),  # before any save: the next resume starts from start/
    ("kill@save=3", ["checkpoints/best/ckpt-3_temp"]),  # inside epoch 2's best/ save, after its record
    ("kill@step=2.2", []),  # in the middle of an epoch
    ('kill@write=metrics.jsonl:"epoch": 2', [".metrics.jsonl.*.tmp"]),  # epoch 2's record written, not yet renamed
    ('kill@write=meta.json:"completed"', [".meta.json.*.tmp"]),  # after the last epoch, while recording completion
]


def assert_crashed(run):
    assert meta(run)["status"] == "running"  # what it last recorded; readers must not believe it
    shown = invoke("show", str(run))
    assert "crashed (" in shown.output and "is gone; continue with: dilbench train --resume" in shown.output, shown.output
    listed = invoke("compare", str(run), "--columns", "run,status", "--format", "json")
    assert json.loads(listed.output)[0]["status"] == "crashed"


def assert_like_reference(run, reference):
    assert meta(run)["status"] == "completed"
    assert meta(run)["weights_sha256"] == meta(reference)["weights_sha256"]
    assert training_records(run) == training_records(reference)
    assert checkpoint_progress(run / "checkpoints" / "best") == checkpoint_progress(reference / "checkpoints" / "best")
    assert partial_files(run) == []


def test_kill_9_at_five_moments_then_resume_ends_as_if_never_killed(reference, tmp_path):
    for number, (fault, left) in enumerate(KILLS):
        result = train(tmp_path, specs=(RISING, fault)) if number == 0 else resume(the_run(tmp_path), specs=(RISING, fault))
        assert result.returncode == -signal.SIGKILL, (fault, result.stderr)
        run = the_run(tmp_path)
        assert_crashed(run)
        assert all(list(run.glob(pattern)) for pattern in left), f"{fault} left none of {left}"  # it struck where meant
    resumed = resume(run, specs=(RISING,))
    assert resumed.returncode == 0, resumed.stderr
    assert_like_reference(run, reference)
    assert len(meta(run)["resumes"]) == len(KILLS)
    assert list(run.glob("metrics.jsonl.old-*")), "epoch 2's record, written before its checkpoint, was kept aside"


def test_kill_9_between_the_first_record_and_its_checkpoint(reference, tmp_path):
    """Killed inside epoch 1's first save: its record is in metrics.jsonl, no checkpoint of it exists. The
    resume starts from start/ (the untrained state), keeps the record aside and ends as if never killed;
    start/ is gone once latest/ holds a checkpoint."""
    killed = train(tmp_path, specs=(RISING, "kill@save=1"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run = the_run(tmp_path)
    assert len(metrics(run)) == 1 and not list(run.glob("checkpoints/latest/ckpt-*.index"))
    assert checkpoint_progress(run / "checkpoints" / "start" / "ckpt-0") == {"epoch": 0, "step": 0, "best_acc": -1.0}
    resumed = resume(run, specs=(RISING,))
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from checkpoints/start/ckpt-0 at the start" in resumed.stderr
    assert "epochs 1-1 are trained again; their old records are kept in metrics.jsonl.old-" in resumed.stderr
    assert_like_reference(run, reference)
    assert not (run / "checkpoints" / "start").exists()


def test_kill_9_at_random_moments(reference, tmp_path):
    """Two kills at random times (seeded, so a failure can be replayed), then a resume to the end."""
    rng = random.Random(13)
    for attempt in range(3):
        started = list(tmp_path.glob("tiny-*"))  # none if the first kill came before the run directory
        args = ["train", "--resume", str(started[0])] if started else train_args(tmp_path)
        process = spawn(*args, specs=(RISING,))
        if attempt < 2:
            try:
                process.wait(timeout=rng.uniform(3.0, 12.0))  # TensorFlow's import takes the first seconds
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate(timeout=300)
        if process.returncode == 0:
            break
        assert process.returncode == -signal.SIGKILL, stderr
        if not list(tmp_path.glob("tiny-*/meta.json")):
            continue  # killed before it wrote anything: nothing to show
        if meta(the_run(tmp_path))["status"] == "completed":
            break  # killed on its way out, after recording completion
        assert_crashed(the_run(tmp_path))
    assert_like_reference(the_run(tmp_path), reference)
