"""A full disk, a read-only file system and a directory this user cannot write: one `Error:` line with
the path and the fix, exit code 1, the run marked `failed` where it can still be written, no partial
files left, and the finished epochs intact for a resume."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from faultlib import RISING, checkpoint_progress, one_line_error, partial_files, remount, resume, spawn, train, train_args, wait_for
from inject import fill
from toolkit import INJECT, REPO, meta, metrics, the_run

NOBODY = 65534


@pytest.mark.parametrize("fault, where, recorded", [
    ("fill@step=2.2", "metrics.jsonl", [1]),  # the disk fills during epoch 2: its record cannot be written
    # it fills inside epoch 2's first checkpoint save (its record is written), leaving TensorFlow's ckpt-3_temp/
    ("fill@save=3", "checkpoints/best/ckpt-3", [1, 2]),
])
def test_a_full_disk_fails_the_run_with_one_line_and_it_resumes_once_freed(reference, tmpfs, fault, where, recorded):
    disk = tmpfs("3m")
    runs = disk / "runs"
    result = train(runs, specs=(RISING, fault), env={"FAULT_FILL": str(disk / "filler")})
    run = the_run(runs)
    assert result.returncode == 1, result.stderr
    line = one_line_error(result)
    assert line.startswith(f"Error: no space left on device writing {run / where}")
    assert line.endswith(f"free space on that file system, then dilbench train --resume {run}")
    assert meta(run)["status"] == "failed" and meta(run)["error"] == line.removeprefix("Error: ")
    assert partial_files(run) == [] and not (run / ".reserve").exists()
    assert [r["epoch"] for r in metrics(run)] == recorded
    assert checkpoint_progress(run / "checkpoints" / "latest")["epoch"] == 1

    (disk / "filler").unlink()
    resumed = resume(run, specs=(RISING,))
    assert resumed.returncode == 0, resumed.stderr
    assert meta(run)["weights_sha256"] == meta(reference)["weights_sha256"]


def test_a_full_disk_before_the_start_leaves_no_run(tmpfs):
    disk = tmpfs("1m")
    runs = disk / "runs"
    runs.mkdir()
    fill(disk / "filler")
    result = train(runs)
    assert result.returncode == 1
    line = one_line_error(result)
    assert line.startswith(f"Error: no space left on device preparing {runs}/tiny-")
    assert list(runs.iterdir()) == []


def test_a_read_only_file_system(tmpfs):
    disk = tmpfs("3m")
    runs = disk / "runs"
    assert train(runs, specs=(RISING, "kill@step=2.2")).returncode == -signal.SIGKILL
    run = the_run(runs)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    remount(disk, "ro")

    resumed = resume(run)
    assert resumed.returncode == 1
    assert one_line_error(resumed) == (f"Error: read-only file system writing {run / '.lock'}; remount it read-write or use "
                                       f"a writable place, then dilbench train --resume {run}")
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before

    new = train(runs)
    assert new.returncode == 1
    assert one_line_error(new).startswith(f"Error: read-only file system creating a run directory in {runs}")


@pytest.fixture
def as_nobody():
    """A directory tree for a process run as `nobody` (root ignores permission bits, nobody does not)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run a process as another user (root itself ignores permission bits)")
    probe = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", sys.executable,
                            "-c", "import dilbench, tensorflow"], cwd=REPO, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    if probe.returncode or not os.access(INJECT, os.R_OK):
        pytest.skip(f"user nobody cannot run this checkout's Python ({probe.stderr.strip()[-200:]})")
    root = Path(tempfile.mkdtemp(prefix="dilbench-faults-"))
    root.chmod(0o755)
    home = root / "home"
    home.mkdir()
    os.chown(home, NOBODY, NOBODY)
    yield root, {"MPLCONFIGDIR": str(home), "HOME": str(home)}
    shutil.rmtree(root)


def test_a_runs_directory_this_user_cannot_write(as_nobody):
    root, env = as_nobody
    runs = root / "runs"
    runs.mkdir()  # root's, mode 0755
    result = train(runs, env=env, user=NOBODY)
    assert result.returncode == 1
    assert one_line_error(result).startswith(f"Error: permission denied creating a run directory in {runs}")
    assert list(runs.iterdir()) == []


def test_resuming_a_run_this_user_cannot_write(as_nobody):
    root, env = as_nobody
    runs = root / "runs"
    assert train(runs, specs=(RISING, "kill@step=2.2")).returncode == -signal.SIGKILL  # made by root
    run = the_run(runs)
    before = (run / "meta.json").read_text()
    result = resume(run, env=env, user=NOBODY)
    assert result.returncode == 1
    assert one_line_error(result) == (f"Error: permission denied writing {run / '.lock'}; make it writable for this user "
                                      f"(chmod/chown) or use another place, then dilbench train --resume {run}")
    assert (run / "meta.json").read_text() == before


def test_a_run_directory_that_stops_being_writable_mid_run(as_nobody):
    root, env = as_nobody
    runs = root / "runs"
    runs.mkdir()
    os.chown(runs, NOBODY, NOBODY)
    signals = root / "signals"
    signals.mkdir(mode=0o777)
    signals.chmod(0o777)
    process = spawn(*train_args(runs), specs=(RISING, "wait@step=2.2"), env={**env, "FAULT_DIR": str(signals)}, user=NOBODY)
    try:
        wait_for(signals / "waiting", process)
        run = the_run(runs)
        os.chown(run, 0, 0)  # the owner's process may no longer create files in it
    finally:
        (signals / "go").touch()
        _, stderr = process.communicate(timeout=300)
    assert process.returncode == 1
    line = one_line_error(subprocess.CompletedProcess([], 1, "", stderr))
    assert line.startswith(f"Error: permission denied writing {run}/")
    assert [r["epoch"] for r in metrics(run)] == [1]
