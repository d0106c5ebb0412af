"""Managing runs: tags, notes, the trash and pruning checkpoints, on run directories written by hand (no TensorFlow).

The same operations on live training runs, and racing annotators, are in tests/faults/test_manage_live.py.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from toolkit import invoke

from dilbench.runs.lock import RunLock
from dilbench.runs.rundir import RunDir
from dilbench.runs.trash import TRASH, find_trash, parse_age, tree_bytes


def write_run(root: Path, name: str, status: str = "completed", checkpoints: dict[str, int] | None = None) -> Path:
    """A finished run directory; `checkpoints`: set -> bytes of its one checkpoint."""
    path = root / f"{name}-20261201-120000-abcd"
    for sub in ("events", "plots", "checkpoints"):
        (path / sub).mkdir(parents=True)
    (path / "config.yaml").write_text(yaml.safe_dump({"name": name, "seed": 0, "train": {"epochs": 1}}))
    (path / "meta.json").write_text(json.dumps({"status": status, "name": name}))
    (path / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "eval_acc": 0.5, "train_acc": 0.5}) + "\n")
    for which, size in (checkpoints or {}).items():
        directory = path / "checkpoints" / which
        directory.mkdir()
        (directory / "ckpt-1.index").write_bytes(b"i" * 10)
        (directory / "ckpt-1.data-00000-of-00001").write_bytes(b"d" * (size - 10))
    return path


@pytest.fixture
def runs(tmp_path) -> Path:
    root = tmp_path / "runs"
    for name in ("a", "b", "c"):
        write_run(root, name, checkpoints={"latest": 1000, "best": 300})
    return root


def run_of(runs: Path, name: str) -> Path:
    return runs / f"{name}-20261201-120000-abcd"


# ---- tags and notes -----------------------------------------------------------------------------------
def test_tags_are_added_removed_listed_and_filter_compare(runs):
    a, b = run_of(runs, "a"), run_of(runs, "b")
    result = invoke("tag", a, b, "+baseline", "+quick-2", "-never-there")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [f"{a}: baseline, quick-2", f"{b}: baseline, quick-2"]
    assert invoke("tag", b, "-quick-2", "-q").exit_code == 0  # -q is --quiet, not a tag named q
    assert json.loads((b / "tags.json").read_text())["tags"] == ["baseline"]
    assert invoke("tag", a).stdout == f"{a}: baseline, quick-2\n"
    assert json.loads((a / "meta.json").read_text()) == {"status": "completed", "name": "a"}  # meta.json untouched

    def selected(*where: str) -> list[str]:
        result = invoke("compare", runs, "--format", "json", "--columns", "name,tags", *(a for w in where for a in ("--where", w)))
        assert result.exit_code == 0, result.output
        return [row["name"] for row in json.loads(result.stdout)]

    assert selected("tag=baseline") == ["a", "b"]
    assert selected("tags=quick-2") == ["a"]
    assert selected("tag!=baseline") == ["c"]
    assert selected("tag=") == ["c"] and selected("tag=quick-2,nothing") == ["a"]
    rows = json.loads(invoke("compare", runs, "--format", "json", "--columns", "name,tags,note").stdout)
    assert rows[0] == {"name": "a", "tags": "baseline,quick-2", "note": None} and rows[2]["tags"] is None


@pytest.mark.parametrize("bad", ["+", "+has space", "+a,b", "+-lead", "+" + "x" * 65])
def test_a_bad_tag_is_a_usage_error(runs, bad):
    result = invoke("tag", run_of(runs, "a"), bad)
    assert result.exit_code == 2 and "a tag is 1-64 letters" in result.output
    assert not (run_of(runs, "a") / "tags.json").exists()


def test_notes_are_set_appended_printed_cleared_and_shown(runs):
    a = run_of(runs, "a")
    assert invoke("note", a).stdout == "(no note)\n"
    assert invoke("note", a, "lr too high?").exit_code == 0
    assert invoke("note", a, "--append", "yes: diverged at epoch 3").exit_code == 0
    assert (a / "notes.md").read_text() == "lr too high?\nyes: diverged at epoch 3\n"
    assert invoke("note", a).stdout == "lr too high?\nyes: diverged at epoch 3\n"
    rows = json.loads(invoke("compare", runs, "--format", "json", "--columns", "name,note").stdout)
    assert rows[0]["note"] == "lr too high? / yes: diverged at epoch 3"
    invoke("tag", a, "+diverged")
    shown = invoke("show", a).stdout
    assert "tags    diverged\n" in shown and "note    lr too high?\n        yes: diverged at epoch 3\n" in shown
    assert invoke("note", a, "--clear").exit_code == 0 and not (a / "notes.md").exists()


def test_annotating_needs_no_training_lock_and_cleans_a_killed_annotators_temp_file(runs):
    a = RunDir(run_of(runs, "a"))
    trainer = RunLock(a.lock_file)
    assert trainer.acquire("a trainer")  # held for the whole of training
    try:
        debris = a.path / ".tags.json.dead0001.tmp"  # a tagger killed between writing and renaming
        debris.write_text("{}")
        assert debris in a.annotation_partials() and debris not in a.partial_files()  # the trainer's sweep leaves it
        assert invoke("tag", a.path, "+live").exit_code == 0 and invoke("note", a.path, "while training").exit_code == 0
        assert not debris.exists() and a.read_tags() == ["live"] and a.read_note() == "while training"
    finally:
        trainer.release()


def test_an_unreadable_tags_file_is_a_problem_of_its_run_not_an_error(runs):
    (run_of(runs, "a") / "tags.json").write_text("[not json")
    result = invoke("compare", runs, "--columns", "name,tags")
    assert result.exit_code == 0 and "tags.json unreadable" in result.stderr


# ---- the trash ----------------------------------------------------------------------------------------
def test_rm_moves_runs_to_the_trash_where_compare_and_sweeps_do_not_see_them(runs):
    from dilbench.sweep.existing import scan

    a = run_of(runs, "a")
    result = invoke("rm", a)
    assert result.exit_code == 0, result.output
    (entry,) = (runs / TRASH).iterdir()
    assert entry.name.startswith(f"{a.name}-deleted-") and not a.exists() and (entry / "meta.json").is_file()
    assert f"moved {a} to {entry}" in result.stderr
    listed = json.loads(invoke("compare", runs, "--format", "json", "--columns", "name").stdout)
    assert [row["name"] for row in listed] == ["b", "c"]
    assert set(scan(runs)) == {"b", "c"}  # a sweep finds no run `a`: it would start it again
    assert invoke("rm", entry).exit_code == 1  # already in the trash

    table = invoke("trash", "list", runs)
    assert table.exit_code == 0 and str(a) in table.stdout and str(entry) in table.stdout
    assert f"{tree_bytes(entry) / 1024:.1f} KiB" in table.stdout

    restored = invoke("trash", "restore", a)  # by the path it had
    assert restored.exit_code == 0 and a.is_dir() and not entry.exists() and (a / "meta.json").is_file()


def test_rm_refuses_a_run_being_written_and_restore_refuses_to_overwrite(runs):
    a = RunDir(run_of(runs, "a"))
    trainer = RunLock(a.lock_file)
    assert trainer.acquire(json.dumps({"host": "h", "pid": 4242, "since": "now"}))
    try:
        result = invoke("rm", a.path, run_of(runs, "b"))
        assert result.exit_code == 1
        assert f"Error: {a.path} is being written by pid 4242 on h (since now); it is not moved while it trains" in result.output
        assert a.path.is_dir() and not run_of(runs, "b").exists()  # the other one went
    finally:
        trainer.release()
    assert invoke("rm", a.path).exit_code == 0
    write_run(runs, "a")  # a new run of the same directory name
    (entry,) = (e.path for e in find_trash([str(runs)]) if e.run == a.path.name)
    result = invoke("trash", "restore", entry)
    assert result.exit_code == 2 and f"cannot restore {entry}: {a.path} exists" in result.output and entry.is_dir()


def test_purge_removes_what_is_older_than_asked_and_says_how_much(runs):
    for name in ("a", "b"):
        assert invoke("rm", run_of(runs, name)).exit_code == 0
    old = next(p for p in (runs / TRASH).iterdir() if p.name.startswith("a-"))
    when = (datetime.now(UTC) - timedelta(days=40)).strftime("%Y%m%d-%H%M%S")
    old.rename(old.with_name(f"{run_of(runs, 'a').name}-deleted-{when}"))
    size = tree_bytes(old.with_name(f"{run_of(runs, 'a').name}-deleted-{when}"))
    assert invoke("trash", "purge", runs).exit_code == 2  # neither --older-than nor --all
    dry = invoke("trash", "purge", runs, "--older-than", "30d", "--dry-run")
    assert dry.exit_code == 0 and "would remove" in dry.stdout
    assert f"would free {size / 1024:.1f} KiB ({size} bytes) from 1 of 2" in dry.stderr
    assert len(list((runs / TRASH).iterdir())) == 2
    purged = invoke("trash", "purge", runs, "--older-than", "30d")
    assert purged.exit_code == 0 and f"freed {size / 1024:.1f} KiB ({size} bytes) from 1 of 2 trashed run(s)" in purged.stderr
    assert [p.name.split("-")[0] for p in (runs / TRASH).iterdir()] == ["b"]
    assert invoke("trash", "purge", runs, "--all").exit_code == 0 and not list((runs / TRASH).iterdir())
    assert invoke("trash", "list", runs).stderr == "the trash is empty\n"


def test_ages():
    assert [parse_age(t) for t in ("30d", "12h", "90m", "45s", "2w", "1.5h")] == [
        timedelta(days=30), timedelta(hours=12), timedelta(minutes=90), timedelta(seconds=45), timedelta(weeks=2), timedelta(minutes=90)]
    result = invoke("trash", "purge", "--older-than", "30 days")
    assert result.exit_code == 2 and "expected a number and a unit, s, m, h, d or w" in result.output


# ---- pruning checkpoints ------------------------------------------------------------------------------
def test_prune_keeps_one_checkpoint_set_and_says_what_it_frees(runs):
    a, b = run_of(runs, "a"), run_of(runs, "b")
    (a / "checkpoints.old-20261130-000000").mkdir()  # set aside by --restart
    (a / "checkpoints.old-20261130-000000" / "x").write_bytes(b"x" * 50)
    dry = invoke("prune", a, b, "--keep", "best", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"{a}: would remove checkpoints/latest, checkpoints.old-20261130-000000 (1.0 KiB)" in dry.stdout
    assert "would free 2.0 KiB (2050 bytes)" in dry.stderr and (a / "checkpoints" / "latest").is_dir()
    done = invoke("prune", a, "--keep", "best")
    assert done.exit_code == 0 and "freed 1.0 KiB (1050 bytes)" in done.stderr
    assert sorted(p.name for p in (a / "checkpoints").iterdir()) == ["best"] and not (a / "checkpoints.old-20261130-000000").exists()
    assert invoke("prune", b, "--keep", "latest").exit_code == 0
    assert sorted(p.name for p in (b / "checkpoints").iterdir()) == ["latest"]
    again = invoke("prune", b, "--keep", "best")  # no best/ left: the run is kept whole
    assert again.exit_code == 0 and f"{b}: no best checkpoint; left whole" in again.stderr
    assert sorted(p.name for p in (b / "checkpoints").iterdir()) == ["latest"]


def test_prune_never_touches_a_run_being_written(runs):
    a = RunDir(run_of(runs, "a"))
    trainer = RunLock(a.lock_file)
    assert trainer.acquire("a trainer")
    try:
        for extra in ((), ("--dry-run",)):
            result = invoke("prune", a.path, "--keep", "best", *extra)
            assert result.exit_code == 0 and f"{a.path}: being written by another process; left alone" in result.stderr
        assert sorted(p.name for p in a.checkpoints.iterdir()) == ["best", "latest"]
    finally:
        trainer.release()
    assert os.path.exists(a.lock_file)


def test_a_trashed_run_being_written_is_neither_restored_nor_purged_nor_resumed_in_the_trash(runs):
    a = run_of(runs, "a")
    assert invoke("rm", a, run_of(runs, "b")).exit_code == 0
    (entry_a, entry_b) = sorted(find_trash([str(runs)]), key=lambda e: e.run)
    size_b = tree_bytes(entry_b.path)
    resumed = invoke("train", "--resume", entry_a.path)
    assert resumed.exit_code == 2
    assert resumed.output == f"Error: {entry_a.path} is in the trash; put it back first: dilbench trash restore {entry_a.path}\n"
    writer = RunLock(RunDir(entry_a.path).lock_file)  # a process writing the run inside the trash all the same
    assert writer.acquire(json.dumps({"host": "h", "pid": 4242, "since": "now"}))
    try:
        restored = invoke("trash", "restore", entry_a.path)
        assert restored.exit_code == 1 and entry_a.path.is_dir() and not a.exists()
        assert restored.output == f"Error: {entry_a.path} is being written by pid 4242 on h (since now); left in the trash\n"
        purged = invoke("trash", "purge", runs, "--all")
        assert purged.exit_code == 1 and entry_a.path.is_dir() and not entry_b.path.exists()  # the other one went
        assert purged.stdout == f"removed {entry_b.path} ({size_b / 1024:.1f} KiB)\n"
        assert purged.stderr.splitlines()[-1] == f"Error: {entry_a.path} is being written by pid 4242 on h (since now); left in the trash"
    finally:
        writer.release()
    assert invoke("trash", "restore", a).exit_code == 0 and (a / "meta.json").is_file()
