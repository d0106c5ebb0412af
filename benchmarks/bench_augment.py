"""Training throughput of the 9-layer all-conv net with and without the published augmentation.

Issue 5 asks that augmentation never be the bottleneck: with the published pipeline (paired mode)
training must reach at least 0.9x the images/s of training without augmentation, at the same batch
size. Both feed the same compiled training step through the Trainer's own tf.data pipeline
(`epoch_batches`, a fresh epoch iterator per measurement), on synthetic uint8 CIFAR-sized images;
images/s counts the images the step trains on (a paired batch of B holds B/2 originals + B/2 copies).
Other processes share the machine, so methods alternate in many short rounds and the ratio is the
median over rounds of (augmented / none) measured back to back.

    python benchmarks/bench_augment.py                       # batch 10 and 64, bfloat16
    python benchmarks/bench_augment.py --batch-sizes 10 --rounds 30
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHAPE, CLASSES = (32, 32, 3), 10


def time_epoch(step, batches, steps: int) -> tuple[float, int]:
    """Seconds and images for `steps` training steps, from creating the iterator on (as the Trainer does)."""
    start = time.perf_counter()
    images = 0
    for x, y in batches.take(steps):
        float(step(x, y)[0])  # the loss, read back each step as the Trainer does
        images += int(y.shape[0])
    return time.perf_counter() - start, images


def augment_cost(augmenter, x: np.ndarray, y: np.ndarray, per_batch: int, repeats: int = 200) -> float:
    """Milliseconds of one batch's augmentation on the calling thread (what the workers take off the step)."""
    start = time.perf_counter()
    for i in range(repeats):
        augmenter(x[:per_batch], y[:per_batch], 0, i)
    return (time.perf_counter() - start) / repeats * 1e3


def bench(batch_size: int, rounds: int, precision: str, n: int) -> dict[str, list[float]]:
    from dilbench.augment.pipeline import BatchAugmenter, originals_per_batch
    from dilbench.config import load_config
    from dilbench.training.batches import epoch_batches, epoch_order
    from dilbench.training.step import TrainingStep

    config = load_config(REPO / "configs" / "allconv_standard_aug.yaml",
                         [f"precision={precision}", f"train.batch_size={batch_size}"])
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, *SHAPE), dtype=np.uint8)
    y = rng.integers(0, CLASSES, n).astype(np.int64)
    step = TrainingStep.build(config, SHAPE, CLASSES).train
    augmenters = {
        "none": None,
        "paired": BatchAugmenter(config.augmentation, SHAPE[-1], config.seed),
        "replace": BatchAugmenter(replace(config.augmentation, mode="replace"), SHAPE[-1], config.seed),
    }
    for name, augmenter in augmenters.items():
        if augmenter:
            per_batch = originals_per_batch(augmenter.mode, batch_size)
            print(f"  batch {batch_size}, {name}: augmenting one batch takes {augment_cost(augmenter, x, y, per_batch):.2f} ms")
    time_epoch(step, epoch_batches(x, y, epoch_order(0, 0, n), batch_size), 3)  # trace and warm up
    steps = max(8, 300 // batch_size)  # a few seconds per measurement
    rates: dict[str, list[float]] = {name: [] for name in augmenters}
    names = list(augmenters)
    for epoch in range(rounds):
        for name in names[epoch % 3:] + names[:epoch % 3]:  # rotate, so no method always runs first
            augmenter = augmenters[name]
            batches = epoch_batches(x, y, epoch_order(0, epoch, n), batch_size, augmenter=augmenter, epoch=epoch)
            seconds, images = time_epoch(step, batches, steps)
            rates[name].append(images / seconds)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="10,64", help="comma-separated batch sizes (even: paired mode)")
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds; medians are reported")
    parser.add_argument("--precision", default="bfloat16", choices=["float32", "bfloat16"])
    parser.add_argument("--images", type=int, default=20_000, help="synthetic training images")
    args = parser.parse_args()
    print(f"allconv9, {args.precision}, synthetic 32x32x3 uint8, {args.rounds} interleaved rounds of max(8, 300/batch) steps, "
          f"{os.cpu_count()} CPUs")
    rows = []
    for batch_size in map(int, args.batch_sizes.split(",")):
        rates = bench(batch_size, args.rounds, args.precision, args.images)
        for name, values in rates.items():
            ratios = [a / b for a, b in zip(values, rates["none"])]
            rows.append((batch_size, name, statistics.median(values), min(values), max(values), statistics.median(ratios),
                         min(ratios), max(ratios)))
    print(f"{'batch':>5}  {'augmentation':<13}{'img/s median':>12}{'min':>8}{'max':>8}   vs none: median of rounds [min, max]")
    for batch, name, median, low, high, ratio, ratio_low, ratio_high in rows:
        print(f"{batch:>5}  {name:<13}{median:>12.1f}{low:>8.1f}{high:>8.1f}   {ratio:.3f}x [{ratio_low:.2f}, {ratio_high:.2f}]")


if __name__ == "__main__":
    main()
