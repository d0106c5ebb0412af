"""Each batch's learning-rate factors and frozen groups, as a pure function of how far training is.

`t` is the fraction of the run's batches done before this one, (epoch * steps + step) / (epochs * steps),
so a resumed run gets exactly the factors it would have had. Without FreezeOut every group shares one
factor: 1, or 0.5 (1 + cos(pi t)) for `train.lr_schedule: cosine`. With FreezeOut each group has its own
(schedules/freezeout.py) and the lowest groups freeze in turn. `optimizer.group_lr` multiplies on top
of either, as a constant of the optimizer (training/optimizers.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dilbench.config import Config
from dilbench.schedules.freezeout import freeze_points, frozen_groups, lr_factor


@dataclass(frozen=True)
class BatchRates:
    scales: tuple[float, ...]  # each group's learning-rate factor for this batch
    frozen: int  # the lowest `frozen` groups are frozen


class Rates:
    def __init__(self, config: Config, num_groups: int):
        self.num_groups = num_groups
        self.cosine = config.train.lr_schedule == "cosine"
        self.freezeout = config.schedule.freezeout
        self.points = freeze_points(self.freezeout, num_groups) if self.freezeout else None

    @property
    def per_group(self) -> bool:
        """Whether groups need learning-rate factors of their own (else one shared factor)."""
        return self.points is not None

    def frozen(self, t: float) -> int:
        return frozen_groups(self.points, t) if self.points else 0

    def at(self, t: float) -> BatchRates:
        if self.points and self.freezeout is not None:
            return BatchRates(tuple(lr_factor(self.freezeout, point, t) for point in self.points), self.frozen(t))
        scale = 0.5 * (1.0 + math.cos(math.pi * t)) if self.cosine else 1.0
        return BatchRates((scale,) * self.num_groups, 0)
