"""`--group-by`: runs that share the values of some keys, summarised so differences can be judged
against seed noise.

A group is every selected run with the same values of the group-by columns (a missing key is its own
value); whatever else differs (normally only the seed) varies inside the group, and the `varies`
column names those config keys so an accidental second difference (say optimizer.lr) is visible.
Each measured column becomes a Summary: mean, sample standard deviation (n-1 in the
denominator; none for a single value), min and max over the group's runs that have a value.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from collections.abc import Set
from dataclasses import dataclass
from typing import Any

from dilbench.report.columns import MEASURE, Column, is_number
from dilbench.report.run_parts import MISSING
from dilbench.report.runs_index import RunRecord


@dataclass(frozen=True)
class Summary:
    """One measured column over a group's runs that have a value: mean ± std [min, max]."""

    mean: float
    std: float | None  # sample std (ddof=1); None when there is a single value
    min: float
    max: float
    integral: bool = False  # all values were integers (epochs, best_epoch): shown with fewer decimals


STAT_FIELDS = ("mean", "std", "min", "max")


def summarize(values: list[Any]) -> Summary | None:
    present = [v for v in values if is_number(v)]
    if not present:
        return None
    numbers = [float(v) for v in present]
    std = statistics.stdev(numbers) if len(numbers) > 1 else None
    integral = all(isinstance(v, int) for v in present)
    return Summary(statistics.fmean(numbers), std, min(numbers), max(numbers), integral)


def canonical(value: Any) -> str:
    """A hashable, type-preserving identity for a config value (lists and dicts included)."""
    return json.dumps(value, sort_keys=True, default=str)


def group_runs(runs: list[RunRecord], keys: list[Column]) -> list[list[RunRecord]]:
    """Runs grouped by the values of the key columns, groups in order of first appearance."""
    groups: dict[tuple[str, ...], list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(tuple(canonical(key.value(run)) for key in keys), []).append(run)
    return list(groups.values())


def differing_config_keys(runs: list[RunRecord], exclude: Set[str] = frozenset()) -> list[str]:
    """Config keys whose value (or presence) is not the same in all runs, in config-file order."""
    keys: dict[str, None] = {}
    for run in runs:
        keys.update(dict.fromkeys(run.config_keys()))
    return [key for key in keys if key not in exclude and _differs([run.config_get(key, MISSING) for run in runs])]


def _differs(values: list[Any]) -> bool:
    first = canonical(values[0]) if values[0] is not MISSING else "<missing>"
    return any((canonical(value) if value is not MISSING else "<missing>") != first for value in values[1:])


def status_counts(runs: list[RunRecord]) -> str:
    """`3 completed` or `2 completed, 1 failed`: incomplete runs in a group must not hide in a mean."""
    return ", ".join(f"{count} {status}" for status, count in sorted(Counter(run.status for run in runs).items()))


def group_value(runs: list[RunRecord], column: Column) -> Any:
    """A column's value for a group: a Summary for measures, else the value all its runs share (or None)."""
    if column.kind == MEASURE:
        return summarize([column.value(run) for run in runs])
    values = {canonical(column.value(run)): column.value(run) for run in runs}
    return next(iter(values.values())) if len(values) == 1 else None
