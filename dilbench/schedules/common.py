"""What every schedule's training step shares: the loss, accuracy and per-group updates.

Steps run once per replica under a tf.distribute strategy (once in all on a single device). The loss is
each replica's share of the global-batch mean and gradients are summed across replicas before any
group is updated, so every replica applies the same update and per-group update counts do not depend
on the number of devices.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import tensorflow as tf

from dilbench.optimizers.group import GroupOptimizer
from dilbench.optimizers.loss_scale import LossScale

if TYPE_CHECKING:
    from dilbench.models.grouped import GroupedModel


def cross_entropy(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Softmax cross-entropy, in float32 whatever the compute precision: the batch mean on one replica;
    with several, this replica's sum over the global batch size (the replicas' shares add up to the mean)."""
    per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=tf.cast(logits, tf.float32))
    replica = tf.distribute.get_replica_context()
    if replica is None or replica.num_replicas_in_sync == 1:
        return tf.reduce_mean(per_example)
    global_size = replica.all_reduce("sum", tf.cast(tf.shape(labels)[0], tf.float32))
    return tf.reduce_sum(per_example) / global_size


def num_correct(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, axis=-1, output_type=labels.dtype), labels), tf.int64))


@dataclass
class StepContext:
    """The model's groups, their optimizers and the loss scale: all a schedule may touch."""

    model: GroupedModel
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

    def apply_gradients(self, grads: list[tf.Tensor], groups: Iterable[int]) -> None:
        """Update `groups` with `grads` (in `flat_variables(groups)` order): summed across replicas,
        unscaled and overflow-checked by the loss scale, then each group's own optimizer."""
        replica = tf.distribute.get_replica_context()
        if replica is not None and replica.num_replicas_in_sync > 1:
            grads = replica.all_reduce("sum", grads)
        self.loss_scale.apply(grads, self.update_groups(groups))

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
