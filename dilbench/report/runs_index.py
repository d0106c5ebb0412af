"""Find run directories and read each into one forgiving record (no TensorFlow, no typed Config).

`compare` and `show` must list every run they are pointed at, including runs that are still running,
were killed mid-write or hold a corrupt file: a problem is recorded on that run's record and the
command carries on. config.yaml is read as plain YAML and flattened to dotted keys rather than built
into the typed Config, so runs written by older (or newer) schemas stay readable.

A record reads its files only when asked, one part per file (report/run_parts.py): a `--where` on a
config key reads config.yaml alone, a table of final metrics reads metrics.jsonl's reductions, never
its epochs. When the summary index is on (report/index_store.py) a part comes from there while its
file's size, modification time and inode are those it was built from, and from the file otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import glob
import itertools
import operator
import os
import stat
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from dilbench.errors import UsageError
from dilbench.report import index_store, provenance
from dilbench.report.packing import MISSING
from dilbench.report.run_parts import MARKER_FILES, SOURCES, Part, flatten, meta_part
from dilbench.runs.owner import run_status

__all__ = ["MISSING", "RunReader", "RunRecord", "find_runs", "flatten", "is_run_dir", "load_runs", "read_run", "read_runs", "runs_in"]

SEARCH_DEPTH = 3  # runs/<run>, experiments/x/runs/<run>, experiments/<suite>/x/runs/<run>
ENDED_WITH_EPOCHS = ("completed", "pruned")  # states that finished epochs: without metrics.jsonl, a problem
PARALLEL_MIN = 500  # files to parse before prefetch starts a process per core
Sig = tuple[int, int, int, int]  # a file's inode, size, modification and change time (ns)


def _files(counts: Counter[str]) -> str:
    return ", ".join(f"{count} {name}" for name, count in sorted(counts.items())) or "no file"


def _read_packed(job: tuple[str, str]) -> Part:
    path, name = job
    return SOURCES[name].read(Path(path)).pack()


def _workers() -> int:
    """Processes for reading files in parallel: the cores we may use (at most 4), 1 where forking is unsafe."""
    if sys.platform != "linux" or threading.active_count() > 1:
        return 1
    return min(4, len(os.sched_getaffinity(0)))


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """The garbage collector off while reading many runs: they make millions of objects and no cycles, and
    its passes over them would cost more than the reading (a third of a first call on 10,000 runs)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def watched_files() -> tuple[str, ...]:
    return tuple(source.file for source in SOURCES.values())


