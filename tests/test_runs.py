"""The run-directory writers' guarantees that need no training: file modes, owners and liveness, the
one-writer lock, file-system errors as one line, and reading metrics.jsonl."""

from __future__ import annotations

import errno
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from toolkit import invoke

from dilbench.runs.lock import RunLock
from dilbench.runs.oserrors import describe
from dilbench.runs.owner import run_status, this_process
from dilbench.runs.rundir import RunDir, write_atomic
from dilbench.runs.writer import RunBusy, RunWriter


@pytest.fixture
def umask():
    def set_umask(mask: int) -> None:
        os.umask(mask)

    previous = os.umask(0o022)
    yield set_umask
    os.umask(previous)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664)])
def test_run_files_honour_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    with RunWriter.create(tmp_path, "x") as writer:
        write_atomic(writer.run.config, "name: x\n")
        writer.run.write_meta({"status": "running"})
        writer.run.write_metrics([{"epoch": 1}])
        files = [writer.run.config, writer.run.meta_file, writer.run.metrics_file, writer.run.lock_file]
        assert {p.name: oct(p.stat().st_mode & 0o777) for p in files} == {p.name: oct(mode) for p in files}


def owner_of_a_finished_process() -> dict:
    done = subprocess.run([sys.executable, "-c", "import json; from dilbench.runs.owner import this_process; "
                           "print(json.dumps(this_process()))"], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_a_running_run_whose_owner_is_gone_is_crashed(tmp_path):
    run = RunDir(tmp_path)
    me = this_process()
    assert run_status({"status": "running", "owner": me}, tmp_path) == "running"
    assert run_status({"status": "running", "owner": owner_of_a_finished_process()}, tmp_path) == "crashed"
    assert run_status({"status": "running", "owner": {**me, "start_ticks": me["start_ticks"] + 1}}, tmp_path) == "crashed"  # pid reused
    assert run_status({"status": "running", "owner": {**me, "boot_id": "another boot"}}, tmp_path) == "crashed"
    assert run_status({"status": "running"}, tmp_path) == "running"  # written before owners were recorded: as it says
    assert run_status({"status": "failed", "owner": owner_of_a_finished_process()}, tmp_path) == "failed"

    elsewhere = {"status": "running", "owner": {**me, "host": "elsewhere"}}
    assert run_status(elsewhere, tmp_path) == "stale"  # nothing here can confirm it
    lock = RunLock(run.lock_file)
    assert lock.acquire()
    try:
        assert run_status(elsewhere, tmp_path) == "running"  # its lock is held (a shared file system that shows locks)
    finally:
        lock.release()


def test_show_and_compare_name_a_crashed_run(tmp_path):
    run = RunDir(tmp_path / "r-20260101-000000-abcd")
    run.path.mkdir()
    run.config.write_text("name: r\ntrain: {epochs: 3}\n")
    run.write_meta({"status": "running", "owner": owner_of_a_finished_process()})
    shown = invoke("show", str(run.path))
    assert "status  crashed (0/3 epochs)" in shown.output
    assert f"is gone; continue with: dilbench train --resume {run.path}" in shown.output
    listed = invoke("compare", str(run.path), "--columns", "run,status", "--format", "json")
    assert json.loads(listed.output) == [{"run": run.path.name, "status": "crashed"}]


def test_one_writer_per_run(tmp_path):
    with RunWriter.create(tmp_path, "x") as first:
        with pytest.raises(RunBusy) as refused:
            RunWriter.claim(first.run)
        assert str(refused.value).startswith(
            f"{first.run.path} is being written by pid {os.getpid()} on {platform.node()} (since ")
        assert refused.value.exit_code == 1
    with RunWriter.claim(first.run):  # free again once the first closed
        pass


def test_a_new_writer_removes_what_killed_writes_left(tmp_path):
    with RunWriter.create(tmp_path, "x") as writer:
        run = writer.run
    left = [run.path / ".meta.json.1a2b3c4d.tmp", run.plots / ".curves.tmp.png",
            run.checkpoints / "latest" / "ckpt-3.index.tempstate123"]
    (run.checkpoints / "best" / "ckpt-2_temp").mkdir(parents=True)
    for path in left:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("partial")
    (run.checkpoints / "latest" / "ckpt-2.index").write_text("kept")
    with RunWriter.claim(run):
        assert run.partial_files() == []
    assert (run.checkpoints / "latest" / "ckpt-2.index").exists()


@pytest.mark.parametrize("err, message", [
    (OSError(errno.ENOSPC, "No space left on device", "/r/x/meta.json"),
     "no space left on device writing /r/x/meta.json; free space on that file system, then RETRY"),
    (OSError(errno.EROFS, "Read-only file system", "/r/x/.lock"),
     "read-only file system writing /r/x/.lock; remount it read-write or use a writable place, then RETRY"),
    (OSError(errno.EACCES, "Permission denied"),
     "permission denied writing /r/x; make it writable for this user (chmod/chown) or use another place, then RETRY"),
    (RuntimeError("{{function_node SaveV2}} /r/x/checkpoints/best/ckpt-2_temp/part-00000-of-00001.data-00000-of-00001"
                  ".tempstate19; No space left on device [Op:SaveV2]"),
     "no space left on device writing /r/x/checkpoints/best/ckpt-2; free space on that file system, then RETRY"),
    (ValueError("a bug"), None),
])
def test_file_system_errors_read_as_one_line_with_the_path_and_the_fix(err, message):
    assert describe(err, "writing", Path("/r/x"), "RETRY") == message


def test_metrics_are_read_up_to_the_first_unreadable_line_saying_where(tmp_path):
    run = RunDir.create(tmp_path, "r")
    good = [{"epoch": 1, "test_acc": 0.5}, {"epoch": 2, "eval_acc": 0.6, "eval_split": "validation"}]
    lines = [json.dumps(good[0]), "", json.dumps(good[1])]
    run.metrics_file.write_text("\n".join([*lines, '{"epoch": 3, "ev']) + "\n")
    expected = [{"epoch": 1, "eval_acc": 0.5, "eval_split": "test"}, good[1]]
    assert run.read_metrics_checked() == (expected, "last line unreadable (Unterminated string starting at: line 1 column 14 (char 13))")
    run.metrics_file.write_text("\n".join([lines[0], "[1]", lines[2]]) + "\n")
    assert run.read_metrics_checked() == (expected[:1], "line 2 of 3 unreadable (not an object but list)")
    assert run.read_metrics() == expected[:1]
