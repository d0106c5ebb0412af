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
import operator
from collections import Counter
from collections.abc import Set
from dataclasses import dataclass
from typing import Any

from dilbench.report.columns import MEASURE, Column, is_number
from dilbench.report.packing import MISSING
from dilbench.report.runs_index import RunRecord, config_column, keys_column, take


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
_INT_OR_NONE = frozenset((int, type(None)))
_TEXT_OR_NONE = frozenset((str, type(None)))  # values that are their own canonical_key


def summarize(values: list[Any]) -> Summary | None:
    kinds = set(map(type, values))
    if kinds <= _FLOAT_OR_NONE:  # a measured column: no per-value type test
        numbers = list(filter(math.isfinite, values if type(None) not in kinds else [v for v in values if v is not None]))
        integral = False
    else:
        if kinds <= _INT_OR_NONE:  # epochs, best_epoch: ints are finite, and bools are no ints here
            present = values if type(None) not in kinds else [v for v in values if v is not None]
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
        squares = math.fsum(map(operator.mul, deviations, deviations)) - math.fsum(deviations) ** 2 / count
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
    columns = [_canonical_keys(key.values(runs)) for key in keys]
    for run, values in zip(runs, zip(*columns) if columns else [()] * len(runs)):
        groups.setdefault(values, []).append(run)
    return list(groups.values())


def _canonical_keys(values: list[Any]) -> list[Any]:
    """canonical_key of each value; texts (the usual group keys: schedule, model) are their own."""
    return values if set(map(type, values)) <= _TEXT_OR_NONE else list(map(canonical_key, values))


class GroupCut:
    """The runs of several groups as one list, so that a column is read once for all of them (a --group-by of
    100,000 runs asks for every config key of every group) and then cut back into one list per group. Given the
    runs the groups were made of, and every one of them in a group, that list is those runs in their own order:
    the reader has planned its columns for that order already (runs_index.RunReader.plan)."""

    def __init__(self, groups: list[list[RunRecord]], runs: list[RunRecord] | None = None):
        self.count = len(groups)
        self._rows: list[list[int]] | None = None
        if runs is not None and len(runs) == sum(map(len, groups)) and self.count > 1:
            at = {id(run): i for i, run in enumerate(runs)}
            self.everyone = runs
            self._rows = [[at[id(run)] for run in members] for members in groups]
        else:
            self.everyone = [run for members in groups for run in members]
            self._ends = list(itertools.accumulate(map(len, groups), initial=0))

    def split(self, values: list[Any]) -> list[list[Any]]:
        """Values of `everyone`, in its order, as one list per group."""
        if self._rows is not None:
            return [take(values, rows) for rows in self._rows]
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
        column = config_column(cut.everyone, key)
        if not _differs(column):  # the same in every run: in every group
            continue
        for differing, values in zip(found, cut.split(column)):
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
        if kind is float:  # 0.0 and -0.0 differ, NaNs do not, as in JSON; equal floats but zeros print alike
            if first != 0.0 and values.count(first) == len(values):
                return False
            return len(set(map(float.__repr__, values))) > 1
        if kind is list:  # one repr: one canonical form (dicts inside print in their order, so several may not)
            shown = len(set(map(repr, values)))
            if shown == 1 or all(set(map(type, value)) <= _SCALARS for value in values):
                return shown > 1
    marks = {"<missing>" if value is MISSING else canonical(value) for value in values}
    return len(marks) > 1


_SCALARS = frozenset((str, int, float, bool, type(None)))


def status_counts(statuses: list[str]) -> str:
    """`3 completed` or `2 completed, 1 failed` of a group's statuses: incomplete runs must not hide in a mean."""
    return ", ".join(f"{count} {status}" for status, count in sorted(Counter(statuses).items()))


def group_value(runs: list[RunRecord], column: Column) -> Any:
    """A column's value for a group: a Summary for measures, else the value all its runs share (or None)."""
    if column.kind == MEASURE:
        return summarize(column.values(runs))
    found = column.values(runs)
    values = dict(zip(_canonical_keys(found), found))
    return next(iter(values.values())) if len(values) == 1 else None
