"""The summary index behind compare and show (report/index_store.py): what it answers is what the run
directories say, call after call, whatever changed between the calls; it reads only what changed; it
is optional (the same output without it, or where it cannot be written) and survives damage.

Run directories are written by hand as in test_compare.py, then *aged* (mtimes an hour back): a file
changed within the last RACY_NS is never kept in the index, so a test that writes and reads within a
second would otherwise only ever exercise the files.
"""

from __future__ import annotations

import json
import operator
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from toolkit import CONFIGS, HOUR, age, age_file, config, epoch_records, invoke, make_runs, nonempty, write_run

from dilbench.report import index_store, run_parts
from dilbench.report.compare import compare
from dilbench.report.index_store import INDEX_DIR
from dilbench.report.runs_index import path_key, read_run
from dilbench.runs.owner import this_process


@pytest.fixture
def runs(tmp_path) -> Path:
    return make_runs(tmp_path / "runs")


def indexed(index: bool) -> dict[str, str]:
    """The environment of a call with the index on or off."""
    return {"DILBENCH_INDEX": "on" if index else "off"}


def output(*args: str, index: bool = True) -> tuple[str, str]:
    result = invoke(*args, env=indexed(index))
    return result.stdout, result.stderr


def parsed(runs: Path, **options) -> dict[str, int]:
    """Files a compare call had to parse (those the index did not hold)."""
    return dict(compare([str(runs)], **options).reader.parsed)


# ---- the same answers with and without the index -----------------------------------------------------
COMMANDS = [
    [], ["--format", "csv"], ["--format", "json"], ["--format", "markdown"],
    ["--columns", "+optimizer.lr,meta.git.dirty,last:updates_total,mean:eval_loss,epoch_of:min:eval_loss,path,problems"],
    ["--group-by", "schedule"], ["--group-by", "schedule.name,seed", "--format", "json"],
    ["--sort", "-max:eval_acc,seed", "--top", "3"], ["--where", "schedule=unfair_back", "--where", "max:eval_acc>0.6"],
    ["--where", "optimizer.lr=1e-4", "--diff"], ["--at-flops", "2.5e9", "--format", "json"],
    ["--columns", "run,at:seconds=12:eval_acc,train_flops,eval_time,train_time", "--group-by", "augmentation"],
    ["--list-columns"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args) or "default")
def test_results_are_identical_with_and_without_the_index(runs, args):
    broken = runs / "zz-broken"
    write_run(runs, "zz-broken", config("zz", "standard", 9, 1e-3), {"status": "interrupted"}, None)
    (broken / "metrics.jsonl").write_text(json.dumps(epoch_records([0.5], [0.5], [1.0], [1])[0]) + "\n{\"epoch\": 2, \"eval")
    age(runs)
    without = output("compare", runs, *args, index=False)
    assert not (runs / INDEX_DIR).exists()
    cold, warm = output("compare", runs, *args), output("compare", runs, *args)
    assert (runs / INDEX_DIR).is_dir()
    assert cold == without and warm == without


