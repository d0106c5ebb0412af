"""The run directory contract: layout, atomic writes, meta.json and metrics.jsonl (no TensorFlow).

    runs/<name>-<UTC yyyymmdd-HHMMSS>-<4 hex>/
      config.yaml  meta.json  metrics.jsonl  log.txt  events/  plots/  checkpoints/  .lock
      source.patch (a dirty checkout)  tags.json  notes.md  .annotations.lock (`dilbench tag` and `note`)

Every file is written to a temp file and renamed into place, so a killed run leaves valid files; the
temp files a kill leaves behind are named so that `partial_files` finds them. Files get the mode the
umask gives (colleagues sharing runs/ can read them). `compare`, `show` and `--resume` read runs back
through this module only; writer.py holds what makes one process the run's only writer.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dilbench.errors import UsageError

CHECKPOINT_SETS = ("latest", "best", "start")  # as training/checkpoints.py saves them
ANNOTATION_FILES = ("tags.json", "notes.md")  # written by `dilbench tag` and `note` (annotations.py), never by the trainer
_CHECKPOINT_INDEX = re.compile(r"^ckpt-(\d+)\.index$")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write `text` (or bytes, as they are) to `path` via a temp file in the same directory, an fsync and a rename.

    The temp file is created with mode 0666 minus the umask (mkstemp's 0600 would hide a run from
    colleagues), and removed again if anything fails (a full disk included).
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(fd, "wb" if isinstance(text, bytes) else "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, OSError):
            err.filename = str(path)  # the file the user knows, not our temp name
        raise
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    """Make a rename in `path` survive power loss (where the OS allows opening a directory)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass(frozen=True)
class RunDir:
    path: Path

    config = property(lambda self: self.path / "config.yaml")
    meta_file = property(lambda self: self.path / "meta.json")
    metrics_file = property(lambda self: self.path / "metrics.jsonl")
    log_file = property(lambda self: self.path / "log.txt")
    events = property(lambda self: self.path / "events")
    plots = property(lambda self: self.path / "plots")
    checkpoints = property(lambda self: self.path / "checkpoints")
    lock_file = property(lambda self: self.path / ".lock")  # held by the one process writing the run
    reserve_file = property(lambda self: self.path / ".reserve")  # room to record a failure on a full disk

    tags_file = property(lambda self: self.path / "tags.json")
    notes_file = property(lambda self: self.path / "notes.md")
    annotations_lock = property(lambda self: self.path / ".annotations.lock")  # taken briefly by tag/note/rm, not the trainer

    def source_patch(self, segment: int = 0) -> Path:
        """The patch from the recorded commit to the source tree of the run's start (0) or its Nth resume."""
        return self.path / ("source.patch" if segment == 0 else f"source-resume{segment}.patch")

    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> RunDir:
        """A new, unique run directory; an existing one is never reused."""
        runs_dir = Path(runs_dir)
        runs_dir.mkdir(parents=True, exist_ok=True)
        when = stamp()
        while True:
            path = runs_dir / f"{name}-{when}-{secrets.token_hex(2)}"
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        run = cls(path)
        for sub in (run.events, run.plots, run.checkpoints):
            sub.mkdir()
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run directory (for --resume and show); a clear error if it is not one."""
        run = cls(Path(path))
        if not run.config.is_file():
            raise UsageError(f"{path}: not a dilbench run directory (no config.yaml); pass a directory under runs/")
        return run

    def read_config_data(self) -> Any:
        """config.yaml as plain data (not validated: readers of old or foreign runs decide what to make of it)."""
        import yaml  # on first use: a warm `compare` reads configs from its index

        return yaml.load(self.config.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # libyaml if there

    def read_meta(self) -> dict[str, Any]:
        return upgrade_meta(json.loads(self.meta_file.read_text()))

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_atomic(self.meta_file, json.dumps(meta, indent=2, sort_keys=True) + "\n")

    def update_meta(self, **changes: Any) -> dict[str, Any]:
        meta = self.read_meta() if self.meta_file.exists() else {}
        meta.update(changes)
        self.write_meta(meta)
        return meta

    def read_tags(self) -> list[str]:
        """The run's tags, sorted ([] without tags.json); ValueError if the file is not what `dilbench tag` writes."""
        try:
            data = json.loads(self.tags_file.read_text())
        except FileNotFoundError:
            return []
        tags = data.get("tags") if isinstance(data, dict) else None
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise ValueError("tags.json holds no list of tags")
        return sorted(tags)

    def read_note(self) -> str | None:
        """The run's note (notes.md), None without one."""
        try:
            return self.notes_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def read_metrics(self) -> list[dict[str, Any]]:
        """Epoch records in order; a torn last line (killed mid-write) is ignored."""
        return self.read_metrics_checked()[0] if self.metrics_file.exists() else []

    def read_metrics_checked(self) -> tuple[list[dict[str, Any]], str | None]:
        """Epoch records in order up to the first unreadable line, and what stopped the reading there (None when
        nothing did); the usual stop is a torn last line (killed mid-write). Blank lines are skipped."""
        records: list[dict[str, Any]] = []
        lines = self.metrics_file.read_text().splitlines()
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                problem = None if isinstance(record, dict) else f"not an object but {type(record).__name__}"
            except json.JSONDecodeError as err:
                problem = str(err).strip().splitlines()[0]
            if problem:
                return records, f"{'last line' if number == len(lines) else f'line {number} of {len(lines)}'} unreadable ({problem})"
            records.append(upgrade_record(record))
        return records, None

    def write_metrics(self, records: list[dict[str, Any]]) -> None:
        """Rewrite metrics.jsonl atomically with exactly these epoch records."""
        write_atomic(self.metrics_file, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))

    def checkpoint_prefixes(self, which: str) -> list[Path]:
        """Checkpoints in checkpoints/<which>/ (latest, best or start) by their files, newest (highest number) first.

        Found by their index files rather than TensorFlow's `checkpoint` state file, so a torn state
        file hides nothing.
        """
        directory = self.checkpoints / which
        found = [(int(m.group(1)), directory / f"ckpt-{m.group(1)}")
                 for m in (_CHECKPOINT_INDEX.match(p.name) for p in _entries(directory)) if m]
        return [prefix for _, prefix in sorted(found, reverse=True)]

    def has_checkpoints(self) -> bool:
        return any(self.checkpoint_prefixes(which) for which in CHECKPOINT_SETS)

    def partial_files(self) -> list[Path]:
        """What killed or failed writes leave: our temp files (`.NAME.*.tmp`, plots' `.NAME.tmp.png`) and
        TensorFlow's checkpoint temp directories (`ckpt-N_temp/`) and `*.tempstate*` files."""
        found = [p for d in (self.path, self.plots) for p in _entries(d) if p.name.startswith(".") and ".tmp" in p.name]
        annotating = self.annotation_partials()  # maybe a live annotator's: the next annotator cleans them, under its lock
        found = [p for p in found if p not in annotating]
        for which in CHECKPOINT_SETS:
            found += [p for p in _entries(self.checkpoints / which) if p.name.endswith("_temp") or ".tempstate" in p.name]
        return found

    def annotation_partials(self) -> list[Path]:
        """Temp files of tags.json and notes.md writes (removed by the next annotator, under the annotation lock)."""
        return [p for p in _entries(self.path) if p.name.startswith(tuple(f".{name}." for name in ANNOTATION_FILES))
                and p.name.endswith(".tmp")]

    def set_aside(self, path: Path, copy: bool = False) -> Path:
        """Move (or copy) a file or directory of the run to `<name>.old-<UTC stamp>` beside it, so nothing is lost."""
        target = path.with_name(f"{path.name}.old-{stamp()}")
        while target.exists():
            target = path.with_name(f"{path.name}.old-{stamp()}-{secrets.token_hex(2)}")
        if copy:
            write_atomic(target, path.read_text())
        else:
            path.rename(target)
        return target


# Keys written by dilbench 0.1, which called the evaluated split's numbers test_* even when it was the
# validation split; readers see the new names, so every run reads the same whatever wrote it.
RENAMED_METRICS = {"test_loss": "eval_loss", "test_acc": "eval_acc"}
RENAMED_META = {"final_test_acc": "final_eval_acc", "best_test_acc": "best_eval_acc"}


def upgrade_record(record: Any) -> Any:
    """One metrics.jsonl record with 0.1's keys renamed (0.1 before `eval_split` evaluated the test split)."""
    if isinstance(record, dict) and any(old in record for old in RENAMED_METRICS):
        record = {RENAMED_METRICS.get(key, key): value for key, value in record.items()}
        record.setdefault("eval_split", "test")
    return record


def upgrade_meta(meta: Any) -> Any:
    """meta.json with 0.1's keys renamed (its split is known only from metrics.jsonl)."""
    if isinstance(meta, dict) and any(old in meta for old in RENAMED_META):
        meta = {RENAMED_META.get(key, key): value for key, value in meta.items()}
    return meta


def _entries(directory: Path) -> list[Path]:
    try:
        return list(directory.iterdir())
    except OSError:
        return []
