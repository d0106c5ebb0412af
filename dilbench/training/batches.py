"""Training batches over in-memory uint8 arrays, and the pieces an evaluation computes at a time.

The epoch's order is a pure function of (seed, epoch), so a run resumed mid-epoch sees exactly the
batches it would have seen. With augmentation, or several replicas to feed, batches come from a tf.data
pipeline: gathering and augmentation (imgaug, in Python) run in tf.data's parallel map, in order and
prefetched, off the training step; each batch's augmentation is seeded by (seed, epoch, batch index),
so thread scheduling cannot change it. Without either, `memory_batches` gathers each batch in the
training loop itself: a NumPy gather of a batch takes tens of microseconds, while the pipeline's
per-batch machinery (iterator, `numpy_function`, thread hand-offs) cost about 0.4-0.6 ms of CPU per
batch, taken from the step on a busy machine.

The pipeline runs with tf.data's autotuning off (`without_autotune`). With it on, destroying an
iterator can wait for the autotuning thread to wake from its timed sleep between optimisation rounds:
gdb showed the main thread in `RootDataset::Iterator::~Iterator` waiting for the thread sleeping in
`model::Model::OptimizeLoop`, and epochs stalled for 0-5 s (up to a third of a quickstart epoch)
after their last batch. Without autotuning, the parallel map runs min(16, cores) workers, the value
autotuning starts from, and a torn-down iterator stops at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from dilbench.augment.pipeline import BatchAugmenter, originals_per_batch


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The permutation of the n training examples used in `epoch` (0-based)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def steps_per_epoch(n: int, batch_size: int, mode: str = "none") -> int:
    """Batches in an epoch over n training images; paired batches hold batch_size/2 of them."""
    return math.ceil(n / originals_per_batch(mode, batch_size))


def epoch_batches(x: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int, start_step: int = 0,
                  augmenter: BatchAugmenter | None = None, epoch: int = 0) -> tf.data.Dataset:
    """Batches of `order`, skipping the first `start_step` ones (already trained on before a resume).

    With an `augmenter`, each batch of originals (batch_size, or batch_size/2 in paired mode) becomes
    the batch the augmenter makes of it for (epoch, batch index). Images are gathered in NumPy, not
    with tf.gather: that would embed the whole training set as a constant in the tf.data graph and
    cost seconds at every epoch's start (about 5 s for 20,000 CIFAR images). Drop an iterator you stop
    early (the Trainer does, in a `finally`): one kept alive to interpreter exit, e.g. by a traceback,
    can abort the exit while OpenCV (imgaug's affine) still runs in tf.data's threads.
    """
    per_batch = originals_per_batch(augmenter.mode, batch_size) if augmenter else batch_size
    indices = tf.data.Dataset.from_tensor_slices(order[start_step * per_batch:]).batch(per_batch).enumerate(start_step)

    def make_batch(step: np.int64, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return augmenter(x[idx], y[idx], epoch, int(step)) if augmenter else (x[idx], y[idx])

    def load(step: tf.Tensor, idx: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        images, labels = tf.numpy_function(make_batch, [step, idx], [tf.uint8, tf.int64], stateful=False)
        return tf.ensure_shape(images, [None, *x.shape[1:]]), tf.ensure_shape(labels, [None])

    return without_autotune(indices.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(2))


def memory_batches(x: np.ndarray, y: np.ndarray, order: np.ndarray, batch_size: int,
                   start_step: int = 0) -> Iterator[tuple[tf.Tensor, tf.Tensor]]:
    """The batches `epoch_batches` makes without an augmenter (the same images, labels and order), gathered
    in the caller's thread."""
    for start in range(start_step * batch_size, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield tf.constant(x[idx]), tf.constant(y[idx])


def eval_pieces(start: int, stop: int, piece: int) -> list[tuple[int, int]]:
    """[start, stop) of the pieces one evaluation batch [start, stop) is computed in: as few pieces of at most
    `piece` examples as it takes, of sizes that differ by at most one (so none is smaller than half of
    `piece` unless the whole batch is)."""
    count = -(-(stop - start) // piece)
    bounds = [start + (stop - start) * i // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def without_autotune(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`dataset` with tf.data's autotuning thread off, so its iterators shut down promptly (module docstring)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)