def test_show_is_identical_with_and_without_the_index(runs):
    run = next(runs.glob("r3-*"))
    without = output("show", run, index=False)
    assert output("show", run) == without and output("show", run) == without
    assert read_run(run).metrics == [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


# ---- never stale --------------------------------------------------------------------------------
def rows(runs: Path) -> dict[str, dict]:
    return {row["run"]: row for row in json.loads(output("compare", runs, "--format", "json")[0])}


def test_a_changed_new_deleted_or_half_written_run_shows_its_current_state(runs):
    before = rows(runs)
    assert rows(runs) == before and parsed(runs) == {}
    first, second, third = sorted(runs.glob("r*"))[:3]

    # a trainer finished another epoch: metrics.jsonl replaced (new inode), meta.json rewritten
    records = [json.loads(line) for line in (first / "metrics.jsonl").read_text().splitlines()]
    records.append({**records[-1], "epoch": 4, "eval_acc": 0.99})
    (first / "metrics.jsonl.tmp").write_text("".join(json.dumps(r) + "\n" for r in records))
    (first / "metrics.jsonl.tmp").replace(first / "metrics.jsonl")
    # a run edited in place, to the same size, its mtime set back to where it was
    text = (second / "config.yaml").read_text()
    stamp = (second / "config.yaml").stat().st_mtime_ns
    (second / "config.yaml").write_text(text.replace("unfair_back", "unfair_frnt").replace("standard", "standarX"))
    os.utime(second / "config.yaml", ns=(stamp, stamp + 1))
    # a run being written: its last line torn
    with open(third / "metrics.jsonl", "a") as handle:
        handle.write('{"epoch": 4, "eval_ac')
    shutil_rmtree(next(runs.glob("r5-*")))
    write_run(runs, "new-20260101-000000-ffff", config("new", "standard", 7, 1e-3), {"status": "running"}, None)

    after = rows(runs)
    assert after[first.name]["epochs"] == 4 and after[first.name]["final_eval_acc"] == 0.99
    assert after[second.name]["schedule"] in ("unfair_frnt", "standarX")
    assert after[third.name]["epochs"] == 3  # the torn line is not an epoch, and is reported
    assert "metrics.jsonl last line unreadable" in output("compare", runs)[1]
    assert not any(name.startswith("r5-") for name in after) and after["new-20260101-000000-ffff"]["status"] == "running"
    assert after == rows(runs) == {row["run"]: row for row in json.loads(output("compare", runs, "--format", "json", index=False)[0])}


def shutil_rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path)


def test_a_file_that_appears_later_is_seen(runs):
    """A run that had finished no epoch has no metrics.jsonl; its first epoch must show, although the
    index does not look for absent files while their directory is unchanged."""
    run = write_run(runs, "fresh-20260101-000000-0001", config("fresh", "standard", 0, 1e-3), {"status": "running"}, None)
    age(runs)
    assert rows(runs)[run.name]["epochs"] == 0
    assert rows(runs)[run.name]["epochs"] == 0 and parsed(runs) == {}
    (run / "metrics.jsonl").write_text(json.dumps(epoch_records([0.5], [0.5], [1.0], [1])[0]) + "\n")
    assert rows(runs)[run.name]["epochs"] == 1


def test_a_warm_call_after_one_change_reads_that_file_only(runs):
    assert parsed(runs) == {"config.yaml": 6, "meta.json": 6, "metrics.jsonl": 6}  # cold: every file once
    assert parsed(runs) == {}
    run = next(runs.glob("r2-*"))
    with open(run / "metrics.jsonl", "a") as handle:  # a trainer appending an epoch
        handle.write(json.dumps({**epoch_records([0.9], [0.9], [1.0], [1])[0], "epoch": 4}) + "\n")
    age_file(run / "metrics.jsonl")
    table = compare([str(runs)], columns="run,epochs,final_eval_acc")
    assert dict(table.reader.parsed) == {"metrics.jsonl": 1}
    assert {row["run"]: (row["epochs"], row["final_eval_acc"]) for row in table.rows}[run.name] == (4, 0.9)
    assert parsed(runs) == {}


def test_a_file_changed_moments_ago_is_read_again_next_time(runs):
    """Within RACY_NS of a change, a same-size rewrite in the same clock tick could not be told apart:
    such a part is not kept, so the next call reads the file again (and then keeps it)."""
    run = next(runs.glob("r1-*"))
    (run / "meta.json").write_text((run / "meta.json").read_text())  # changed now
    assert parsed(runs) == {"config.yaml": 6, "meta.json": 6, "metrics.jsonl": 6}
    assert parsed(runs) == {"meta.json": 1}
    age_file(run / "meta.json")
    assert parsed(runs) == {"meta.json": 1}
    assert parsed(runs) == {}


