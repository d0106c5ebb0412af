"""The summary index under real processes: `dilbench compare` killed with SIGKILL in the middle of writing
it, several compare processes building and updating it at once while runs change under them, and a runs
directory on a read-only file system. Whatever happened, the next call answers what the run directories
say (the same as with the index off), and no call waits on another."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from toolkit import HOUR, REPO, age, child_env, make_runs

CHILD = Path(__file__).with_name("index_child.py")
INDEX = ".dilbench-index"


def start(runs: Path, *args: str, go: str = "-", faults: tuple[str, ...] = (), index: bool = True) -> subprocess.Popen:
    command = [sys.executable, str(CHILD), go, *faults, "--", "compare", str(runs), "--format", "json", *args]
    env = child_env({"DILBENCH_INDEX": "on" if index else "off"})
    return subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def compare(runs: Path, *args: str, index: bool = True) -> list[dict]:
    process = start(runs, *args, index=index)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    return json.loads(out)


def temps(runs: Path) -> list[Path]:
    return sorted((runs / INDEX).glob(".*.tmp"))


@pytest.fixture
def runs(tmp_path) -> Path:
    return make_runs(tmp_path / "runs", 40)


@pytest.mark.parametrize("fault", ["kill@write=1", "kill@write=7", "kill@rename=1", "kill@rename=12"])
def test_kill_9_while_the_index_is_written_leaves_it_usable(runs, fault):
    """Killed halfway through a shard's temp file, or with it complete but not renamed, on the first shard
    or with some shards already in place: the next call answers as without an index, and rebuilds."""
    truth = compare(runs, index=False)
    killed = start(runs, faults=(fault,))
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert len(temps(runs)) == 1  # what the killed writer left
    assert compare(runs) == truth
    assert compare(runs) == truth
    stale = temps(runs)[0]
    os.utime(stale, (time.time() - 2 * HOUR,) * 2)
    run = next(runs.glob("r7-*"))
    (run / "meta.json").write_text((run / "meta.json").read_text().replace("lab1", "lab9"))  # a change: a shard is written
    os.utime(run / "meta.json", (time.time() - HOUR,) * 2)
    assert [row["run"] for row in compare(runs, "--columns", "run,meta.host", "--where", "meta.host=lab9")] == [run.name]
    assert temps(runs) == []  # the old temp file was removed by a later writer


def test_kill_9_while_a_shard_is_replaced_keeps_the_old_one(runs):
    """A warm index, one run changed, the writer killed before its new shard is renamed: the old shard
    stays in place and still answers for the others; the changed run is read from its files."""
    compare(runs)
    run = next(runs.glob("r3-*"))
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    records.append({**records[-1], "epoch": 4, "eval_acc": 0.97})
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    os.utime(run / "metrics.jsonl", (time.time() - HOUR,) * 2)
    shards = {path.name: path.read_bytes() for path in (runs / INDEX).glob("*.shard")}
    killed = start(runs, faults=("kill@rename=1",))
    killed.communicate(timeout=300)
    assert killed.returncode == -signal.SIGKILL
    assert {path.name: path.read_bytes() for path in (runs / INDEX).glob("*.shard")} == shards  # untouched
    rows = {row["run"]: row for row in compare(runs)}
    assert rows[run.name]["epochs"] == 4 and rows[run.name]["final_eval_acc"] == 0.97
    assert list(rows.values()) == compare(runs, index=False)


def test_concurrent_compares_build_and_update_one_index_while_runs_change(runs, tmp_path):
    """Six compare processes started at once on a directory without an index, then six more while a writer
    appends epochs to runs: none fails or waits on another, each sees every run, and afterwards the index
    answers exactly what the files say."""
    truth = compare(runs, index=False)
    go = tmp_path / "go"
    children = [start(runs, go=str(go)) for _ in range(6)]
    go.touch()
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        assert json.loads(out) == truth

    go2 = tmp_path / "go2"
    children = [start(runs, go=str(go2)) for _ in range(6)]
    go2.touch()
    changed = sorted(runs.glob("r*"))[::5]
    for epoch, run in enumerate(changed, start=4):  # a trainer's epochs, written as the trainer does (temp + rename)
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        records.append({**records[-1], "epoch": 4, "eval_acc": 0.5 + 0.01 * epoch})
        temp = run / ".metrics.jsonl.tmp"
        temp.write_text("".join(json.dumps(r) + "\n" for r in records))
        temp.replace(run / "metrics.jsonl")
    for child in children:
        out, err = child.communicate(timeout=300)
        assert child.returncode == 0, err
        rows = json.loads(out)
        assert [row["run"] for row in rows] == [row["run"] for row in truth]
        assert all(row["epochs"] in (3, 4) for row in rows)  # each run as it was or as it became, never anything else
    final = compare(runs, index=False)
    assert [row["epochs"] for row in final].count(4) == len(changed)
    assert compare(runs) == final and compare(runs) == final
    assert temps(runs) == []
    age(runs)  # the changed runs as an hour later: within RACY_NS of a change a part is read again, not kept
    assert compare(runs) == final
    last = start(runs, "--debug")
    out, err = last.communicate(timeout=300)
    assert json.loads(out) == final and "parsed no file; 0 shard(s) written" in err  # all of it from the index


def test_a_read_only_runs_directory_keeps_its_index_in_the_cache(runs, tmpfs, tmp_path):
    """On a file system mounted read-only (not just a permission root would ignore): no error, the same
    table, and the index in $DILBENCH_CACHE."""
    mounted = tmpfs("64m")
    subprocess.run(["cp", "-a", str(runs), str(mounted)], check=True)
    subprocess.run(["mount", "-o", "remount,ro", str(mounted)], check=True)
    read_only = mounted / "runs"
    truth = compare(read_only, index=False)
    cache = tmp_path / "cache"
    os.environ["DILBENCH_CACHE"] = str(cache)
    try:
        assert compare(read_only) == truth and compare(read_only) == truth
    finally:
        del os.environ["DILBENCH_CACHE"]
    assert list((cache / "index").glob("*/v*-*.shard")) and not (read_only / INDEX).exists()
