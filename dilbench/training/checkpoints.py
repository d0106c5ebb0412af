"""A run's checkpoints: latest/ (every epoch end, interruption and `runtime.checkpoint_every` inside an
epoch), best/ (the best evaluated epoch) and, until latest/ has one, start/ (the untrained state).

What the rest of the code may rely on:
- Once an epoch is in metrics.jsonl, a checkpoint exists. The record is written before the epoch's
  checkpoints, so a kill between them leaves epoch 1's record with no checkpoint of epoch 1; start/
  (written before the first batch, removed after the first save to latest/) is what such a run resumes
  from. A run with records and no checkpoint therefore lost its checkpoints, and resuming it is refused.
- best/ only ever gets a strictly better epoch. The accuracy to beat is saved in every checkpoint and,
  on resume, read back from best/ itself, so neither a resume nor a kill between the two saves of an
  epoch end lets best/ regress. best/ is saved before latest/: a kill in between retrains that epoch.
- Nothing non-finite is saved: the Trainer checks before every save (finite.py).
- A resume starts from the newest checkpoint that reads back whole and agrees with metrics.jsonl (it is
  at an epoch recorded there, with the update counts recorded there). An older one (best/) is taken
  only with a warning naming what was skipped and why; the records past it are kept as
  `metrics.jsonl.old-<time>` before those epochs are trained again.
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path
from typing import Any, Protocol

import tensorflow as tf

from dilbench.config.schema import checkpoint_interval
from dilbench.errors import DilbenchError
from dilbench.training.listeners import BatchEnd, Trainer, TrainingListener

log = logging.getLogger("dilbench")
CHECKPOINT_SETS = ("latest", "best", "start")  # checked in this order on resume


class RunFiles(Protocol):
    """What this module needs of a run directory (runs/rundir.py's RunDir, a layer above training)."""

    @property
    def path(self) -> Path: ...
    @property
    def checkpoints(self) -> Path: ...
    @property
    def metrics_file(self) -> Path: ...


    def checkpoint_prefixes(self, which: str) -> list[Path]: ...
    def has_checkpoints(self) -> bool: ...
    def read_metrics(self) -> list[dict[str, Any]]: ...
    def set_aside(self, path: Path, copy: bool = False) -> Path: ...


class CheckpointError(DilbenchError):
    """No checkpoint of the run can be resumed from (unreadable, or disagreeing with metrics.jsonl)."""


class RunCheckpoints(TrainingListener):
    """The writer of checkpoints/: listens to the Trainer (epoch ends, interruptions) and restores a resume."""

    def __init__(self, trainer: Trainer, run: RunFiles):
        self.checkpoint = trainer.checkpoint
        self.state = trainer.state  # the trainer's RunState: epoch, step, best_acc, ...
        self.optimizers = trainer.optimizers
        self.run = run
        self.latest = tf.train.CheckpointManager(self.checkpoint, run.checkpoints / "latest", max_to_keep=1)
        self.best = tf.train.CheckpointManager(self.checkpoint, run.checkpoints / "best", max_to_keep=1)
        self.start = run.checkpoints / "start"

    # ---- saving -----------------------------------------------------------------------------------------
    def run_started(self, trainer: Trainer, fresh: bool) -> None:
        """Before the first batch of a run with no checkpoint: save the untrained state to start/ (written
        without numbering, so latest/ and best/ number their saves from 1 as without it)."""
        if fresh and not self.run.has_checkpoints():
            self.checkpoint.write(str(self.start / "ckpt-0"))

    def epoch_ended(self, trainer: Trainer, records: list[dict[str, Any]]) -> None:
        self.save_epoch_end(records[-1]["eval_acc"])

    def interrupted(self, trainer: Trainer) -> None:
        self.save_latest()

    def save_epoch_end(self, accuracy: float) -> None:
        """After an epoch (progress already at its end): best/ first if it improved, then latest/."""
        if accuracy > float(self.state.best_acc):
            self.state.best_acc.assign(accuracy)
            self.best.save()
        self.save_latest()

    def save_latest(self) -> None:
        self.latest.save()
        if self.start.exists():  # latest/ now has a checkpoint to resume from
            shutil.rmtree(self.start)

    # ---- resuming ---------------------------------------------------------------------------------------
    def restore(self, source: RunFiles) -> None:
        """Load the newest usable checkpoint of `source` (this run, or a multi-worker chief's) into the
        trainer's objects; with none at all the run starts from scratch (only ever called when
        metrics.jsonl has no epochs then: launch refuses otherwise)."""
        records = source.read_metrics()
        candidates = [prefix for which in CHECKPOINT_SETS for prefix in source.checkpoint_prefixes(which)]
        lost_latest = source.checkpoint_prefixes("best") and not source.checkpoint_prefixes("latest")
        skipped = ["checkpoints/latest holds no checkpoint"] if lost_latest else []
        for prefix in candidates:
            problem = self._read(prefix) or self._disagreement(records)
            if problem:
                skipped.append(f"{_short(prefix, source)} {problem}")
                continue
            self._after_restore(source, prefix, candidates, records, skipped)
            return
        if skipped:
            raise CheckpointError(
                f"cannot resume {source.path}: " + "; ".join(skipped) + ". Nothing else to resume from that agrees with "
                f"metrics.jsonl; to start over keeping the old records aside: dilbench train --resume {source.path} --restart"
            )
        if records:
            raise CheckpointError(f"{source.path} has no checkpoint to resume its {len(records)} recorded epoch(s) from; "
                                  f"to start over keeping them aside: dilbench train --resume {source.path} --restart")
        log.info("no checkpoint yet (stopped during epoch 1): training from the start")

    def _read(self, prefix: Path) -> str | None:
        try:
            self.checkpoint.read(str(prefix)).assert_existing_objects_matched()
        except Exception as err:  # whatever TensorFlow raises: DataLossError, IndexError on a short file, ...
            return f"is unreadable ({_first_line(err)})"
        return None

    def _disagreement(self, records: list[dict[str, Any]]) -> str | None:
        """Why the checkpoint just read does not fit metrics.jsonl, or None when it does."""
        epoch, step = int(self.state.epoch), int(self.state.step)
        if epoch > len(records):
            return f"is at the end of epoch {epoch} but metrics.jsonl records {len(records)} epoch(s)"
        recorded = records[epoch - 1].get("updates_total") if epoch and step == 0 else None
        updates = [int(o.updates.numpy()) for o in self.optimizers]
        if recorded is not None and recorded != updates:
            return f"holds {updates} updates per group but metrics.jsonl records {recorded} after epoch {epoch}"
        return None

    def _after_restore(self, source: RunFiles, prefix: Path, candidates: list[Path], records: list[dict[str, Any]],
                       skipped: list[str]) -> None:
        epoch, step = int(self.state.epoch), int(self.state.step)
        where = f"epoch {epoch + 1}, step {step}" if step else f"the end of epoch {epoch}" if epoch else "the start"
        if skipped:
            log.warning("%s; resuming instead from %s (%s), which agrees with metrics.jsonl", "; ".join(skipped),
                        _short(prefix, source), where)
        if len(records) > epoch and source == self.run:
            log.warning("epochs %d-%d are trained again; their old records are kept in %s", epoch + 1, len(records),
                        self.run.set_aside(self.run.metrics_file, copy=True).name)
        # new saves get numbers above every file present, so "highest number" stays "newest"
        self.checkpoint.save_counter.assign(max(int(p.name.split("-")[1]) for p in candidates))
        self.state.best_acc.assign(max(float(self.state.best_acc), self._best_bar(source)))
        log.info("resumed from %s at %s", _short(prefix, source), where)

    def _best_bar(self, source: RunFiles) -> float:
        """The accuracy best/ holds (saved with it), so a resumed run beats that, not an older value."""
        for prefix in source.checkpoint_prefixes("best"):
            try:
                return float(tf.train.load_checkpoint(str(prefix)).get_tensor("progress/best_acc/.ATTRIBUTES/VARIABLE_VALUE"))
            except (tf.errors.OpError, ValueError):
                continue
        return -1.0


class PeriodicCheckpoint(TrainingListener):
    """Saves latest/ inside an epoch every `runtime.checkpoint_every` batches (counted over the run, so where
    they fall does not depend on resumes) or seconds, so a killed run loses at most that much. The epoch's
    last batch is left to the epoch end's save."""

    def __init__(self, checkpoints: RunCheckpoints, every: int | str | None):
        self.checkpoints = checkpoints
        self.batches, self.seconds = checkpoint_interval(every)
        self.last_save = time.monotonic()

    def epoch_started(self, trainer: Trainer, epoch: int, steps: int, step: int) -> None:
        self.last_save = time.monotonic()  # the epoch end (or the start) just saved

    def batch_ended(self, trainer: Trainer, batch: BatchEnd) -> None:
        if batch.last_of_epoch:
            return
        due = (self.batches and (batch.epoch * batch.steps + batch.step) % self.batches == 0
               or self.seconds and time.monotonic() - self.last_save >= self.seconds)
        if due:
            trainer.save_position(f"epoch {batch.epoch + 1}, step {batch.step}")
            self.checkpoints.save_latest()
            self.last_save = time.monotonic()


def _short(prefix: Path, run: RunFiles) -> str:
    try:
        return str(prefix.relative_to(run.path))
    except ValueError:
        return str(prefix)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return f"{type(err).__name__}: {text[:200]}"