class RunReader:
    """Reads the runs of one command: their records, through the index of each directory holding runs
    (report/index_store.py) unless it is off, and counts the files it had to parse."""

    def __init__(self, use_index: bool | None = None):
        self.use_index = index_store.enabled() if use_index is None else use_index
        self.parsed: Counter[str] = Counter()  # file name -> files of that name parsed (not taken from the index)
        self.indexes: dict[str, index_store.DirIndex] = {}
        self.watched = watched_files()
        self.absent = {name: source.absent() for name, source in SOURCES.items()}  # one part for all runs without the file
        self._checks = tuple((name, source.file, self.absent[name]) for name, source in SOURCES.items())
        self._signature_columns = tuple(f"{name}@" for name in SOURCES)
        self._where = {source.file: (name, at) for at, (name, source) in enumerate(SOURCES.items())}  # file -> part, column
        self._names: dict[tuple[frozenset[str], frozenset[str]], tuple[str, ...]] = {}  # (present, known) -> files to look at
        self._budget: list[int] = []
        self._plans: dict[tuple[int, int, int, str], list[tuple[list[RunRecord], Plan]]] = {}  # runs kept: ids stay unique

    def index_of(self, parent: Path) -> index_store.DirIndex | None:
        """The index of the runs directly under `parent` (None when the index is off)."""
        if not self.use_index:
            return None
        real = os.path.realpath(parent)
        index = self.indexes.get(real)
        if index is None:
            if not self._budget:
                self._budget.append(index_store.open_files_budget())
            index = self.indexes[real] = index_store.DirIndex(parent, index_store.location(parent), self._budget)
        return index

    def probe(self, path: str, index: index_store.DirIndex | None = None,
              dirname: str = "") -> tuple[dict[str, Sig], index_store.Entry | None] | None:
        """The watched files of a directory that exist, by name, and the index's entry for it; None if it is
        no directory. While every watched file was there last time, only they are looked at; otherwise the
        directory's inode, modification and change time say whether the absent ones may have appeared
        (creating, removing or renaming a file changes them), so an absent file costs no look of its own. On a
        network file system each is opened to be looked at (index_store.fresh_stat)."""
        return self._probe(path, index, dirname, index.lookup(dirname) if index is not None else None)

    def _probe(self, path: str, index: index_store.DirIndex | None, dirname: str,
               entry: index_store.Entry | None) -> tuple[dict[str, Sig], index_store.Entry | None] | None:
        """probe, the index's entry for the run looked up already."""
        state = entry[2] if entry is not None else None
        watched = self.watched
        look = index_store.fresh_stat if index is not None and index.network else os.stat
        if state is not None and state[1].issuperset(watched):  # all there last time: look at them only
            found = {}
            for name in watched:
                try:
                    st = look(f"{path}/{name}")
                except OSError:
                    break
                if not stat.S_ISREG(st.st_mode):
                    break
                found[name] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            else:
                return found, entry
        try:
            st = look(path)
        except OSError:
            return None
        if not stat.S_ISDIR(st.st_mode):
            return None
        sig = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
        names = watched
        if state is not None and state[0] == sig:
            names = self._names.get((state[1], state[2]))  # type: ignore[assignment]
            if names is None:
                names = self._names[state[1], state[2]] = tuple(name for name in watched if name in state[1] or name not in state[2])
        found = {}
        for name in names:
            try:
                st = look(f"{path}/{name}")
            except OSError:
                continue
            if st.st_mode & 0o170000 == stat.S_IFREG:
                found[name] = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if index is not None and (state is None or state[0] != sig or state[1] != found.keys()) and (
                "config.yaml" in found or "meta.json" in found):
            index.put_dir(dirname, sig, found)
        return found, entry

    def known_parts(self, files: dict[str, Sig], entry: index_store.Entry) -> dict[str, Any]:
        """The parts of a run the index holds for exactly its files (IN_INDEX) and those of absent files, as
        prefetch would find them, worked out when the run is found: a table then has nothing left to look up."""
        shard, row, _ = entry
        parts = self.absent.copy()  # then the parts of the files there
        columns = shard.signatures(self._signature_columns)
        in_index, where = index_store.IN_INDEX, self._where
        for file, sig in files.items():
            name, at = where[file]
            column = columns[at]
            if column is not None and column[row] == sig:
                parts[name] = in_index
            else:
                del parts[name]
        return parts

    def record(self, parent: Path, dirname: str, probed: tuple[dict[str, Sig], index_store.Entry | None] | None = None,
               index: index_store.DirIndex | None = None) -> RunRecord:
        if probed is None:
            index = self.index_of(parent)
            probed = self.probe(str(parent / dirname), index, dirname) or ({}, None)
        return RunRecord(parent, dirname, self, probed[0], index, probed[1])

    def read(self, record: RunRecord, name: str) -> Any:
        """A run's part `name`: the index's while its file is unchanged, else read from the file (and kept)."""
        view = self._stored(record, name)
        return view if view is not None else self._parse(record, name)

    def _stored(self, record: RunRecord, name: str) -> Any:
        """The part without reading its file: the absent file's part, or the index's; None if neither."""
        source = SOURCES[name]
        sig = record.files.get(source.file)
        if sig is None:
            return self.absent[name]
        if record.entry is not None:
            shard, row, _ = record.entry
            return index_store.stored(shard, row, name, sig, lambda: self._parse(record, name))
        return None

    def _parse(self, record: RunRecord, name: str, part: Part | None = None) -> Part:
        source = SOURCES[name]
        self.parsed[source.file] += 1
        if part is None:
            part = source.read(record.path / source.file)
        if record.index is not None:
            record.index.put(record.dirname, name, record.files[source.file], part)
        return part

    def prefetch(self, records: Iterable[RunRecord], names: Iterable[str]) -> None:
        """Make sure these parts of these runs are read: those the index does not hold are read from their
        files, by a process per core when there are many (what a first call on thousands of runs waits for)."""
        todo = []
        in_index = index_store.IN_INDEX
        records = records if isinstance(records, list) else list(records)
        for name in names:
            file, absent = SOURCES[name].file, self.absent[name]
            signatures: dict[int, list[Any]] = {}  # shard -> its column of file signatures of this part
            column = f"{name}@"
            for record in [record for record in records if name not in record._parts]:  # mostly none: known_parts
                have = record._parts
                sig = record.files.get(file)
                if sig is None:
                    have[name] = absent
                    continue
                entry = record.entry
                if entry is not None:  # as RunReader._stored, for many runs
                    shard = entry[0]
                    found = signatures.get(id(shard))
                    if found is None:
                        try:
                            found = signatures[id(shard)] = shard.column(column)
                        except index_store.DamagedShard:
                            found = signatures[id(shard)] = [MISSING] * len(shard.rows)
                    if found[entry[1]] == sig:
                        have[name] = in_index
                        continue
                todo.append((record, name))
        jobs = [(str(record.path / SOURCES[name].file), name) for record, name in todo]
        workers = _workers() if len(jobs) >= PARALLEL_MIN else 1
        if workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
                parts = list(pool.map(_read_packed, jobs, chunksize=max(16, len(jobs) // (8 * workers))))
        else:
            parts = [SOURCES[name].read(Path(path)) for path, name in jobs]
        for (record, name), part in zip(todo, parts):
            record._parts[name] = self._parse(record, name, part)

    def plan(self, runs: list[RunRecord], part: str) -> Plan:
        """Where each run's part `part` is (see Plan), after reading the parts the index does not hold; kept
        for the next column of the same runs."""
        key = (len(runs), id(runs[0]) if runs else 0, id(runs[-1]) if runs else 0, part)
        for known, plan in self._plans.get(key, ()):
            if known is runs or known == runs:  # the same runs in the same order (compared by identity: fast)
                return plan
        views = list(map(operator.methodcaller("get", part), map(_PARTS_OF, runs)))
        ids = list(map(id, views))  # counted by identity: a Part's __eq__ is Python code
        if ids.count(id(None)):
            self.prefetch(runs, (part,))
            views = list(map(operator.itemgetter(part), map(_PARTS_OF, runs)))
            ids = list(map(id, views))
        in_index = ids.count(id(index_store.IN_INDEX))
        if in_index == len(views) and runs:  # every run's part in the index: where the runs are, whatever the part
            where = (len(runs), id(runs[0]), id(runs[-1]), "")
            shared = next((plan for known, plan in self._plans.get(where, ()) if known is runs or known == runs), None)
            if shared is None:
                shared = Plan(runs, part, views, ids)
                self._plans.setdefault(where, []).append((runs, shared))
            plan = shared
        else:
            plan = Plan(runs, part, views, ids, in_index == 0)
        self._plans.setdefault(key, []).append((runs, plan))
        return plan

    def save(self) -> None:
        """Write back to the index what was read from files since the last save."""
        for index in self.indexes.values():
            index.save()

    @property
    def shards_written(self) -> int:
        return sum(index.written for index in self.indexes.values())

    def describe(self) -> str:
        """What reading cost, for --debug: `index: 2 directories; parsed 1 metrics.jsonl; 1 shard written`."""
        if not self.use_index:
            return f"index off ({index_store.ENV}); parsed {_files(self.parsed)}"
        used = [index for index in self.indexes.values() if index.written or any(shard.rows for shard in index.shards.values())]
        where = ", ".join(str(index.directory or "nowhere: not writable") for index in used) or "none yet"
        return f"index: {where}; parsed {_files(self.parsed)}; {self.shards_written} shard(s) written"


class RunRecord:
    """Everything compare and show know about one run directory, whatever state it is in, read on demand."""

    __slots__ = ("_meta", "_parts", "_path", "_status", "dirname", "entry", "files", "index", "parent", "reader")

    def __init__(self, parent: Path, dirname: str, reader: RunReader, files: dict[str, Sig],
                 index: index_store.DirIndex | None = None, entry: index_store.Entry | None = None):
        self.parent, self.dirname, self.reader, self.files, self.index = parent, dirname, reader, files, index
        self.entry = entry  # where the index holds this run: (shard, row, directory state)
        self._path: Path | None = None
        self._parts: dict[str, Any] = reader.known_parts(files, entry) if entry is not None else {}
        self._status: str | None = None
        self._meta: dict[str, Any] | None = None

    @classmethod
    def of(cls, path: Path, *, config: dict[str, Any] | None = None, meta: dict[str, Any] | None = None,
           metrics: list[dict[str, Any]] | None = None, status: str | None = None) -> RunRecord:
        """A record of values in memory, not of files (tests, pages built from other sources): a part given is
        as if its file held it, one not given as if its file were absent; `status` overrides meta's."""
        import json

        from dilbench.report.run_parts import metrics_part

        path = Path(path)
        record = cls(path.parent, path.name, RunReader(use_index=False), {})
        given = {"config": config, "meta": meta, "metrics": metrics}
        for name, source in SOURCES.items():
            value = given.get(name)
            if value is not None:
                record.files[source.file] = (0, 0, 0, 0)
            elif name in given:
                record._parts[name] = source.absent()
        if config is not None:
            record._parts["config"] = Part(values=flatten(config))
        if meta is not None:
            record._parts["meta"] = meta_part(meta, json.dumps(meta))
        if metrics is not None:
            record._parts["metrics"] = metrics_part(metrics)
        record._path = path
        record._status = status
        return record

    def __repr__(self) -> str:
        return f"RunRecord({str(self.path)!r})"

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = self.parent / self.dirname
        return self._path

    def part(self, name: str) -> Any:
        """The part read from file `SOURCES[name].file` (a Part, or the index's view of one: same methods)."""
        view = self._parts.get(name)
        if view is index_store.IN_INDEX and self.entry is not None:
            shard, row, _ = self.entry
            view = self._parts[name] = index_store.StoredPart(shard, row, name, functools.partial(self.reader._parse, self, name))
        elif view is None:
            view = self._parts[name] = self.reader.read(self, name)
        return view

    # ---- config.yaml
    @property
    def config(self) -> dict[str, Any]:
        """Dotted keys: {"optimizer.lr": 0.001, ...}."""
        return self.part("config").as_dict()

    def config_get(self, key: str, default: Any = None) -> Any:
        value = self.part("config").get(key)
        return default if value is MISSING else value

    def config_keys(self) -> tuple[str, ...]:
        return self.part("config").keys()

    # ---- meta.json
    @property
    def meta(self) -> dict[str, Any]:
        """meta.json as written (nested); empty without a readable one."""
        if self._meta is None:
            self._meta = self.part("meta").nested()
        return self._meta

    @property
    def provenance(self) -> list[Any]:
        """The provenance summary of meta.json (report/provenance.py: data digests, source, dirty)."""
        found = self.part("meta").extra("provenance")
        return provenance.NO_SUMMARY if found is None else found

    def meta_value(self, key: str) -> Any:
        """A dotted key of meta.json (`git.commit`), None if it has none."""
        value = self.part("meta").get(key)
        return None if value is MISSING else value

    def meta_keys(self) -> tuple[str, ...]:
        return self.part("meta").keys()

    @property
    def status(self) -> str:
        """meta.json's status (a dead `running`: crashed/stale, checked now, never stored); `unknown` without
        meta.json, `corrupt` if unreadable."""
        if self._status is None:
            status = self.part("meta").extra("status")
            self._status = run_status(self.meta, self.path) if status == "running" else status
        return self._status

    # ---- metrics.jsonl
    @property
    def metrics(self) -> list[dict[str, Any]]:
        """Epoch records up to the first unreadable line."""
        return self.part("metrics").records_list()

    def series(self, key: str) -> list[Any]:
        """`key` in each epoch record, MISSING where a record has none."""
        return self.part("metrics").series_of(key)

    def reduced(self, name: str) -> Any:
        """A reduction of the epochs (`last:eval_acc`, `max:eval_acc`, `sum:seconds`, `epochs`; run_parts.reductions)."""
        value = self.part("metrics").get(name)
        return None if value is MISSING else value

    def metric_keys(self) -> tuple[str, ...]:
        return self.part("metrics").series_keys()

    def numeric_keys(self) -> tuple[str, ...]:
        """Metric keys with a finite number in some epoch record."""
        return self.part("metrics").numeric_keys()

    # ---- tags.json and notes.md
    @property
    def tags(self) -> list[str]:
        """The run's tags, sorted (`dilbench tag`); [] without tags.json or with an unreadable one."""
        tags = self.part("tags").get("tags")
        return list(tags) if isinstance(tags, list) else []

    @property
    def note(self) -> str | None:
        """The run's note (`dilbench note`), None without one."""
        text = self.part("note").get("text")
        return text if isinstance(text, str) else None

    @property
    def problems(self) -> list[str]:
        """Missing or corrupt files, in SOURCES order; a completed or pruned run without metrics.jsonl is one too."""
        problems: list[str] = []
        for name, source in SOURCES.items():
            if name == "metrics" and source.file not in self.files and self.status in ENDED_WITH_EPOCHS:
                problems.append("no metrics.jsonl")  # other states may simply not have finished an epoch yet
            problems += self.part(name).problems
        return problems


# ---- one column of many runs at once ----------------------------------------------------------------------
def part_column(runs: list[RunRecord], part: str, column: str, from_part: Callable[[Any], Any]) -> list[Any]:
    """A stored column of one part of each run (MISSING where a run has none): gathered shard by shard from
    the index's decoded columns for the runs it holds, `from_part(view)` for parts read from their files."""
    if not runs:
        return []
    plan = runs[0].reader.plan(runs, part)
    gathered: list[Any] = []
    for shard, rows in plan.shards:
        try:
            values = shard.column(column)
        except index_store.DamagedShard:
            return [from_part(run.part(part)) for run in runs]  # each run's part falls back to its file
        gathered.extend(take(values, rows))
    return plan.gather(gathered, [from_part(view) for view in plan.others])


def take(values: list[Any], positions: list[int]) -> list[Any]:
    """`values` at these positions, in their order (operator.itemgetter: a C loop, but a bare value for one)."""
    if len(positions) > 1:
        return list(operator.itemgetter(*positions)(values))
    return [values[positions[0]]] if positions else []


_PARTS_OF = operator.attrgetter("_parts")
_SHARD_OF, _ROW_OF = operator.itemgetter(0), operator.itemgetter(1)


class Plan:
    """How to gather a column of one part for a list of runs: the index's rows shard by shard, then the
    parts read from files (or of absent files); `inverse` puts the gathered values back in the runs' order
    (None: they are in it). `others` holds each distinct part object once, `other_of` which one each of
    those runs has (runs without a file share one)."""

    def __init__(self, runs: list[RunRecord], part: str, views: list[Any], ids: list[int], none_in_index: bool = False):
        stored = index_store.StoredPart
        if none_in_index and stored not in set(map(type, views)):  # all parts of absent files, or all read
            distinct = {ids[0]: views[0]} if ids and ids.count(ids[0]) == len(ids) else dict(zip(ids, views))
            self.shards: list[tuple[index_store.Shard, list[int]]] = []
            self.others = list(distinct.values())
            slot = {key: at for at, key in enumerate(distinct)}
            self.other_of = None if len(distinct) == 1 else list(map(slot.__getitem__, ids))
            self.inverse: list[int] | None = None
            self.count = len(views)
            return
        if ids.count(id(index_store.IN_INDEX)) == len(ids):  # every run's part in the index: no loop over the runs
            self._from_entries([run.entry for run in runs])  # type: ignore[misc]  # IN_INDEX only where there is an entry
            return
        by_shard: dict[int, tuple[index_store.Shard, list[int], list[int]]] = {}
        others: list[int] = []
        in_index = index_store.IN_INDEX
        for position, (run, view) in enumerate(zip(runs, views)):
            if view is in_index:
                shard, row, _ = run.entry  # type: ignore[misc]  # IN_INDEX only where there is an entry
            elif view.__class__ is stored and view._fallback is None:
                shard, row = view.shard, view.row
            else:
                others.append(position)
                continue
            found = by_shard.get(id(shard))
            if found is None:
                found = by_shard[id(shard)] = (shard, [], [])
            found[1].append(row)
            found[2].append(position)
        self.shards = [(shard, rows) for shard, rows, _ in by_shard.values()]
        self.others = [runs[i].part(part) for i in others]
        self.other_of = list(range(len(others)))
        self.count = len(runs)
        order = [i for _, _, positions in by_shard.values() for i in positions] + others
        inverse = [0] * len(order)
        for at, position in enumerate(order):
            inverse[position] = at
        self.inverse = None if order == sorted(order) else inverse

    def _from_entries(self, entries: list[index_store.Entry]) -> None:
        """The plan of runs all held by the index at these entries: runs sorted by shard (stable, so in the runs'
        order within one), and the inverse of that order an argsort of it; C loops, not Python ones."""
        shard_ids = list(map(id, map(_SHARD_OF, entries)))
        rows = list(map(_ROW_OF, entries))
        order = sorted(range(len(entries)), key=shard_ids.__getitem__)
        self.shards = []
        for _, positions in itertools.groupby(order, shard_ids.__getitem__):
            taken = list(positions)
            self.shards.append((entries[taken[0]][0], take(rows, taken)))
        self.others, self.other_of, self.count = [], [], len(entries)
        self.inverse = None if all(map(operator.lt, order, order[1:])) else sorted(range(len(order)), key=order.__getitem__)

    def gather(self, gathered: list[Any], from_others: list[Any]) -> list[Any]:
        """The values gathered from the shards, then each of `others`' value, in the runs' order."""
        if self.other_of is None:
            gathered.extend(from_others * self.count if len(from_others) == 1 else from_others)
        else:
            gathered.extend(map(from_others.__getitem__, self.other_of))
        if self.inverse is None:
            return gathered
        return take(gathered, self.inverse)


def keys_column(runs: list[RunRecord], part: str, series: bool = False) -> list[tuple[str, ...]]:
    """Each run's keys of a part (`series`: of its epochs), in file order; runs the index holds for one shard
    and key layout share one tuple."""
    if not runs:
        return []
    plan = runs[0].reader.plan(runs, part)
    schema = f"{part}~" if series else part
    gathered: list[Any] = []
    for shard, rows in plan.shards:
        try:
            codes = shard.column(f"{schema}#")
        except index_store.DamagedShard:
            return [run.part(part).series_keys() if series else run.part(part).keys() for run in runs]
        known = shard.schemas.get(schema, [])
        gathered.extend(() if codes[row] is MISSING else known[codes[row]] for row in rows)
    return plan.gather(gathered, [view.series_keys() if series else view.keys() for view in plan.others])


def config_column(runs: list[RunRecord], key: str) -> list[Any]:
    """config.yaml's dotted `key` of each run, MISSING where it has none."""
    return part_column(runs, "config", f"config:{key}", lambda part: part.get(key))


def meta_column(runs: list[RunRecord], key: str) -> list[Any]:
    """meta.json's dotted `key` of each run, MISSING where it has none."""
    return part_column(runs, "meta", f"meta:{key}", lambda part: part.get(key))


def reduced_column(runs: list[RunRecord], name: str) -> list[Any]:
    """A reduction of each run's epochs (RunRecord.reduced), None where it has none."""
    return [None if value is MISSING else value for value in part_column(runs, "metrics", f"metrics:{name}", lambda part: part.get(name))]


def provenance_column(runs: list[RunRecord]) -> list[list[Any]]:
    """Each run's provenance summary (report/provenance.py), from the index without parsing meta.json."""
    return [provenance.NO_SUMMARY if value is None else value
            for value in part_column(runs, "meta", "meta=provenance", lambda part: part.extra("provenance"))]


def status_column(runs: list[RunRecord]) -> list[str]:
    """Each run's status (RunRecord.status); the owner of a run that says running is checked now."""
    stored = part_column(runs, "meta", "meta=status", lambda part: part.extra("status"))
    for run, status in zip(runs, stored):
        if run._status is None:
            run._status = run_status(run.meta, run.path) if status == "running" else status
    return [run._status for run in runs]  # type: ignore[misc]


def problems_column(runs: list[RunRecord]) -> list[list[str]]:
    """Each run's problems (RunRecord.problems)."""
    found: list[list[str]] = [[] for _ in runs]
    statuses = None
    for name, source in SOURCES.items():
        if name == "metrics":
            statuses = statuses or status_column(runs)
            for problems, run, status in zip(found, runs, statuses):
                if source.file not in run.files and status in ENDED_WITH_EPOCHS:
                    problems.append("no metrics.jsonl")  # other states may simply not have finished an epoch yet
        column = part_column(runs, name, f"{name}!", lambda part: list(part.problems))
        if column and not column[0] and column.count(column[0]) == len(column):  # no run has a problem here
            continue
        for problems, more in zip(found, column):
            if more:
                problems += more
    return found


# ---- finding run directories -------------------------------------------------------------------------
def is_run_dir(path: Path) -> bool:
    return any((path / marker).is_file() for marker in MARKER_FILES)


def find_runs(arguments: list[str] | tuple[str, ...]) -> list[Path]:
    """Run directories named by the arguments: run dirs, directories holding runs, globs, or a run's files.

    Directories are searched SEARCH_DEPTH levels down, without descending into a run or hidden
    directories. The result is deduplicated and sorted by path so the default order is stable.
    """
    return [run.path for run in load_runs(arguments)]


class Runs(list):
    """The records of a command's runs, in path order, and the reader behind them."""

    def __init__(self, records: Iterable[RunRecord], reader: RunReader):
        super().__init__(records)
        self.reader = reader


def load_runs(arguments: list[str] | tuple[str, ...], reader: RunReader | None = None) -> Runs:
    """Records of the run directories the arguments name (see find_runs); nothing is read from them yet."""
    reader = reader or RunReader()
    found: dict[str, tuple[tuple[str, ...], RunRecord]] = {}  # real path -> (sort key, record)
    for argument in arguments:
        if any(ch in argument for ch in "*?["):
            matches = sorted(glob.glob(argument, recursive=True))
            if not matches:
                raise UsageError(f"{argument}: matches no file or directory")
        elif os.path.exists(argument):
            matches = [argument]
        else:
            raise UsageError(f"{argument}: no such file or directory")
        for match in matches:
            path = Path(match)
            if path.is_file() and path.name in (*MARKER_FILES, "metrics.jsonl"):
                path = path.parent
            for real, key, record in _runs_under(path, SEARCH_DEPTH, reader):
                found.setdefault(real, (key, record))
    if not found:
        raise UsageError(
            f"no run directories under {' '.join(arguments)} (a run directory holds config.yaml or meta.json; "
            f"directories are searched {SEARCH_DEPTH} levels deep)"
        )
    found_runs = list(found.values())
    if len({key[:-1] for key, _ in found_runs}) == 1:  # one directory of runs: their names decide the order
        found_runs.sort(key=lambda item: item[0][-1])
    else:
        found_runs.sort(key=lambda item: item[0])
    return Runs((record for _, record in found_runs), reader)


def runs_in(directory: Path, names: Iterable[str], reader: RunReader | None = None) -> Runs:
    """Records of the directories `names` directly under `directory` (those that are directories), as load_runs
    makes them but without searching: the sweep's way to its runs."""
    reader = reader or RunReader()
    index = reader.index_of(directory)
    if index is not None:
        index.load_all()
    records = []
    for name in names:
        probed = reader.probe(f"{directory}/{name}", index, name)
        if probed is not None:
            records.append(RunRecord(directory, name, reader, probed[0], index, probed[1]))
    return Runs(records, reader)


def read_runs(paths: list[Path], reader: RunReader | None = None) -> list[RunRecord]:
    reader = reader or RunReader()
    return [reader.record(path.parent, path.name) for path in map(Path, paths)]


def read_run(path: Path, reader: RunReader | None = None) -> RunRecord:
    """One run directory's record; never raises for a missing or corrupt file, records a problem instead."""
    return read_runs([path], reader)[0]


def _runs_under(path: Path, depth: int, reader: RunReader) -> Iterator[tuple[str, tuple[str, ...], RunRecord]]:
    """(real path, sort key, record) of the runs at or under `path`, down `depth` levels of directories."""
    index = reader.index_of(path.parent)
    probed = reader.probe(str(path), index, path.name)
    if probed is None:
        return
    if any(marker in probed[0] for marker in MARKER_FILES):
        yield os.path.realpath(path), path_key(path), reader.record(path.parent, path.name, probed, index)
        return
    yield from _children(path, depth, reader)


def _children(path: Path, depth: int, reader: RunReader) -> Iterator[tuple[str, tuple[str, ...], RunRecord]]:
    if depth == 0:
        return
    try:
        entries = [entry for entry in os.scandir(path) if not entry.name.startswith(".") and entry.is_dir()]
    except OSError:
        return
    index = reader.index_of(path)
    if index is not None:
        index.load_all()
    real_parent, parent_key = os.path.realpath(path), path_key(path / "_")[:-1]
    listed = set()
    held = index.entries if index is not None else None
    lookup = held.get if held is not None else index.lookup if index is not None else lambda _: None
    probe = reader._probe
    for entry in entries:
        name = entry.name
        probed = probe(entry.path, index, name, lookup(name))
        if probed is None:
            continue
        files = probed[0]
        if "config.yaml" in files or "meta.json" in files:  # MARKER_FILES
            listed.add(name)
            real = os.path.realpath(entry.path) if entry.is_symlink() else f"{real_parent}/{name}"
            yield real, (*parent_key, name), RunRecord(path, name, reader, files, index, probed[1])
        else:
            yield from _children(path / name, depth - 1, reader)
    if index is not None:
        index.listed = listed  # the whole directory was seen: runs the index holds beyond these are gone


def path_key(path: Path) -> tuple[str, ...]:
    """What Path objects compare by, so runs sort as `sorted(paths)` would without making (slow) Path objects."""
    if sys.version_info >= (3, 12):
        return tuple(str(path).split("/"))
    return path.parts