def test_only_what_is_asked_for_is_read(runs, monkeypatch):
    """--where on a config key reads config.yaml alone for the runs it drops; a table of final metrics
    never unpacks a run's epochs."""
    assert parsed(runs, where=("schedule=standard",), columns="run,final_eval_acc") == {
        "config.yaml": 6, "meta.json": 3, "metrics.jsonl": 3}  # meta.json: the warnings of the rows shown
    output("compare", runs)
    unpacked = []
    original = index_store.SeriesChunk.__init__
    monkeypatch.setattr(index_store.SeriesChunk, "__init__", lambda self, data: (unpacked.append(1), original(self, data))[1])
    assert output("compare", runs, "--group-by", "schedule")[0] and not unpacked
    assert output("compare", runs, "--at-flops", "2e9")[0] and unpacked  # epochs needed: unpacked


def test_a_dead_owner_shows_crashed_and_a_live_one_running_call_after_call(runs):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    for name, owner in (("dead", {**this_process(), "pid": int(dead.stdout)}), ("alive", this_process())):
        write_run(runs, f"{name}-20260101-000000-0000", config(name, "standard", 0, 1e-3),
                  {"status": "running", "owner": owner}, epoch_records([0.5], [0.5], [1.0], [1]))
    age(runs)
    for _ in range(3):
        found = rows(runs)
        assert found["dead-20260101-000000-0000"]["status"] == "crashed"
        assert found["alive-20260101-000000-0000"]["status"] == "running"
    assert parsed(runs) == {}  # the owner is checked each time, not the file read again


