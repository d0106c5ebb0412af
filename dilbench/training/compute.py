"""Training compute of a run from the schedule's cost model: FLOPs per epoch and cumulative.

A pure function of the config and the epoch (batch sizes and, under FreezeOut, the frozen groups at
each batch are), so a run resumed mid-epoch reports the same numbers as an uninterrupted one, and
nothing needs saving in checkpoints.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from dilbench.augment.pipeline import originals_per_batch


def epoch_images(n: int, batch_size: int, mode: str = "none") -> list[int]:
    """Images the training step sees at each batch of an epoch over n training images (paired mode: the
    originals and their augmented copies)."""
    per = originals_per_batch(mode, batch_size)
    copies = 2 if mode == "paired" else 1
    return [copies * min(per, n - start) for start in range(0, n, per)]


def training_flops(images: list[int], epochs: int, through: int, cost_at: Callable[[int], float],
                   frozen_at: Callable[[float], int]) -> float:
    """FLOPs of epochs 1..`through` of an `epochs`-epoch run: the batch's cost per example (`cost_at`
    of the frozen groups at its training fraction) times its images, summed."""
    steps = len(images)
    total = steps * epochs
    per_level: dict[int, float] = {}
    for epoch in range(through):
        for step, count in enumerate(images):
            level = frozen_at((epoch * steps + step) / total)
            per_level[level] = per_level.get(level, 0.0) + count
    return math.fsum(cost_at(level) * count for level, count in per_level.items())
