"""FreezeOut (Brock, Lim, Ritchie & Weston 2017): progressively freeze layer groups, bottom first.

Group i (1-based) trains until t_i, a fraction of the run's batches; its learning rate follows a cosine
from its initial value at t = 0 to zero at t_i, after which the group is frozen: it leaves every
sub-step's update set and the backward pass, which saves its weight- and input-gradient work. As in the
paper's code, t_i = t0 + (1 - t0)(i - 1)/(L - 1) (linear) or that value cubed (cubic, so t0 is
"pre-cubed"), the top group's t_L is 1 (it is annealed over the whole run, never frozen), and
`scale_lr` starts group i at lr / t_i so that early-frozen groups travel about as far. Groups freeze in
order from the bottom, so the frozen ones are always the lowest `frozen` groups.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dilbench.schedules import FreezeOutConfig


def freeze_points(cfg: FreezeOutConfig, num_groups: int) -> list[float]:
    """t_i of every group, bottom to top, rising to exactly 1.0 for the top group."""
    if num_groups == 1:
        return [1.0]
    linear = [cfg.t0 + (1.0 - cfg.t0) * i / (num_groups - 1) for i in range(num_groups - 1)]
    return [t**3 if cfg.spacing == "cubic" else t for t in linear] + [1.0]


def frozen_groups(points: list[float], t: float) -> int:
    """How many groups (from the bottom) are frozen at training fraction t: those with t >= t_i."""
    return sum(1 for point in points if t >= point)


def lr_factor(cfg: FreezeOutConfig, point: float, t: float) -> float:
    """Group's learning-rate factor at training fraction t: cosine from 1 (or 1/t_i) to 0 at t_i."""
    if t >= point:
        return 0.0
    return 0.5 * (1.0 + math.cos(math.pi * t / point)) / (point if cfg.scale_lr else 1.0)
