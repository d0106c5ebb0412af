"""What the Trainer tells the outputs of a run (the Keras callback idea, kept small).

The Trainer trains and emits these events; everything that writes a run directory listens: metrics,
TensorBoard events, checkpoints and plots each have one writer (runs/, report/), wired up by
`dilbench.launch`. Listeners are called in the order given, so a run's checkpoint is saved before its
plots are drawn: a failure drawing a plot never costs the epoch.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from dilbench.config import Config
from dilbench.data import Dataset

Record = dict[str, Any]  # one epoch, as in metrics.jsonl


class Trainer(Protocol):
    """What listeners may read of the Trainer (trainer.py), so they depend on this module only."""

    config: Config
    data: Dataset
    model: Any  # GroupedModel
    optimizers: list[Any]  # GroupOptimizer, one per layer group
    checkpoint: Any  # tf.train.Checkpoint of weights, optimizer state and progress
    state: Any  # RunState: epoch, step, best accuracy
    augmenter: Any  # BatchAugmenter, or None
    initial_weights: dict[str, np.ndarray]  # per layer group (and head), before any training or restore

    def group_weights(self) -> dict[str, np.ndarray]: ...


class TrainingListener:
    """Override the events you need; the others do nothing."""

    def run_started(self, trainer: Trainer, fresh: bool) -> None:
        """Before the first batch of this process; `fresh`: nothing trained yet (not a resume)."""

    def epoch_ended(self, trainer: Trainer, records: list[Record]) -> None:
        """After an epoch and its evaluation; `records` holds every epoch so far, this one last. The
        Trainer's state is already at the epoch's end (what a checkpoint saves)."""

    def interrupted(self, trainer: Trainer) -> None:
        """Stopped inside an epoch (Ctrl-C, SIGTERM, Slurm's warning): the state to save is the current batch's."""

    def run_ended(self, trainer: Trainer, records: list[Record]) -> None:
        """After the last configured epoch."""
