"""Feeding a global batch to several replicas (every replica gets its own slice of each global batch), and checking
that the replicas hold the same state.

Each worker builds the same global batches (same order, same augmentation: both are functions of
(seed, epoch, batch)) and keeps the slices of its own replicas, so a step on R replicas sees exactly
the images of the single-device step with the same global batch, and the summed gradients match it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def distribute_batches(strategy: tf.distribute.Strategy, batches: tf.data.Dataset):
    """`batches` (global batches) split into per-replica slices; unchanged on a single replica.

    Slices differ in size by at most one image (like numpy.array_split), so a last global batch
    smaller than the number of replicas would leave a replica without images: such a batch is dropped.
    """
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return batches
    batches = batches.filter(lambda x, y: tf.shape(y)[0] >= replicas)

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local

        def slices(x: tf.Tensor, y: tf.Tensor) -> tf.data.Dataset:
            bounds = (tf.shape(y, out_type=tf.int64)[0] * tf.range(replicas + 1, dtype=tf.int64)) // replicas
            return tf.data.Dataset.range(first, first + local).map(
                lambda r: (x[bounds[r]:bounds[r + 1]], y[bounds[r]:bounds[r + 1]]))

        return batches.flat_map(slices)

    return strategy.distribute_datasets_from_function(dataset_fn)


class ReplicaCheck:
    """Every replica must hold the same state. A variable under a strategy has a copy per replica, and an update in
    replica context writes each replica's own copy (weights, optimizer slots and batch-norm statistics all are
    updated so), so the copies stay equal only while every replica assigns the same value: the step all-reduces the
    gradients, and synchronized batch norm its sums, before anything is assigned. A layer that assigns a value of its
    own replica's slice (an unsynchronized keras BatchNormalization's moving statistics, say) makes the copies differ
    silently, and a checkpoint keeps only the first. The Trainer compares them at every epoch end and before an
    interruption's checkpoint: one fused comparison, nothing at all with one replica per worker."""

    def __init__(self, named: list[tuple[str, tf.Variable]]):
        self.copies = [(name, tuple(v.values)) for name, v in named if len(getattr(v, "values", ())) > 1]
        pairs = [(copy, copies[0]) for _, copies in self.copies for copy in copies[1:]]
        self._agree = tf.function(lambda: tf.reduce_all([tf.reduce_all(tf.equal(a, b)) for a, b in pairs])) if pairs else None

    def differing(self) -> str | None:
        """The name of a variable whose replicas hold different values, or None; names are looked up only on failure."""
        if self._agree is None or bool(self._agree()):
            return None
        return next((name for name, copies in self.copies
                     if any(not np.array_equal(copy.numpy(), copies[0].numpy()) for copy in copies[1:])), "a variable")
