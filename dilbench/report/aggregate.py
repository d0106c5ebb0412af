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
from collections import Counter
from collections.abc import Set
from dataclasses import dataclass
from typing import Any

from dilbench.report.columns import MEASURE, Column, is_number
from dilbench.report.packing import MISSING
from dilbench.report.runs_index import RunRecord, config_column, keys_column


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
    import statistics  # only groups need it

    std = statistics.stdev(numbers) if len(numbers) > 1 else None
    integral = all(isinstance(v, int) for v in present)
    return Summary(statistics.fmean(numbers), std, min(numbers), max(numbers), integral)


def canonical(value: Any) -> str:
    """A hashable, type-preserving identity for a config value (lists and dicts included)."""
    return json.dumps(value, sort_keys=True, default=str)


def canonical_key(value: Any) -> Any:
    """What `canonical` tells apart, as a cheaper hashable key: two values have equal keys exactly when their
    canonical JSON is equal (1, 1.0 and True differ; a date equals the text it prints as, a tuple the list)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return (bool, value)
    if isinstance(value, int):
        return (int, int.__repr__(value))
    if isinstance(value, float):
        return (float, float.__repr__(value))
    if value is None:
        return None
    text = canonical(value)
    decoded = json.loads(text)
    return decoded if isinstance(decoded, str) else (list, text)  # a date: the text it prints as


def group_runs(runs: list[RunRecord], keys: list[Column]) -> list[list[RunRecord]]:
    """Runs grouped by the values of the key columns, groups in order of first appearance."""
    groups: dict[tuple[Any, ...], list[RunRecord]] = {}
    columns = [list(map(canonical_key, key.values(runs))) for key in keys]
    for run, values in zip(runs, zip(*columns) if columns else [()] * len(runs)):
        groups.setdefault(values, []).append(run)
    return list(groups.values())


def differing_config_keys(runs: list[RunRecord], exclude: Set[str] = frozenset()) -> list[str]:
    """Config keys whose value (or presence) is not the same in all runs, in config-file order."""
    keys: dict[str, None] = {}
    for keys_of_run in {id(k): k for k in keys_column(runs, "config")}.values():
        keys.update(dict.fromkeys(keys_of_run))
    return [key for key in keys if key not in exclude and _differs(config_column(runs, key))]


def _differs(values: list[Any]) -> bool:
    """Whether the canonical forms of these values (MISSING: absent) are not all the same."""
    first = values[0]
    kind = type(first)
    if all(type(value) is kind for value in values):  # one exact type: cheaper forms that tell the same values apart
        if kind in (str, int, bool, type(None)):
            return values.count(first) != len(values)
        if kind is float:
            return len(set(map(float.__repr__, values))) > 1  # 0.0 and -0.0 differ, NaNs do not, as in JSON
        if kind is list and all(set(map(type, value)) <= _SCALARS for value in values):
            return len(set(map(repr, values))) > 1
    marks = {"<missing>" if value is MISSING else canonical(value) for value in values}
    return len(marks) > 1


_SCALARS = frozenset((str, int, float, bool, type(None)))


def status_counts(runs: list[RunRecord]) -> str:
    """`3 completed` or `2 completed, 1 failed`: incomplete runs in a group must not hide in a mean."""
    return ", ".join(f"{count} {status}" for status, count in sorted(Counter(run.status for run in runs).items()))


def group_value(runs: list[RunRecord], column: Column) -> Any:
    """A column's value for a group: a Summary for measures, else the value all its runs share (or None)."""
    if column.kind == MEASURE:
        return summarize([column.value(run) for run in runs])
    values = {canonical_key(value): value for value in column.values(runs)}
    return next(iter(values.values())) if len(values) == 1 else None
