"""Find run directories and read each into one flat, forgiving record (no TensorFlow, no typed Config).

`compare` and `show` must list every run they are pointed at, including runs that are still running,
were killed mid-write or hold a corrupt file: a problem is recorded on that run's record and the
command carries on. config.yaml is read as plain YAML and flattened to dotted keys rather than built
into the typed Config, so runs written by older (or newer) schemas stay readable.
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dilbench.errors import UsageError
from dilbench.runs.owner import run_status
from dilbench.runs.rundir import RunDir

MARKER_FILES = ("config.yaml", "meta.json")
SEARCH_DEPTH = 3  # runs/<run>, experiments/x/runs/<run>, experiments/<suite>/x/runs/<run>


@dataclass
class RunRecord:
    """Everything compare and show know about one run directory, whatever state it is in."""

    path: Path
    config: dict[str, Any] = field(default_factory=dict)  # dotted keys: {"optimizer.lr": 0.001, ...}
    meta: dict[str, Any] = field(default_factory=dict)
    metrics: list[dict[str, Any]] = field(default_factory=list)  # epoch records up to the first unreadable line
    problems: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)  # tags.json (`dilbench tag`)
    note: str | None = None  # notes.md (`dilbench note`)
    status: str = "unknown"  # meta.json's status (a dead `running`: crashed/stale); `unknown` without meta.json, `corrupt` if unreadable


def is_run_dir(path: Path) -> bool:
    return any((path / marker).is_file() for marker in MARKER_FILES)


def find_runs(arguments: list[str] | tuple[str, ...]) -> list[Path]:
    """Run directories named by the arguments: run dirs, directories holding runs, globs, or a run's files.

    Directories are searched SEARCH_DEPTH levels down, without descending into a run or hidden
    directories. The result is deduplicated and sorted by path so the default order is stable.
    """
    found: dict[Path, Path] = {}
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
            for run in _runs_under(path, SEARCH_DEPTH):
                found.setdefault(run.resolve(), run)
    if not found:
        raise UsageError(
            f"no run directories under {' '.join(arguments)} (a run directory holds config.yaml or meta.json; "
            f"directories are searched {SEARCH_DEPTH} levels deep)"
        )
    return sorted(found.values())


def _runs_under(path: Path, depth: int) -> list[Path]:
    if not path.is_dir():
        return []
    if is_run_dir(path):
        return [path]
    if depth == 0:
        return []
    try:
        children = sorted(entry.path for entry in os.scandir(path) if entry.is_dir() and not entry.name.startswith("."))
    except OSError:
        return []
    return [run for child in children for run in _runs_under(Path(child), depth - 1)]


def read_run(path: Path) -> RunRecord:
    """Read one run directory; never raises for a missing or corrupt file, records a problem instead."""
    run = RunDir(path)
    record = RunRecord(path=path)
    _read_config(run, record)
    _read_meta(run, record)
    _read_metrics(run, record)
    _read_annotations(run, record)
    return record


def read_runs(paths: list[Path]) -> list[RunRecord]:
    return [read_run(path) for path in paths]


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys; lists and scalars are kept as values."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


def _read_config(run: RunDir, record: RunRecord) -> None:
    if not run.config.is_file():
        record.problems.append("no config.yaml")
        return
    try:
        data = run.read_config_data()
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        record.problems.append(f"config.yaml unreadable: {_first_line(err)}")
        return
    if not isinstance(data, dict):
        record.problems.append(f"config.yaml is not a mapping (got {type(data).__name__})")
        return
    record.config = flatten(data)


def _read_meta(run: RunDir, record: RunRecord) -> None:
    if not run.meta_file.is_file():
        record.problems.append("no meta.json (status unknown)")
        return
    try:
        meta = run.read_meta()
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        record.status = "corrupt"
        record.problems.append(f"meta.json unreadable: {_first_line(err)}")
        return
    if not isinstance(meta, dict):
        record.status = "corrupt"
        record.problems.append(f"meta.json is not an object (got {type(meta).__name__})")
        return
    record.meta = meta
    record.status = run_status(meta, run.path)


def _read_metrics(run: RunDir, record: RunRecord) -> None:
    """The run's epochs, and where and why reading stopped early as a problem of the run."""
    if not run.metrics_file.is_file():
        if record.status in ("completed", "pruned"):  # other states may simply not have finished an epoch yet
            record.problems.append("no metrics.jsonl")
        return
    try:
        record.metrics, problem = run.read_metrics_checked()
    except (OSError, UnicodeDecodeError) as err:
        record.problems.append(f"metrics.jsonl unreadable: {_first_line(err)}")
        return
    if problem:
        record.problems.append(f"metrics.jsonl {problem}; epochs from there on ignored")


def _read_annotations(run: RunDir, record: RunRecord) -> None:
    """Tags and note (annotations.py writes them); an unreadable file is a problem of the run, not an error."""
    try:
        record.tags = run.read_tags()
    except (OSError, UnicodeDecodeError, ValueError) as err:
        record.problems.append(f"tags.json unreadable: {_first_line(err)}")
    try:
        record.note = run.read_note()
    except (OSError, UnicodeDecodeError) as err:
        record.problems.append(f"notes.md unreadable: {_first_line(err)}")
