"""`dilbench rm` and `dilbench trash`: runs moved aside into their runs directory's trash, then restored or purged.

    runs/.trash/<run>-deleted-<UTC yyyymmdd-HHMMSS>/     the run directory as it was, moved by one rename

The trash is a hidden directory beside the runs, on the same file system, so a move is one atomic
rename and `compare`, `tensorboard` and sweeps (which skip hidden directories) no longer see the run:
a sweep treats it as missing. A run is moved only while no process writes it: `rm` takes the run's
`.lock` (refused while a trainer holds it) and its annotation lock (so a `tag` or `note` in flight
finishes first) for the rename. Restoring refuses when a run of the original name exists again.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dilbench.errors import UsageError
from dilbench.runs.annotations import annotation_lock
from dilbench.runs.lock import RunLock
from dilbench.runs.owner import this_process
from dilbench.runs.rundir import RunDir, stamp, utc_now
from dilbench.runs.writer import RunBusy, holder

TRASH = ".trash"
_ENTRY = re.compile(r"^(?P<run>.+)-deleted-(?P<when>\d{8}-\d{6})(?:-\d+)?$")
_AGE = re.compile(r"^(?P<count>\d+(?:\.\d+)?)(?P<unit>[smhdw])$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


@dataclass(frozen=True)
class TrashEntry:
    path: Path  # <runs dir>/.trash/<run>-deleted-<stamp>
    run: str  # the run directory's name
    deleted: datetime

    @property
    def original(self) -> Path:
        """Where the run was, and where `restore` puts it back."""
        return self.path.parent.parent / self.run

    def age(self, now: datetime | None = None) -> timedelta:
        return (now or datetime.now(UTC)) - self.deleted


def entry_of(path: Path) -> TrashEntry | None:
    match = _ENTRY.match(path.name)
    if path.parent.name != TRASH or not match or not path.is_dir():
        return None
    return TrashEntry(path, match["run"], datetime.strptime(match["when"], "%Y%m%d-%H%M%S").replace(tzinfo=UTC))


def move_to_trash(path: str | Path) -> TrashEntry:
    """Move a run into `<its runs dir>/.trash/`; RunBusy while a process writes it."""
    run = RunDir.open(path)
    if run.path.parent.name == TRASH:
        raise UsageError(f"{run.path} is in the trash already; `dilbench trash purge` removes it for good")
    lock = RunLock(run.lock_file)
    if not lock.acquire(json.dumps({**this_process(), "since": utc_now(), "doing": "dilbench rm"})):
        raise RunBusy(f"{run.path} is being written by {holder(run)}; it is not moved while it trains. "
                      "Stop it first (Ctrl-C, or wait for it to end), then try again")
    try:
        with annotation_lock(run):
            trash = run.path.parent / TRASH
            trash.mkdir(exist_ok=True)
            target = trash / f"{run.path.name}-deleted-{stamp()}"
            number = 1
            while target.exists():
                number += 1
                target = trash / f"{run.path.name}-deleted-{stamp()}-{number}"
            os.rename(run.path, target)
    finally:
        lock.release()
    found = entry_of(target)
    assert found is not None
    return found


def find_trash(arguments: list[str] | tuple[str, ...], depth: int = 3) -> list[TrashEntry]:
    """Trash entries under the given directories (a runs directory, a directory of them, a `.trash` or an entry
    itself), oldest deletion first."""
    entries: dict[Path, TrashEntry] = {}
    for argument in arguments:
        path = Path(argument)
        if not path.exists():
            raise UsageError(f"{argument}: no such file or directory")
        for trash in _trash_dirs(path, depth):
            for child in sorted(trash.iterdir()):
                found = entry_of(child)
                if found:
                    entries.setdefault(found.path.resolve(), found)
        found = entry_of(path)
        if found:
            entries.setdefault(found.path.resolve(), found)
    return sorted(entries.values(), key=lambda e: (e.deleted, str(e.path)))


def _trash_dirs(path: Path, depth: int) -> list[Path]:
    if not path.is_dir():
        return []
    if path.name == TRASH:
        return [path]
    found = [path / TRASH] if (path / TRASH).is_dir() else []
    if depth:
        try:
            children = sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".") and not (p / "config.yaml").is_file())
        except OSError:
            children = []
        found += [t for child in children for t in _trash_dirs(child, depth - 1)]
    return found


def resolve_entry(argument: str) -> TrashEntry:
    """A trash entry by its path, or by the path the run had (its latest deletion)."""
    path = Path(argument)
    found = entry_of(path)
    if found:
        return found
    candidates = [e for e in find_trash([str(path.parent)], depth=0) if e.run == path.name] if path.parent.is_dir() else []
    if not candidates:
        raise UsageError(f"{argument}: not in the trash (give a path under <runs dir>/{TRASH}/, or the path the run had; "
                         f"`dilbench trash list` shows them)")
    return candidates[-1]


def restore(argument: str) -> Path:
    """Put a trashed run back where it was; refused if that name exists again, or while a process writes it."""
    entry = resolve_entry(argument)
    if entry.original.exists():
        raise UsageError(f"cannot restore {entry.path}: {entry.original} exists; move that one away first")
    with _held(entry, "dilbench trash restore"):
        os.rename(entry.path, entry.original)
    return entry.original


def purge(entries: list[TrashEntry], older_than: timedelta | None) -> tuple[list[tuple[TrashEntry, int]], list[str]]:
    """Remove trash entries for good (those deleted longer than `older_than` ago; None: all): (entry, bytes) of
    each removed, and why each entry some process writes (a run resumed from inside the trash) was left."""
    now = datetime.now(UTC)
    removed, busy = [], []
    for entry in entries:
        if older_than is not None and entry.age(now) < older_than:
            continue
        size = tree_bytes(entry.path)  # before our lock's note changes .lock: what a --dry-run says
        try:
            with _held(entry, "dilbench trash purge"):
                shutil.rmtree(entry.path)
        except RunBusy as err:
            busy.append(str(err))
            continue
        removed.append((entry, size))
    return removed, busy


@contextlib.contextmanager
def _held(entry: TrashEntry, doing: str) -> Iterator[None]:
    """Hold the trashed run's `.lock` (it moves or goes with the run: taken on the path it has now)."""
    run = RunDir(entry.path)
    lock = RunLock(run.lock_file)
    if not lock.acquire(json.dumps({**this_process(), "since": utc_now(), "doing": doing})):
        raise RunBusy(f"{entry.path} is being written by {holder(run)}; left in the trash")
    try:
        yield
    finally:
        lock.release()


def parse_age(text: str) -> timedelta:
    """`30d`, `12h`, `90m`, `45s`, `2w` as a time span."""
    match = _AGE.match(text.strip())
    if not match:
        raise UsageError(f"--older-than {text}: expected a number and a unit, s, m, h, d or w (30d, 12h, 90m)")
    return timedelta(seconds=float(match["count"]) * UNITS[match["unit"]])


def tree_bytes(path: Path) -> int:
    """Bytes of the files under `path` (as stored: their sizes), following no links."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total
