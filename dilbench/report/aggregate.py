"""`--group-by`: runs that share the values of some keys, summarised so differences can be judged
against seed noise.

A group is every selected run with the same values of the group-by columns (a missing key is its own
value); whatever else differs (normally only the seed) varies inside the group, and the `varies`
column names those config keys so an accidental second difference (say optimizer.lr) is visible.
Each measured column becomes a Summary: mean, sample standard deviation (n-1 in the
denominator; none for a single value), min and max over the group's runs that have a value.
"""

from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from collections.abc import Set
from dataclasses import dataclass
from typing import Any

from dilbench.report.columns import MEASURE, Column, is_number
from dilbench.report.packing import MISSING
from dilbench.report.runs_index import RunRecord, config_column, keys_column, status_column


@dataclass(frozen=True)
class Summary:
    """One measured column over a group's runs that have a value: mean ± std [min, max]."""

    mean: float
    std: float | None  # sample std (ddof=1); None when there is a single value
    min: float
    max: float
    integral: bool = False  # all values were integers (epochs, best_epoch): shown with fewer decimals


STAT_FIELDS = ("mean", "std", "min", "max")
_FLOAT_OR_NONE = frozenset((float, type(None)))


def summarize(values: list[Any]) -> Summary | None:
    kinds = set(map(type, values))
    if kinds <= _FLOAT_OR_NONE:  # a measured column: no per-value type test
        numbers = list(filter(math.isfinite, values if type(None) not in kinds else [v for v in values if v is not None]))
        integral = False
    else:
        present = [v for v in values if is_number(v)]
        numbers = [float(v) for v in present]
        integral = all(isinstance(v, int) for v in present)
    if not numbers:
        return None
    count = len(numbers)
    mean = math.fsum(numbers) / count
    std = None
    if count > 1:  # two passes with exact sums: within an ulp or two of statistics.stdev, at a twentieth of its cost
        deviations = [v - mean for v in numbers]
        squares = math.fsum(d * d for d in deviations) - math.fsum(deviations) ** 2 / count
        std = math.sqrt(max(squares, 0.0) / (count - 1))
    return Summary(mean, std, min(numbers), max(numbers), integral)


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


class GroupCut:
    """The runs of several groups as one list, so that a column is read once for all of them (a --group-by of
    100,000 runs asks for every config key of every group) and then cut back into one list per group."""

    def __init__(self, groups: list[list[RunRecord]]):
        self.everyone = [run for runs in groups for run in runs]
        self._ends = list(itertools.accumulate(map(len, groups), initial=0))
        self.count = len(groups)

    def split(self, values: list[Any]) -> list[list[Any]]:
        """Values of `everyone`, in its order, as one list per group."""
        return [values[start:end] for start, end in zip(self._ends, self._ends[1:])]


def differing_config_keys(runs: list[RunRecord], exclude: Set[str] = frozenset()) -> list[str]:
    """Config keys whose value (or presence) is not the same in all runs, in config-file order."""
    return differing_in_groups(GroupCut([runs]), exclude)[0]


def differing_in_groups(cut: GroupCut, exclude: Set[str] = frozenset()) -> list[list[str]]:
    """differing_config_keys of each group of `cut`, each key's column read once for all groups."""
    keys: dict[str, None] = {}
    for keys_of_run in {id(k): k for k in keys_column(cut.everyone, "config")}.values():
        keys.update(dict.fromkeys(keys_of_run))
    found: list[list[str]] = [[] for _ in range(cut.count)]
    for key in keys:
        if key in exclude:
            continue
        for differing, values in zip(found, cut.split(config_column(cut.everyone, key))):
            if values and _differs(values):
                differing.append(key)
    return found


def _differs(values: list[Any]) -> bool:
    """Whether the canonical forms of these values (MISSING: absent) are not all the same."""
    first = values[0]
    kind = type(first)
    if len(set(map(type, values))) == 1:  # one exact type: cheaper forms that tell the same values apart
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
    return ", ".join(f"{count} {status}" for status, count in sorted(Counter(status_column(runs)).items()))


def group_value(runs: list[RunRecord], column: Column) -> Any:
    """A column's value for a group: a Summary for measures, else the value all its runs share (or None)."""
    if column.kind == MEASURE:
        return summarize([column.value(run) for run in runs])
    values = {canonical_key(value): value for value in column.values(runs)}
    return next(iter(values.values())) if len(values) == 1 else None
