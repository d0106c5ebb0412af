"""What every schedule's training step shares: the loss, accuracy and per-group updates."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import tensorflow as tf

from dilbench.training.optimizers import GroupOptimizer
from dilbench.training.runtime import LossScale


def cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Mean softmax cross-entropy over the batch, in float32 whatever the compute precision."""
    return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(logits, tf.float32)))


def num_correct(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=labels.dtype), labels), tf.int64))


@dataclass
class StepContext:
    """The model's groups, their optimizers and the loss scale: all a schedule may touch."""

    model: object  # GroupedModel
    optimizers: list[GroupOptimizer]
    loss_scale: LossScale

    @property
    def num_groups(self) -> int:
        return len(self.optimizers)

    def group_variables(self, index: int) -> list[tf.Variable]:
        return self.optimizers[index].variables_

    def flat_variables(self, groups: Iterable[int] | None = None) -> list[tf.Variable]:
        indices = range(self.num_groups) if groups is None else groups
        return [v for i in indices for v in self.group_variables(i)]

    def update_groups(self, groups: Iterable[int]) -> Callable[[list[tf.Tensor]], None]:
        """A function applying a flat gradient list (in `flat_variables(groups)` order) group by group."""
        groups = list(groups)

        def update(grads: list[tf.Tensor]) -> None:
            offset = 0
            for i in groups:
                count = len(self.group_variables(i))
                self.optimizers[i].apply(grads[offset:offset + count])
                offset += count

        return update
