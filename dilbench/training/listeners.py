"""What the Trainer tells the rest of a run (the Keras callback idea, kept small).

The Trainer trains and emits these events; everything else listens: the progress display, the policy
for a non-finite loss and the periodic checkpoint (training/), and the writers of the run directory
(metrics, TensorBoard events, checkpoints, plots: one writer each, wired up by `dilbench.launch`).
Listeners are called in the order given, so a run's checkpoint is saved before its plots are drawn: a
failure drawing a plot never costs the epoch. A listener that raises stops the run there (that is how
the non-finite policy fails a run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from dilbench.config import Config
from dilbench.data import Dataset
from dilbench.errors import DilbenchError

Record = dict[str, Any]  # one epoch, as in metrics.jsonl


class RunFailed(DilbenchError):
    """Training cannot go on (e.g. a NaN loss); finished epochs and checkpoints are kept."""


class RunInterrupted(DilbenchError):
    """Ctrl-C or SIGTERM: a checkpoint was saved; `dilbench train --resume RUN_DIR` continues."""

    exit_code = 130


@dataclass(frozen=True)
class BatchEnd:
    """One trained batch, as batch_ended reports it."""

    epoch: int  # 0-based
    step: int  # batches done in this epoch, this one included
    steps: int  # batches in the epoch
    loss: float  # this batch's mean training loss (of its first forward pass)
    mean_loss: float  # the epoch's so far
    accuracy: float  # the epoch's so far
    images_per_s: float  # the epoch's so far

    @property
    def last_of_epoch(self) -> bool:
        return self.step == self.steps


class Trainer(Protocol):
    """What listeners may read of the Trainer (trainer.py), so they depend on this module only."""

    config: Config
    data: Dataset
    model: Any  # GroupedModel
    optimizers: list[Any]  # GroupOptimizer, one per layer group
    checkpoint: Any  # tf.train.Checkpoint of weights, optimizer state and progress
    state: Any  # RunState: epoch, step, best accuracy (the position: see save_position)
    augmenter: Any  # BatchAugmenter, or None
    initial_weights: dict[str, np.ndarray]  # per layer group (and head), before any training or restore
    where: str  # the run, as messages name it

    def group_weights(self) -> dict[str, np.ndarray]: ...

    def save_position(self, where: str) -> None:
        """Write the position inside the epoch into `state` and check weights and slots are finite: what a
        listener calls before it saves a checkpoint mid-epoch (`where` names the moment in a failure)."""

    def failed(self, epoch: int, what: str) -> RunFailed:
        """The failure of the run in `epoch` (0-based), saying what to change and what is kept."""


class TrainingListener:
    """Override the events you need; the others do nothing."""

    def run_started(self, trainer: Trainer, fresh: bool) -> None:
        """Before the first batch of this process; `fresh`: nothing trained yet (not a resume)."""

    def epoch_started(self, trainer: Trainer, epoch: int, steps: int, step: int) -> None:
        """Before the first batch of an epoch (0-based) of `steps` batches, from batch `step` on (a resume's)."""

    def batch_ended(self, trainer: Trainer, batch: BatchEnd) -> None:
        """After every training batch; the position inside the epoch is in `batch`, not yet in `trainer.state`."""

    def evaluation_started(self, trainer: Trainer, split: str) -> None:
        """After an epoch's last batch, before its evaluation on `split`."""

    def epoch_ended(self, trainer: Trainer, records: list[Record]) -> None:
        """After an epoch and its evaluation; `records` holds every epoch so far, this one last. The
        Trainer's state is already at the epoch's end (what a checkpoint saves)."""

    def interrupted(self, trainer: Trainer) -> None:
        """Stopped inside an epoch (Ctrl-C, SIGTERM, Slurm's warning); `trainer.state` holds the position to save."""

    def run_ended(self, trainer: Trainer, records: list[Record]) -> None:
        """After the last configured epoch."""

    def run_stopped(self, trainer: Trainer, error: BaseException) -> None:
        """Training ended early with `error` (a failure or an interruption), after any `interrupted`."""
