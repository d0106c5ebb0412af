"""What `dilbench train --resume RUN --set ...` may change: the run's length, and how it executes.

Resuming may change only what cannot change the epochs already trained, so config.yaml still
reproduces the whole run:

- `train.epochs`, to train a run on, and only when the learning rate does not depend on it. A cosine
  schedule decays over all of train.epochs, so every past learning rate depended on it, and FreezeOut
  freezes groups at fractions of it; such runs are refused (train a new run with more epochs).
- any `runtime.*` key (devices, distribution, XLA, evaluation batches, op determinism): they change how
  the run executes, at most its rounding, not what it computes. A run started on two GPUs resumes on
  one. config.yaml then holds the runtime of the latest segment, and meta.json each segment's own.

Every other key is refused by name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dilbench.config import dump_config, load_config
from dilbench.config.loader import Override, moved
from dilbench.errors import UsageError
from dilbench.runs.owner import run_status
from dilbench.runs.rundir import RunDir, utc_now, write_atomic
from dilbench.typed.validate import to_plain

EXTENDABLE = ("train.epochs",)
RUNTIME = "runtime."


@dataclass(frozen=True)
class Amendment:
    """What a resume's `--set` changed in config.yaml."""

    extension: dict[str, Any] | None = None  # meta.json's `extensions` entry when train.epochs grew
    runtime: dict[str, Any] | None = None  # the runtime keys that changed: {key: {"from": old, "to": new}}


def amend_run(path: str, overrides: Sequence[str]) -> Amendment:
    """Apply a resume's `--set` overrides to the run's config.yaml if they extend it or change its runtime,
    and return the change (an empty Amendment: nothing changed).

    Nothing is written when a check fails. Called by resume_run while it holds the run's lock; training
    itself is the ordinary resume that follows."""
    run = RunDir.open(path)
    changes = [moved(Override.parse(text)) for text in overrides]
    for item in changes:
        if item.key not in EXTENDABLE and not item.key.startswith(RUNTIME):
            raise UsageError(
                f"--set {item.key}: cannot change when resuming {run.path}, it would change the epochs already "
                f"trained; only {', '.join(EXTENDABLE)} and runtime.* can. Start a new run: dilbench train {run.config} "
                f"--set {item.key}=..."
            )
    config = load_config(run.config)
    amended = load_config(run.config, changes)
    if amended == config:
        return Amendment()
    meta = run.read_meta() if run.meta_file.exists() else {}
    if run_status(meta, run.path) == "running":  # a crashed run (its owner gone) can be resumed
        raise UsageError(f"{run.path} says it is running; wait for it to end (or resume it first) before changing it")
    extension = _extension(run, config, amended) if amended.train.epochs != config.train.epochs else None
    runtime = _runtime_change(run, to_plain(config.runtime), to_plain(amended.runtime))
    write_atomic(run.config, dump_config(amended))
    return Amendment(extension, runtime)


def _extension(run: RunDir, config: Any, extended: Any) -> dict[str, Any]:
    done = len(run.read_metrics())
    if config.train.lr_schedule == "cosine":
        raise UsageError(
            f"{run.path} uses train.lr_schedule: cosine, whose learning rate decays over all "
            f"{config.train.epochs} epochs: extending it would change the past. Train a new run with "
            f"--set train.epochs={extended.train.epochs} instead"
        )
    if config.schedule.freezeout:
        raise UsageError(
            f"{run.path} uses schedule.freezeout, whose groups freeze at fractions of all {config.train.epochs} "
            f"epochs: extending it would change the past. Train a new run with --set train.epochs={extended.train.epochs} instead"
        )
    if config.runtime.distribute == "multi_worker" or extended.runtime.distribute == "multi_worker":
        raise UsageError(f"{run.path} is a multi-worker run: extend it by starting a new run with more epochs")
    if extended.train.epochs <= done:
        raise UsageError(f"--set train.epochs={extended.train.epochs}: {run.path} has already trained {done} "
                         f"epochs; give more than {done}")
    return {"at": utc_now(), "epochs_done": done, "train.epochs": {"from": config.train.epochs, "to": extended.train.epochs}}


def _runtime_change(run: RunDir, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any] | None:
    changed = {key: {"from": old[key], "to": new[key]} for key in old if old[key] != new[key]}
    if changed.get("distribute", {}).get("to") == "multi_worker":
        raise UsageError(f"--set runtime.distribute=multi_worker: {run.path} cannot become a multi-worker run on resume "
                         "(every worker would rewrite its config); resume it as it is, or start a multi-worker run")
    return changed or None
