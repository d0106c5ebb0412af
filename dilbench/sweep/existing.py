"""Match planned runs to the run directories earlier sweeps left, and decide what each run needs.

A run is found by the `name` in its config.yaml (the directory name adds a time stamp) and must have
exactly the planned config: a run made from an older version of the experiment file is never reused.

    completed, or pruned (a search's trial its pruner
      stopped: finished, never resumed)                -> skip
    interrupted, failed, crashed or stale (its owner
      is gone, or on another host, and its lock free)  -> resume from its last checkpoint
    locked by a live process                           -> busy (left alone)
    only runs of this name with another config -> changed (an error unless --rerun-changed)
    nothing                                    -> start
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dilbench.config import ConfigError, load_config
from dilbench.config.loader import MOVED
from dilbench.report.aggregate import canonical
from dilbench.report.runs_index import MISSING, RunReader, RunRecord, flatten, runs_in
from dilbench.runs.lock import is_locked
from dilbench.runs.rundir import RunDir
from dilbench.sweep.plan import Plan, PlannedRun
from dilbench.typed.validate import to_plain

RUN_DIR = re.compile(r"^.+-\d{8}-\d{6}-[0-9a-f]{4}$")


@dataclass(frozen=True)
class Existing:
    """A run directory holding a run of the planned name."""

    path: Path
    status: str  # meta.json's (a dead `running` as crashed or stale: owner.py); `unknown` when it is missing or unreadable
    difference: str | None  # None: the planned config; else what differs
    record: RunRecord | None = field(default=None, compare=False, repr=False)  # what compare's index knows of it


@dataclass(frozen=True)
class Step:
    run: PlannedRun
    action: str  # skip | resume | start | busy | changed
    path: Path | None  # the run directory skipped, resumed or left alone
    detail: str  # why, for people
    others: tuple[Existing, ...] = ()  # runs of this name with another config, left alone


def lock_path(runs_dir: Path, name: str) -> Path:
    return runs_dir / ".sweep" / "locks" / f"{name}.lock"


class Found(dict[str, list[RunRecord]]):
    """What scan found: run records by config name, and the reader that read them (its index to save)."""

    def __init__(self, reader: RunReader):
        super().__init__()
        self.reader = reader


def scan(runs_dir: Path) -> Found:
    """Run directories directly under runs_dir by their config name, oldest first (read through compare's index)."""
    found = Found(RunReader())
    try:
        names = sorted(entry.name for entry in os.scandir(runs_dir) if entry.is_dir() and RUN_DIR.match(entry.name))
    except OSError:
        return found
    records = runs_in(runs_dir, names, found.reader)
    records.reader.prefetch(records, ("config",))
    for record in records:
        name = record.config_get("name", MISSING)
        if name is MISSING or record.part("config").problems:
            continue  # not a readable run: nothing to match it with
        found.setdefault(str(name), []).append(record)
    return found  # <name>-<UTC stamp>-<hex>: sorted by directory name, the stamp orders runs of one name


def examine(record: RunRecord, run: PlannedRun) -> Existing:
    status = record.status if record.status != "corrupt" else "unknown"  # meta.json missing or unreadable
    return Existing(record.path, status, config_difference(record.path / "config.yaml", run, record), record)


def config_difference(config_file: Path, run: PlannedRun, record: RunRecord | None = None) -> str | None:
    """None when the file holds the planned experiment, else a short account of what differs (the runtime, how a
    run executes, may differ: a run started on other devices is still this run).

    With the run's record: a config.yaml whose experiment values are the planned ones, key for key and type for
    type, and that flattening loses nothing of (run_parts._plain) is the planned experiment without building it
    (runtime keys are left out on both sides; a file with runtime keys in their old places, config/loader.MOVED, is
    loaded, which notes them)."""
    if record is not None and record.part("config").extra("plain"):
        theirs = record.config
        if not any(key in MOVED for key in theirs) and _same(_experiment(theirs), _experiment(flatten(to_plain(run.config)))):
            return None
    try:
        if load_config(config_file).experiment() == run.config.experiment():
            return None
    except ConfigError as err:
        return f"its config.yaml is no longer valid ({err})"
    theirs = flatten(RunDir(config_file.parent).read_config_data())
    ours = flatten(to_plain(run.config))
    keys = [key for key in {**ours, **theirs} if canonical(ours.get(key)) != canonical(theirs.get(key))
            and not key.startswith("runtime.") and key not in MOVED]
    shown = [f"{key}: {_short(theirs.get(key))} -> {_short(ours.get(key))}" for key in keys[:3]]
    return ", ".join(shown) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def _experiment(flat: dict[str, Any]) -> dict[str, Any]:
    """A flattened config without its runtime (how a run executes, not what it computes)."""
    return {key: value for key, value in flat.items() if key != "runtime" and not key.startswith("runtime.")}


def _same(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    return ours.keys() == theirs.keys() and all(_identical(value, theirs[key]) for key, value in ours.items())


def _identical(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 is not 1.0 nor True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_identical, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_identical(value, b[key]) for key, value in a.items())
    if isinstance(a, float):
        return a.__repr__() == b.__repr__()
    return bool(a == b)


def _short(value: object) -> str:
    text = "-" if value is None else json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def latest_same(runs_dir: Path, run: PlannedRun, found: Found | None = None) -> Existing | None:
    """The newest run directory holding exactly this run's config (after a job, to find what it made);
    `found`: what scan(runs_dir) gave, when several runs are looked up."""
    found = scan(runs_dir) if found is None else found
    same = [e for e in (examine(record, run) for record in found.get(run.name, [])) if e.difference is None]
    return same[-1] if same else None


def decide(plan: Plan) -> list[Step]:
    """What each planned run needs, from the run directories under the plan's runs_dir."""
    found = scan(plan.runs_dir)
    steps = [_decide(run, [examine(record, run) for record in found.get(run.name, [])], plan.runs_dir) for run in plan.runs]
    save(found)
    return steps


def save(found: Found) -> None:
    """Keep in the index what scan and examine read from files."""
    found.reader.save()


def _decide(run: PlannedRun, existing: list[Existing], runs_dir: Path) -> Step:
    same = [e for e in existing if e.difference is None]
    others = tuple(e for e in existing if e.difference is not None)
    completed = [e for e in same if e.status in ("completed", "pruned")]
    if completed:
        return Step(run, "skip", completed[-1].path, _completed_detail(completed[-1]), others)
    resumable = [e for e in same if e.status in ("interrupted", "failed", "running", "crashed", "stale")]
    if resumable:
        last = resumable[-1]
        if is_locked(lock_path(runs_dir, run.name)) or is_locked(RunDir(last.path).lock_file):
            return Step(run, "busy", last.path, "running in another process", others)
        state = {"running": "running, but its process is gone", "crashed": "crashed (its process is gone)",
                 "stale": "running on another host, but its lock is free"}.get(last.status, last.status)
        return Step(run, "resume", last.path, f"{state} after {_epochs_done(last)}/{run.config.train.epochs} epochs", others)
    if others:
        detail = "; ".join(f"{e.path.name} has another config: {e.difference}" for e in others)
        return Step(run, "changed", None, detail, others)
    broken = [e.path.name for e in same]  # same config but no readable meta.json: cannot be resumed
    return Step(run, "start", None, f"new run (ignoring {', '.join(broken)}: no readable meta.json)" if broken else "new run")


def _epochs_done(existing: Existing) -> int:
    return existing.record.reduced("epochs") if existing.record else len(RunDir(existing.path).read_metrics())


def _completed_detail(existing: Existing) -> str:
    records = existing.record.metrics if existing.record else RunDir(existing.path).read_metrics()
    if existing.status == "pruned":
        accuracy = f", {final_accuracy(records[-1])}" if records and "eval_acc" in records[-1] else ""
        return f"pruned after {len(records)} epoch(s){accuracy}"
    return f"completed, {final_accuracy(records[-1])}" if records and "eval_acc" in records[-1] else "completed"


def final_accuracy(meta: dict[str, Any]) -> str:
    """`final test acc 0.8123` from meta.json (or a last metrics record), naming the evaluated split."""
    accuracy = meta.get("final_eval_acc", meta.get("eval_acc", float("nan")))
    return f"final {meta.get('eval_split', 'eval')} acc {accuracy:.4f}"
