"""How long dropping an epoch's tf.data iterator takes, with tf.data autotuning on (before issue 14) and off.

    python benchmarks/bench_teardown.py [--epochs 6] [--images 3000]

The Trainer's own pipeline (`epoch_batches`) and training step (the quickstart config), on random
MNIST-shaped images; epochs alternate between autotuning on and off in one process. Prints each epoch's
batch time and the time `iterator = None` took, then per setting the mean, the largest and how many
epochs stalled (teardown over 0.1 s): the stall comes and goes with where the autotuning thread is.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import tensorflow as tf

from dilbench.config import load_config
from dilbench.training.batches import epoch_batches, epoch_order
from dilbench.training.step import TrainingStep


def with_autotune(dataset: tf.data.Dataset, enabled: bool) -> tf.data.Dataset:
    options = tf.data.Options()
    options.autotune.enabled = enabled
    return dataset.with_options(options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs per setting")
    parser.add_argument("--images", type=int, default=3000)
    args = parser.parse_args()
    config = load_config("configs/quickstart.yaml")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.images, 28, 28, 1), dtype=np.uint8)
    y = rng.integers(0, 10, args.images).astype(np.int64)
    step = TrainingStep.build(config, x.shape[1:], 10)
    teardown: dict[bool, list[float]] = {True: [], False: []}
    for epoch in range(2 * args.epochs):
        autotune = epoch % 2 == 0
        batches = with_autotune(epoch_batches(x, y, epoch_order(0, epoch, len(x)), config.train.batch_size), autotune)
        start = time.perf_counter()
        iterator = iter(batches)
        for images, labels in iterator:
            float(step.train(images, labels)[0])
        trained = time.perf_counter()
        iterator = None
        dropped = time.perf_counter()
        teardown[autotune].append(dropped - trained)
        print(f"epoch {epoch + 1:2d} autotune {'on ' if autotune else 'off'}: batches {trained - start:5.2f} s, "
              f"iterator = None {dropped - trained:5.2f} s", flush=True)
    for autotune, seconds in teardown.items():
        stalled = sum(s > 0.1 for s in seconds)
        print(f"autotune {'on ' if autotune else 'off'}: teardown mean {statistics.mean(seconds):.2f} s, "
              f"max {max(seconds):.2f} s; {stalled} of {len(seconds)} epochs stalled")


if __name__ == "__main__":
    main()
