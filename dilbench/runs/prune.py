"""`dilbench prune`: keep one checkpoint set of a run (best/ or latest/) and remove the others, to free disk.

Removed with `--keep best`: checkpoints/latest/, checkpoints/start/ and checkpoints set aside by
`--resume --restart` (`checkpoints.old-*`); with `--keep latest`: best/, start/ and those. A run whose
kept set is empty is left whole (pruning it would leave nothing to resume or evaluate from), and a run
some process writes is never touched: the run's `.lock` is held while its files go. After `--keep best`
a resume (or an extension) starts from best/'s epoch and trains the epochs after it again.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from dilbench.runs.lock import RunLock, is_locked
from dilbench.runs.owner import this_process
from dilbench.runs.rundir import CHECKPOINT_SETS, RunDir, utc_now
from dilbench.runs.trash import tree_bytes

KEEP = ("best", "latest")


@dataclass
class Pruning:
    run: RunDir
    remove: list[Path] = field(default_factory=list)
    bytes: int = 0
    skipped: str = ""  # why nothing is removed from this run


def plan(run: RunDir, keep: str) -> Pruning:
    """What pruning `run` down to `keep` would remove, and its size (`--dry-run`)."""
    if is_locked(run.lock_file):
        return Pruning(run, skipped="being written by another process; left alone")
    return _contents(run, keep)


def prune(run: RunDir, keep: str) -> Pruning:
    """Remove what `plan` lists, holding the run's lock (skipped when a writer holds it)."""
    lock = RunLock(run.lock_file)
    if not lock.acquire(json.dumps({**this_process(), "since": utc_now(), "doing": "dilbench prune"})):
        return Pruning(run, skipped="being written by another process; left alone")
    try:
        pruning = _contents(run, keep)
        for path in pruning.remove:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        return pruning
    finally:
        lock.release()


def _contents(run: RunDir, keep: str) -> Pruning:
    pruning = Pruning(run)
    if not run.checkpoint_prefixes(keep):
        pruning.skipped = f"no {keep} checkpoint; left whole"
        return pruning
    directories = [run.checkpoints / which for which in CHECKPOINT_SETS if which != keep]
    directories += sorted(run.path.glob("checkpoints.old-*"))
    pruning.remove = [d for d in directories if d.exists()]
    pruning.bytes = sum(tree_bytes(d) if d.is_dir() else d.stat().st_size for d in pruning.remove)
    return pruning
