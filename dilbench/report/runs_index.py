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

import glob
import os
import stat
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from dilbench.errors import UsageError
from dilbench.report.run_parts import MARKER_FILES, MISSING, SOURCES, Part, flatten
from dilbench.runs.owner import run_status

__all__ = ["MISSING", "RunReader", "RunRecord", "find_runs", "flatten", "is_run_dir", "load_runs", "read_run", "read_runs"]

SEARCH_DEPTH = 3  # runs/<run>, experiments/x/runs/<run>, experiments/<suite>/x/runs/<run>
Sig = tuple[int, int, int]  # a file's inode, size and modification time (ns)


def file_sig(path: str) -> Sig | None:
    """The signature of a regular file (symlinks followed), None if there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns) if stat.S_ISREG(st.st_mode) else None


def watched_files() -> tuple[str, ...]:
    return tuple(source.file for source in SOURCES.values())


class RunReader:
    """Reads the runs of one command: their records, what was parsed, and the index behind them (if any)."""

    def __init__(self) -> None:
        self.parsed: Counter[str] = Counter()  # file name -> files of that name parsed (not taken from the index)

    def probe(self, directory: str) -> dict[str, Sig]:
        """The watched files of a directory that exist, by name."""
        found = {}
        for name in watched_files():
            sig = file_sig(f"{directory}/{name}")
            if sig is not None:
                found[name] = sig
        return found

    def record(self, parent: Path, dirname: str, files: dict[str, Sig] | None = None) -> RunRecord:
        return RunRecord(parent, dirname, self, files)

    def read(self, record: RunRecord, name: str) -> Part:
        source = SOURCES[name]
        if source.file not in record.files:
            return source.absent()
        self.parsed[source.file] += 1
        return source.read(record.path / source.file)

    def save(self) -> None:
        """Write back what was read from files (nothing without an index)."""


class RunRecord:
    """Everything compare and show know about one run directory, whatever state it is in, read on demand."""

    __slots__ = ("_meta", "_parts", "_path", "_status", "dirname", "files", "parent", "reader")

    def __init__(self, parent: Path, dirname: str, reader: RunReader | None = None, files: dict[str, Sig] | None = None):
        self.parent, self.dirname = parent, dirname
        self.reader = reader or RunReader()
        self._path: Path | None = None
        self.files = files if files is not None else self.reader.probe(str(self.path))
        self._parts: dict[str, Any] = {}
        self._status: str | None = None
        self._meta: dict[str, Any] | None = None

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
        if view is None:
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
        metrics = self.part("metrics")
        return tuple(key for key in metrics.series_keys() if metrics.get(f"max:{key}") is not MISSING)

    @property
    def problems(self) -> list[str]:
        """Missing or corrupt files, in SOURCES order; a completed run without metrics.jsonl is one too."""
        problems: list[str] = []
        for name, source in SOURCES.items():
            if name == "metrics" and source.file not in self.files and self.status == "completed":
                problems.append("no metrics.jsonl")  # other states may simply not have finished an epoch yet
            problems += self.part(name).problems
        return problems


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
    return Runs((record for _, record in sorted(found.values(), key=lambda item: item[0])), reader)


def read_runs(paths: list[Path]) -> list[RunRecord]:
    reader = RunReader()
    return [reader.record(path.parent, path.name) for path in paths]


def read_run(path: Path) -> RunRecord:
    """One run directory's record; never raises for a missing or corrupt file, records a problem instead."""
    path = Path(path)
    return RunReader().record(path.parent, path.name)


def _runs_under(path: Path, depth: int, reader: RunReader) -> Iterator[tuple[str, tuple[str, ...], RunRecord]]:
    """(real path, sort key, record) of the runs at or under `path`, down `depth` levels of directories."""
    if not path.is_dir():
        return
    files = reader.probe(str(path))
    if any(marker in files for marker in MARKER_FILES):
        yield os.path.realpath(path), path_key(path), reader.record(path.parent, path.name, files)
        return
    yield from _children(path, depth, reader)


def _children(path: Path, depth: int, reader: RunReader) -> Iterator[tuple[str, tuple[str, ...], RunRecord]]:
    if depth == 0:
        return
    try:
        entries = [entry for entry in os.scandir(path) if not entry.name.startswith(".") and entry.is_dir()]
    except OSError:
        return
    real_parent, parent_key = os.path.realpath(path), path_key(path / "_")[:-1]
    for entry in entries:
        files = reader.probe(entry.path)
        if any(marker in files for marker in MARKER_FILES):
            real = os.path.realpath(entry.path) if entry.is_symlink() else f"{real_parent}/{entry.name}"
            yield real, (*parent_key, entry.name), reader.record(path, entry.name, files)
        else:
            yield from _children(path / entry.name, depth - 1, reader)


def path_key(path: Path) -> tuple[str, ...]:
    """What Path objects compare by, so runs sort as `sorted(paths)` would without making (slow) Path objects."""
    if sys.version_info >= (3, 12):
        return tuple(str(path).split("/"))
    return path.parts
