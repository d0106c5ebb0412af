"""Batches for training and evaluation as a tf.data pipeline over in-memory uint8 arrays.

The epoch's order is a pure function of (seed, epoch), so a run resumed mid-epoch sees exactly the
batches it would have seen; batching and gathering run in tf.data, prefetched ahead of the step.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The permutation of the n training examples used in `epoch` (0-based)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def epoch_batches(x: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int, start_step: int = 0) -> tf.data.Dataset:
    """Batches of `order`, skipping the first `start_step` ones (already trained on before a resume)."""
    indices = tf.data.Dataset.from_tensor_slices(order[start_step * batch_size:]).batch(batch_size)
    return indices.map(lambda idx: (tf.gather(x, idx), tf.gather(y, idx)), num_parallel_calls=tf.data.AUTOTUNE).prefetch(2)


def eval_batches(x: np.ndarray, y: np.ndarray, batch_size: int) -> tf.data.Dataset:
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).prefetch(2)
