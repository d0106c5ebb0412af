"""A run's epochs on a compute axis, and a metric at a given budget (no TensorFlow).

Runs of different schedules cost different amounts per epoch, so comparing them at equal epochs is
not comparing them at equal compute. Each epoch record carries the cumulative training FLOPs of the
cost model (`train_flops`) and the epoch's training seconds (`train_seconds`, or `seconds` in runs
written before it existed), so an epoch sits at x = its number, its cumulative FLOPs, or its
cumulative training seconds. A metric at a budget is interpolated linearly between the two epochs
around it: there is no value before a run's first epoch or beyond its last.
"""

from __future__ import annotations

import math
from typing import Any

from dilbench.report.packing import MISSING
from dilbench.report.runs_index import RunRecord

AXES = ("epoch", "flops", "seconds")
AXIS_LABELS = {"epoch": "epoch", "flops": "training FLOPs (cost model, cumulative)",
               "seconds": "training seconds (cumulative)"}


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if ok else None


def axis_values(run: RunRecord, axis: str) -> list[float | None]:
    """Each epoch record's position on `axis` (None where the run did not record it)."""
    if axis == "epoch":
        return [_number(i + 1 if epoch is MISSING else epoch) for i, epoch in enumerate(run.series("epoch"))]
    if axis == "flops":
        return [_number(None if flops is MISSING else flops) for flops in run.series("train_flops")]
    if axis == "seconds":
        positions: list[float | None] = []
        total: float | None = 0.0
        for train, both in zip(run.series("train_seconds"), run.series("seconds")):
            seconds = _number(both if train is MISSING else train)  # runs before train_seconds: `seconds`
            total = total + seconds if seconds is not None and total is not None else None
            positions.append(total)
        return positions
    raise ValueError(f"unknown axis {axis!r}; axes: {', '.join(AXES)}")


def series(run: RunRecord, axis: str, key: str) -> list[tuple[float, float]]:
    """(x, value) of every epoch with both a position on `axis` and a number under `key`."""
    return [(x, y) for x, value in zip(axis_values(run, axis), run.series(key))
            if x is not None and (y := _number(value)) is not None]


def value_at(run: RunRecord, axis: str, budget: float, key: str = "eval_acc") -> float | None:
    """`key` at x = budget, interpolated linearly between the epochs around it; None outside the run."""
    points = series(run, axis, key)
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if x0 <= budget <= x1:  # at an epoch, its own value exactly (y0 + (y1 - y0) x 1.0 may differ from y1 in the last bit)
            return y1 if budget == x1 else y0 if budget == x0 else y0 + (y1 - y0) * (budget - x0) / (x1 - x0)
    if len(points) == 1 and points[0][0] == budget:
        return points[0][1]
    return None


def best_until(run: RunRecord, axis: str, budget: float, key: str = "eval_acc") -> float | None:
    """The highest `key` reached by x = budget: the epochs before it and the interpolated value at it."""
    at = value_at(run, axis, budget, key)
    if at is None:
        return None
    return max([y for x, y in series(run, axis, key) if x <= budget] + [at])
