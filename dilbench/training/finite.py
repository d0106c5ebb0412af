"""A cheap check that a model's weights and optimizer state are finite: one fused reduction."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import tensorflow as tf

from dilbench.training.listeners import BatchEnd, Trainer, TrainingListener


def state_variables(model: Any, optimizers: list[Any]) -> list[tuple[str, tf.Variable]]:
    """Every variable of a run's state by name, each once: the model's (weights and BN statistics), then the
    optimizers' (slots, update counts, learning-rate factors)."""
    named = [(v.path, v.value) for v in model.variables]
    seen = {id(v) for _, v in named}
    return named + [(f"{o.name}/{v.name}", v) for o in optimizers for v in o.variables if id(v) not in seen]


class FiniteCheck:
    """Weights can go NaN while the loss stays finite (e.g. an overflowing moment); the Trainer checks at
    every epoch end and before every interruption's checkpoint, so nothing non-finite is recorded or saved."""

    def __init__(self, model: Any, optimizers: list[Any]):
        self.named = [(name, v) for name, v in state_variables(model, optimizers) if v.dtype.is_floating]
        variables = [v for _, v in self.named]
        self._all_finite = tf.function(lambda: tf.reduce_all([tf.reduce_all(tf.math.is_finite(v)) for v in variables]))

    def non_finite(self) -> str | None:
        """The name of a variable holding NaN or inf, or None; names are looked up only on failure."""
        if bool(self._all_finite()):
            return None
        return next((name for name, v in self.named if not np.all(np.isfinite(v.numpy()))), "a variable")


class NonFiniteLoss(TrainingListener):
    """The policy for a NaN or infinite training loss: fail the run at that batch (nothing of it is recorded
    or saved; the epochs before it and their checkpoints stay)."""

    def batch_ended(self, trainer: Trainer, batch: BatchEnd) -> None:
        if not math.isfinite(batch.loss):
            raise trainer.failed(batch.epoch, f"loss became {batch.loss} at epoch {batch.epoch + 1}, step {batch.step}")
