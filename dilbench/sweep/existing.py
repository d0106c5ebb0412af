"""Match planned runs to the run directories earlier sweeps left, and decide what each run needs.

A run is found by the `name` in its config.yaml (the directory name adds a time stamp) and must have
exactly the planned config: a run made from an older version of the experiment file is never reused.

    completed                                          -> skip
    interrupted, failed, crashed or stale (its owner
      is gone, or on another host, and its lock free)  -> resume from its last checkpoint
    locked by a live process                           -> busy (left alone)
    only runs of this name with another config -> changed (an error unless --rerun-changed)
    nothing                                    -> start
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dilbench.config import ConfigError, load_config
from dilbench.config.loader import MOVED
from dilbench.report.aggregate import canonical
from dilbench.report.runs_index import flatten
from dilbench.runs.lock import is_locked
from dilbench.runs.owner import run_status
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


@dataclass(frozen=True)
class Step:
    run: PlannedRun
    action: str  # skip | resume | start | busy | changed
    path: Path | None  # the run directory skipped, resumed or left alone
    detail: str  # why, for people
    others: tuple[Existing, ...] = ()  # runs of this name with another config, left alone


def lock_path(runs_dir: Path, name: str) -> Path:
    return runs_dir / ".sweep" / "locks" / f"{name}.lock"


def scan(runs_dir: Path) -> dict[str, list[Path]]:
    """Run directories directly under runs_dir by their config name, oldest first."""
    found: dict[str, list[Path]] = {}
    if not runs_dir.is_dir():
        return found
    for path in sorted(runs_dir.iterdir()):
        if not (path.is_dir() and RUN_DIR.match(path.name)):
            continue
        try:
            name = RunDir(path).read_config_data()["name"]
        except (OSError, yaml.YAMLError, TypeError, KeyError):
            continue  # not a readable run: nothing to match it with
        found.setdefault(str(name), []).append(path)
    for paths in found.values():
        paths.sort(key=lambda p: p.name)  # <name>-<UTC stamp>-<hex>: the stamp orders runs of one name
    return found


def examine(path: Path, run: PlannedRun) -> Existing:
    try:
        status = run_status(RunDir(path).read_meta(), path)
    except (OSError, ValueError, AttributeError):
        status = "unknown"
    return Existing(path, status, config_difference(path / "config.yaml", run))


def config_difference(config_file: Path, run: PlannedRun) -> str | None:
    """None when the file holds the planned experiment, else a short account of what differs (the runtime, how a
    run executes, may differ: a run started on other devices is still this run)."""
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


def _short(value: object) -> str:
    text = "-" if value is None else json.dumps(value) if isinstance(value, (list, dict)) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def latest_same(runs_dir: Path, run: PlannedRun) -> Existing | None:
    """The newest run directory holding exactly this run's config (after a job, to find what it made)."""
    same = [e for e in (examine(p, run) for p in scan(runs_dir).get(run.name, [])) if e.difference is None]
    return same[-1] if same else None


def decide(plan: Plan) -> list[Step]:
    """What each planned run needs, from the run directories under the plan's runs_dir."""
    found = scan(plan.runs_dir)
    return [_decide(run, [examine(p, run) for p in found.get(run.name, [])], plan.runs_dir) for run in plan.runs]


def _decide(run: PlannedRun, existing: list[Existing], runs_dir: Path) -> Step:
    same = [e for e in existing if e.difference is None]
    others = tuple(e for e in existing if e.difference is not None)
    completed = [e for e in same if e.status == "completed"]
    if completed:
        return Step(run, "skip", completed[-1].path, _completed_detail(completed[-1].path), others)
    resumable = [e for e in same if e.status in ("interrupted", "failed", "running", "crashed", "stale")]
    if resumable:
        last = resumable[-1]
        if is_locked(lock_path(runs_dir, run.name)) or is_locked(RunDir(last.path).lock_file):
            return Step(run, "busy", last.path, "running in another process", others)
        state = {"running": "running, but its process is gone", "crashed": "crashed (its process is gone)",
                 "stale": "running on another host, but its lock is free"}.get(last.status, last.status)
        return Step(run, "resume", last.path, f"{state} after {_epochs_done(last.path)}/{run.config.train.epochs} epochs", others)
    if others:
        detail = "; ".join(f"{e.path.name} has another config: {e.difference}" for e in others)
        return Step(run, "changed", None, detail, others)
    broken = [e.path.name for e in same]  # same config but no readable meta.json: cannot be resumed
    return Step(run, "start", None, f"new run (ignoring {', '.join(broken)}: no readable meta.json)" if broken else "new run")


def _epochs_done(path: Path) -> int:
    return len(RunDir(path).read_metrics())


def _completed_detail(path: Path) -> str:
    records = RunDir(path).read_metrics()
    return f"completed, {final_accuracy(records[-1])}" if records and "eval_acc" in records[-1] else "completed"


def final_accuracy(meta: dict[str, Any]) -> str:
    """`final test acc 0.8123` from meta.json (or a last metrics record), naming the evaluated split."""
    accuracy = meta.get("final_eval_acc", meta.get("eval_acc", float("nan")))
    return f"final {meta.get('eval_split', 'eval')} acc {accuracy:.4f}"
