"""The run directory contract: layout, atomic writes, meta.json and metrics.jsonl (no TensorFlow).

    runs/<name>-<UTC yyyymmdd-HHMMSS>-<4 hex>/
      config.yaml  meta.json  metrics.jsonl  log.txt  events/  plots/  checkpoints/

Every file is written to a temp file and renamed into place, so a killed run leaves valid files.
`compare`, `show` and `--resume` read runs back through this module only.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dilbench.errors import UsageError

STATUSES = ("running", "completed", "failed", "interrupted")


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` via a temp file in the same directory and a rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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

    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> RunDir:
        """A new, unique run directory; an existing one is never reused."""
        runs_dir = Path(runs_dir)
        runs_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        while True:
            path = runs_dir / f"{name}-{stamp}-{secrets.token_hex(2)}"
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

    def read_meta(self) -> dict[str, Any]:
        return json.loads(self.meta_file.read_text())

    def write_meta(self, meta: dict[str, Any]) -> None:
        write_atomic(self.meta_file, json.dumps(meta, indent=2, sort_keys=True) + "\n")

    def update_meta(self, **changes: Any) -> dict[str, Any]:
        meta = self.read_meta() if self.meta_file.exists() else {}
        meta.update(changes)
        self.write_meta(meta)
        return meta

    def read_metrics(self) -> list[dict[str, Any]]:
        """Epoch records in order; a torn last line (killed mid-write) is ignored."""
        if not self.metrics_file.exists():
            return []
        records = []
        for line in self.metrics_file.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return records

    def write_metrics(self, records: list[dict[str, Any]]) -> None:
        """Rewrite metrics.jsonl atomically with exactly these epoch records."""
        write_atomic(self.metrics_file, "".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
