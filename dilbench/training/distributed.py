"""Feeding a global batch to several replicas: every replica gets its own slice of each global batch.

Each worker builds the same global batches (same order, same augmentation: both are functions of
(seed, epoch, batch)) and keeps the slices of its own replicas, so a step on R replicas sees exactly
the images of the single-device step with the same global batch, and the summed gradients match it.
"""

from __future__ import annotations

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