def test_a_same_size_rewrite_with_its_times_put_back_is_seen(runs):
    """cp -p, rsync -t or touch -r put a file's modification time back; its change time cannot be: a rewrite of
    the same size with the very same mtime, on the same inode, still shows."""
    def hosts() -> dict[str, str]:
        return {row["run"]: row["meta.host"] for row in compare([str(runs)], columns="run,meta.host").rows}

    assert set(hosts().values()) == {"lab1"} and parsed(runs) == {}
    meta = next(runs.glob("r1-*")) / "meta.json"
    before = meta.stat()
    meta.write_text(meta.read_text().replace("lab1", "lab9"))
    os.utime(meta, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = meta.stat()
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    assert hosts()[meta.parent.name] == "lab9"


def test_a_file_that_appears_with_its_directory_time_put_back_is_seen(runs):
    """rsync -a sets a directory's mtime back to the source's after filling it: a metrics.jsonl that appeared
    meanwhile must still show, although the index only looks for absent files when the directory changed."""
    run = write_run(runs, "fresh-20260101-000000-0002", config("fresh", "standard", 0, 1e-3), {"status": "running"}, None)
    age(runs)
    assert rows(runs)[run.name]["epochs"] == 0 and rows(runs)[run.name]["epochs"] == 0 and parsed(runs) == {}
    before = run.stat()
    (run / "metrics.jsonl").write_text(json.dumps(epoch_records([0.5], [0.5], [1.0], [1])[0]) + "\n")
    age_file(run / "metrics.jsonl")
    os.utime(run, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert run.stat().st_mtime_ns == before.st_mtime_ns
    assert rows(runs)[run.name]["epochs"] == 1


def test_a_shard_written_by_other_code_is_ignored_and_rewritten(runs, monkeypatch):
    """A shard names the code that summarised its runs (index_store.code_digest): after an upgrade that
    summarises a file differently (a reduction added, a bug fixed), no summary made the old way is shown."""
    expected = output("compare", runs, "--format", "json", index=False)
    assert output("compare", runs, "--format", "json") == expected and parsed(runs) == {}
    monkeypatch.setattr(index_store, "code_digest", lambda: "other-code")
    assert parsed(runs) == {"config.yaml": 6, "meta.json": 6, "metrics.jsonl": 6}
    assert parsed(runs) == {} and output("compare", runs, "--format", "json") == expected


def test_on_a_network_file_system_each_file_is_opened_to_be_looked_at(runs, monkeypatch):
    """An NFS client may answer a stat from attributes cached for up to a minute after another host wrote the
    file; opening it asks the server (close-to-open). Simulated here: os.stat answers from a snapshot taken
    before a change, as a client's attribute cache would, and the index still shows the change."""
    monkeypatch.setattr(index_store, "_mounts", lambda: [(str(runs.parent), "nfs4"), ("/", "ext4")])
    assert index_store.on_network_fs(runs) and index_store.on_network_fs(runs / "r0") and not index_store.on_network_fs(runs.parent.parent)
    same = operator.attrgetter("st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")
    assert same(os.stat(runs)) == same(index_store.fresh_stat(str(runs)))
    expected = output("compare", runs, "--format", "json", index=False)
    assert output("compare", runs, "--format", "json") == expected and parsed(runs) == {}

    meta = next(runs.glob("r2-*")) / "meta.json"
    cached = {str(path): os.stat(path) for path in runs.rglob("*") if INDEX_DIR not in path.parts}
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda path, *args, **kwargs: cached.get(str(path)) or real_stat(path, *args, **kwargs))
    meta.write_text(meta.read_text().replace('"status": "completed"', '"status": "failed", "error": "NaN loss"'))
    age_file(meta)
    assert os.stat(meta) == cached[str(meta)]  # what a plain stat would now say: nothing changed
    assert rows(runs)[meta.parent.name]["status"] == "failed"


def test_a_hidden_trash_directory_is_not_searched(runs):
    """Runs moved to runs/.trash/ (or any hidden directory) are gone from compare, as if deleted; named
    explicitly, the trash is a directory of runs like another."""
    assert len(rows(runs)) == 6
    trash = runs / ".trash"
    trash.mkdir()
    victim = next(runs.glob("r5-*"))
    victim.rename(trash / victim.name)
    write_run(trash, "binned-20260101-000000-0003", config("binned", "standard", 0, 1e-3), {"status": "completed"}, None)
    age(runs)
    found = rows(runs)
    assert len(found) == 5 and victim.name not in found and not any(name.startswith("binned") for name in found)
    assert output("compare", runs) == output("compare", runs, index=False)
    assert output("compare", f"{runs}/*") == output("compare", runs)  # globs skip hidden names
    assert output("compare", f"{runs}/**") == output("compare", runs)
    assert sorted(rows(trash)) == ["binned-20260101-000000-0003", victim.name]


# ---- where it lives ---------------------------------------------------------------------------------
def test_several_directories_and_globs_keep_one_index_per_runs_directory(tmp_path):
    one, two = make_runs(tmp_path / "exp" / "a" / "runs", 2), make_runs(tmp_path / "exp" / "b" / "runs", 3)
    expected = output("compare", tmp_path / "exp", index=False)
    assert output("compare", tmp_path / "exp") == expected
    assert (one / INDEX_DIR).is_dir() and (two / INDEX_DIR).is_dir() and not (tmp_path / "exp" / INDEX_DIR).exists()
    glob = output("compare", f"{two}/r1-*", f"{one}/r0-*")
    assert glob == output("compare", f"{two}/r1-*", f"{one}/r0-*", index=False)
    assert parsed(tmp_path / "exp") == {}


def test_a_runs_directory_you_cannot_write_keeps_its_index_in_the_cache(runs, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("DILBENCH_CACHE", str(cache))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == runs else real_access(path, mode))
    expected = output("compare", runs, index=False)
    assert output("compare", runs) == expected and output("compare", runs) == expected
    assert not (runs / INDEX_DIR).exists() and list((cache / "index").glob("*/v*-*.shard"))
    assert parsed(runs) == {}


def test_with_nowhere_to_write_compare_reads_the_files_without_an_error(runs, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("DILBENCH_CACHE", str(tmp_path / "a-file" / "cache"))  # cannot become a directory
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if Path(path) == runs else real_access(path, mode))
    expected = output("compare", runs, index=False)
    assert output("compare", runs) == expected and output("compare", runs) == expected
    assert parsed(runs) == {"config.yaml": 6, "meta.json": 6, "metrics.jsonl": 6}


def test_deleting_the_index_only_costs_time(runs):
    expected = output("compare", runs)
    import shutil

    shutil.rmtree(runs / INDEX_DIR)
    assert output("compare", runs) == expected and parsed(runs) == {}


# ---- damage -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["flip", "truncate", "empty", "other format"])
def test_a_damaged_shard_is_ignored_and_rewritten(runs, damage):
    expected = output("compare", runs, "--format", "json", index=False)
    output("compare", runs)
    for shard in (runs / INDEX_DIR).glob("v*-*.shard"):
        data = bytearray(shard.read_bytes())
        if damage == "flip":
            data[len(data) * 2 // 3] ^= 0xFF
        elif damage == "truncate":
            data = data[: len(data) * 2 // 3]
        elif damage == "empty":
            data = bytearray()
        else:
            data[4:8] = (99).to_bytes(4, "little")
        shard.write_bytes(bytes(data))
    assert output("compare", runs, "--format", "json") == expected  # read from the files where the index failed
    assert output("compare", runs, "--format", "json") == expected and parsed(runs) == {}  # and rewritten


def test_temp_files_of_a_killed_writer_are_removed_once_old(runs):
    output("compare", runs)
    index = runs / INDEX_DIR
    old, new = index / ".v2-00.shard.1-dead.tmp", index / ".v2-01.shard.2-live.tmp"
    for temp in (old, new):
        temp.write_bytes(b"half a shard")
    os.utime(old, (time.time() - 2 * HOUR,) * 2)
    run = next(runs.glob("r0-*"))
    (run / "meta.json").write_text((run / "meta.json").read_text().replace("lab1", "lab2"))
    age_file(run / "meta.json")
    output("compare", runs)  # writes a shard, and cleans up
    assert not old.exists() and new.exists()


# ---- another small per-run file -------------------------------------------------------------------------
def test_another_per_run_file_is_one_line_and_kept_fresh(runs, monkeypatch):
    """A labels.json beside config.yaml, as another feature might add: one line in SOURCES, and the index
    stores it, notices it appear (its directory changed) and change, like the files compare reads today."""
    monkeypatch.setitem(run_parts.SOURCES, "labels", run_parts.Source("labels.json", run_parts.read_json_part))
    run = next(runs.glob("r4-*"))

    def labels() -> tuple[dict, int]:
        table = compare([str(runs)])
        record = next(record for (record,) in table.members if record.dirname == run.name)
        found = record.part("labels").as_dict()
        table.save_index()
        return found, record.reader.parsed["labels.json"]

    assert labels() == ({}, 0)
    (run / "labels.json").write_text(json.dumps({"labels": ["baseline"], "by": {"who": "ana"}}))
    age_file(run / "labels.json")
    assert labels() == ({"labels": ["baseline"], "by.who": "ana"}, 1)
    assert labels() == ({"labels": ["baseline"], "by.who": "ana"}, 0)  # from the index
    (run / "labels.json").write_text(json.dumps({"labels": ["tuned"]}))
    age_file(run / "labels.json")
    assert labels() == ({"labels": ["tuned"]}, 1)


# ---- tags.json and notes.md (dilbench tag, dilbench note) ---------------------------------------------------
def annotated(runs: Path, run: Path) -> tuple[dict, dict[str, int]]:
    """The run's tags, note and problems as compare shows them, and the files it parsed (then the index is saved)."""
    table = compare([str(runs)], columns="run,tags,note,problems")
    row = next(row for row in table.rows if row["run"] == run.name)
    table.save_index()
    return {key: row[key] for key in ("tags", "note", "problems")}, dict(table.reader.parsed)


def test_tags_and_notes_are_read_through_the_index_and_never_stale(runs):
    """`dilbench tag` and `note` replace their file: the next call shows it, the one after takes it from the index,
    and removing a tag or the note shows at once too."""
    run = next(runs.glob("r4-*"))
    annotated(runs, run)  # builds the index
    assert annotated(runs, run) == ({"tags": None, "note": None, "problems": None}, {})
    assert invoke("tag", run, "+baseline", "+lr-high").exit_code == 0
    age_file(run / "tags.json")
    assert annotated(runs, run) == ({"tags": "baseline,lr-high", "note": None, "problems": None}, {"tags.json": 1})
    assert annotated(runs, run) == ({"tags": "baseline,lr-high", "note": None, "problems": None}, {})  # from the index
    assert invoke("note", run, "lr too high?").exit_code == 0 and invoke("note", run, "-a", "yes").exit_code == 0
    age_file(run / "notes.md")
    assert annotated(runs, run) == ({"tags": "baseline,lr-high", "note": "lr too high? / yes", "problems": None},
                                    {"notes.md": 1})
    assert annotated(runs, run)[1] == {}
    assert invoke("tag", run, "-lr-high").exit_code == 0 and invoke("note", run, "--clear").exit_code == 0
    age_file(run / "tags.json")
    assert annotated(runs, run) == ({"tags": "baseline", "note": None, "problems": None}, {"tags.json": 1})
    where = as_rows("compare", runs, "--where", "tag=baseline", "--columns", "run,tags")
    assert where == [{"run": run.name, "tags": "baseline"}]
    shown = output("show", run)[0]
    assert "\ntags    baseline\n" in shown and "\nnote " not in shown


def test_an_unreadable_tags_or_notes_file_is_a_problem_of_the_run(runs):
    run = next(runs.glob("r1-*"))
    annotated(runs, run)  # builds the index
    (run / "tags.json").write_text("[not json")
    (run / "notes.md").write_bytes(b"\xff\xfe")
    age_file(run / "tags.json")
    age_file(run / "notes.md")
    found, read = annotated(runs, run)
    assert found["tags"] is None and found["note"] is None and read == {"tags.json": 1, "notes.md": 1}
    assert found["problems"].startswith("tags.json unreadable") and "; notes.md unreadable" in found["problems"]
    assert annotated(runs, run) == (found, {})  # the problems are kept in the index too
    (run / "tags.json").unlink()
    (run / "notes.md").unlink()
    assert annotated(runs, run) == ({"tags": None, "note": None, "problems": None}, {})


def as_rows(*args: str, index: bool = True) -> list[dict]:
    result = invoke(*args, "--format", "json", env=indexed(index))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_pruned_runs_provenance_tags_and_notes_are_identical_with_and_without_the_index(runs):
    """Main's additions through the index: a search's pruned trial (one without metrics.jsonl is a problem, as a
    completed run's), resource figures, provenance columns, tags and notes: the same answers either way."""
    records = epoch_records([0.5, 0.52], [0.5, 0.6], [10.0, 10.0], [1])
    for record, peak, util in zip(records, (1.5 * 2**30, 2 * 2**30), (0.5, 0.7)):
        record.update(peak_rss_bytes=int(peak), cpu_seconds=5.0, cpu_util=util)
    search = {"study": "s", "study_id": "abc", "trial": 3, "params": {"optimizer.lr": 0.01}, "role": "tune"}
    meta = {"status": "pruned", "name": "t3", "seed": 0, "pruned": "worse than the median at epoch 2", "search": search,
            "provenance": {"source": {"commit": "abc123", "dirty": True}, "data": {"sha256": "f" * 64}}}
    write_run(runs, "t3-20260101-000000-00aa", config("t3", "standard", 0, 1e-2), meta, records)
    write_run(runs, "t4-20260101-000000-00bb", config("t4", "standard", 0, 1e-2), {**meta, "name": "t4"}, None)
    assert invoke("tag", runs / "t3-20260101-000000-00aa", "+trial").exit_code == 0
    assert invoke("note", runs / "r2-20260101-000000-0002", "two\nlines").exit_code == 0
    age(runs)
    columns = "run,status,peak_rss_mib,cpu_util,gpu_peak_mib,data_sha256,dirty,tags,note,problems"
    for args in (["--columns", columns], ["--columns", columns, "--where", "status=pruned"],
                 ["--where", "tag=trial", "--columns", "run,meta.search.trial"], ["--group-by", "status"]):
        without = as_rows("compare", runs, *args, index=False)
        assert as_rows("compare", runs, *args) == without and as_rows("compare", runs, *args) == without
    rows = {row["run"]: row for row in as_rows("compare", runs, "--columns", columns)}
    assert rows["t3-20260101-000000-00aa"] == {
        "run": "t3-20260101-000000-00aa", "status": "pruned", "peak_rss_mib": 2048.0, "cpu_util": pytest.approx(0.6),
        "gpu_peak_mib": None, "data_sha256": "f" * 12, "dirty": True, "tags": "trial", "note": None, "problems": None}
    assert rows["t4-20260101-000000-00bb"]["problems"] == "no metrics.jsonl"
    assert rows["r2-20260101-000000-0002"]["note"] == "two / lines"
    for run in ("t3-20260101-000000-00aa", "r2-20260101-000000-0002"):
        assert output("show", runs / run) == output("show", runs / run, index=False)


# ---- the pieces that make it fast must not change what it says ------------------------------------------
SCALARS = ["0.0001", "1.0e-08", "1e-4", "1.5", ".inf", "-.inf", ".nan", "null", "~", "Null", "true", "True", "yes", "on",
           "off", "no", "0x1f", "0o17", "017", "1_000", "190:20:30", "2026-01-01", "2026-01-01 10:00:00", "adam",
           "-1", "-x", "CPU:0", "a b", "12e3", "+1", "0", "-0.0", "1.0", "3.", "'quoted'", "'it''s'", "'1e-4'", "=", "<<"]


@pytest.mark.parametrize("value", SCALARS)
def test_the_quick_config_reader_reads_what_yaml_reads(value):
    for text in (f"a: {value}\n", f"a:\n  b: {value}\n  c: [{value}, 1]\nd: x\n", f"{value}: 1\n", f"a: [{value}]\nb: []\nc: {{}}\n"):
        quick = run_parts.simple_yaml(text)
        try:
            full = yaml.load(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            assert quick is None
            continue
        assert quick is None or (quick == full and repr(quick) == repr(full)), text


def test_the_quick_config_reader_on_real_configs():
    from dilbench.config import dump_config, load_config

    shipped = nonempty(sorted(CONFIGS.glob("*.yaml")), "configs/*.yaml")
    texts = [dump_config(load_config(path)) for path in shipped]
    texts += ["a:\n  - x: 1\n", "a: 1\n# c\n", "a: 'x\n  y'\n", "a: |\n  x\n", "a:\n    b: 1\n  c: 2\n", "- 1\n", ""]
    for text in texts:
        quick = run_parts.simple_yaml(text)
        assert quick is None or repr(quick) == repr(yaml.load(text, Loader=yaml.CSafeLoader)), text
    quick = [path.stem for path, text in zip(shipped, texts) if run_parts.simple_yaml(text)]
    assert quick == ["allconv_standard", "context_mnist", "quickstart", "unfair_back", "unfair_front"]  # _aug: lists of ops


def test_runs_sort_as_paths_do():
    names = ["a", "a-b", "a.b", "a/b", "ab", "a b", "Z", "_x", "..", "../x", "/abs", "//net/x", "/abs/a-b", "/abs/a/b", "."]
    paths = [Path(name) for name in names]
    assert sorted(paths, key=path_key) == sorted(paths)


def test_the_owner_check_uses_this_host():
    assert this_process()["host"] == platform.node()


def test_epochs_of_an_older_series_file_are_never_used(runs):
    """A shard and its series file are replaced one after the other (and concurrent writers may race), so a
    reader may find an older series file beside a newer shard: epochs are used only while the series file
    holds them for the file signature the shard summarised, otherwise the run's metrics.jsonl is read."""
    args = ("compare", runs, "--at-flops", "2.5e9", "--format", "json")
    output(*args)  # index and series files written
    old = {path: path.read_bytes() for path in (runs / INDEX_DIR).glob("*.series")}
    assert old
    run = runs / "r2-20260101-000000-0002"
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    records[-1]["eval_acc"], records[-1]["train_flops"] = 0.99, 9e9
    (run / "metrics.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    age_file(run / "metrics.jsonl")
    output(*args)  # the changed run's new summary and epochs written
    for path, data in old.items():  # the series files put back as they were before the change
        path.write_bytes(data)
    assert parsed(runs, at_flops=2.5e9) == {"metrics.jsonl": 1}  # r2's epochs from its file, not the old chunk
    assert output(*args)[0] == output(*args, index=False)[0]
