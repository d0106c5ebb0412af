"""Extending a run: `dilbench train --resume RUN --set train.epochs=N` trains a run on to N epochs.

Resuming may change only what cannot change the epochs already trained, so the extended config.yaml
still reproduces the whole run: that is `train.epochs`, and only when the learning rate does not
depend on it. A cosine schedule decays over all of train.epochs, so every past learning rate depended
on it, and FreezeOut freezes groups at fractions of it; such runs are refused (train a new run with
more epochs). Every other key is refused too:
even `train.eval_batch_size` changes the summation order of past evaluation losses, so config.yaml
would no longer reproduce metrics.jsonl to the last bit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dilbench.config import dump_config, load_config
from dilbench.config.loader import Override
from dilbench.errors import UsageError
from dilbench.runs.owner import run_status
from dilbench.runs.rundir import RunDir, utc_now, write_atomic

EXTENDABLE = ("train.epochs",)


def extend_run(path: str, overrides: Sequence[str]) -> dict[str, Any] | None:
    """Apply `--set` overrides to the run's config.yaml if they extend it, and return the change as
    meta.json's `extensions` records it (None: nothing changed).

    Nothing is written when a check fails. Called by resume_run while it holds the run's lock; it
    records the change, and training itself is the ordinary resume that follows."""
    run = RunDir.open(path)
    changes = [Override.parse(text) for text in overrides]
    for item in changes:
        if item.key not in EXTENDABLE:
            raise UsageError(
                f"--set {item.key}: cannot change when resuming {run.path}, it would change the epochs already "
                f"trained; only {', '.join(EXTENDABLE)} can. Start a new run: dilbench train {run.config} --set {item.key}=..."
            )
    config = load_config(run.config)
    extended = load_config(run.config, changes)
    if extended == config:
        return None
    done = len(run.read_metrics())
    meta = run.read_meta() if run.meta_file.exists() else {}
    if run_status(meta, run.path) == "running":  # a crashed run (its owner gone) can be extended
        raise UsageError(f"{run.path} says it is running; wait for it to end (or resume it first) before extending it")
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
    if config.train.distribute == "multi_worker":
        raise UsageError(f"{run.path} is a multi-worker run: extend it by starting a new run with more epochs")
    if extended.train.epochs <= done:
        raise UsageError(f"--set train.epochs={extended.train.epochs}: {run.path} has already trained {done} "
                         f"epochs; give more than {done}")
    write_atomic(run.config, dump_config(extended))
    return {"at": utc_now(), "epochs_done": done, "train.epochs": {"from": config.train.epochs, "to": extended.train.epochs}}
