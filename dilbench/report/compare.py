"""`dilbench compare`: from run directories to one table of runs or of groups (no TensorFlow).

Order of work: find and read runs -> keep those passing every --where -> (group) -> sort -> --top ->
build rows. Every column name (--columns, --where, --sort, --group-by) is checked against what the runs
offer before anything is computed, so a typo is an error, not an empty column.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dilbench.errors import UsageError
from dilbench.report import provenance
from dilbench.report.aggregate import (
    GroupCut,
    differing_config_keys,
    differing_in_groups,
    group_runs,
    group_value,
    status_counts,
    summarize,
)
from dilbench.report.columns import DEFAULT_COLUMNS, MEASURE, PARTS, Catalog, Column, is_number, parse_names
from dilbench.report.runs_index import (
    RunReader,
    RunRecord,
    Runs,
    load_runs,
    no_gc,
    problems_column,
    provenance_column,
    status_column,
)
from dilbench.report.select import parse_condition, parse_sort, sort_items

BUDGET_NOTE = ("{column}: test accuracy at {budget} training FLOPs (cumulative, from the schedule's cost model), "
               "interpolated linearly between the two epochs around it; '-' where a run's first epoch already "
               "cost more, or its last epoch less")
GROUP_NOTE = "cells: mean ± sample std (n-1) [min, max] over the group's runs that have a value; a single value is shown alone"


@dataclass
class Table:
    """Rows ready to render, and the runs behind each row (for plots and per-run warnings)."""

    columns: list[str]
    measures: set[str]  # columns of measured numbers: fixed decimals, Summary values when grouped
    rows: list[dict[str, Any]]
    members: list[list[RunRecord]]  # the run behind each row, or the runs of each group
    given_labels: list[str] | None = None  # see `labels`; None: worked out when first asked (only plots need them)
    grouped: bool = False
    notes: list[str] = field(default_factory=list)
    reader: RunReader | None = None  # what read the runs: files parsed, and the index to save

    @property
    def labels(self) -> list[str]:
        """Legend text per row: the config values that tell the rows apart."""
        if self.given_labels is None:
            self.given_labels = _run_labels([run for (run,) in self.members])
        return self.given_labels

    @labels.setter
    def labels(self, labels: list[str]) -> None:
        self.given_labels = labels

    @property
    def problems(self) -> list[tuple[Path, str]]:
        runs = [run for members in self.members for run in members]
        return [(run.path, problem) for run, problems in zip(runs, problems_column(runs)) for problem in problems]

    def save_index(self) -> None:
        """Keep what was read from files since (plots read epochs the table did not) in the index."""
        if self.reader is not None:
            self.reader.save()


def compare(
    arguments: list[str] | tuple[str, ...],
    columns: str | None = None,
    where: tuple[str, ...] = (),
    sort: str | None = None,
    top: int | None = None,
    diff: bool = False,
    group_by: str | None = None,
    at_flops: float | None = None,
) -> Table:
    """The comparison table of the runs the arguments name; the options are those of `dilbench compare`."""
    if diff and group_by:
        raise UsageError("--diff lists runs and --group-by lists groups; use one of them")
    runs = load_runs(arguments)
    with no_gc():
        table = _compare(runs, columns, where, sort, top, diff, group_by, at_flops)
        runs.reader.save()
    return table


def _compare(runs: Runs, columns: str | None, where: tuple[str, ...], sort: str | None, top: int | None, diff: bool,
             group_by: str | None, at_flops: float | None) -> Table:
    catalog = Catalog(runs)
    conditions = [parse_condition(text, catalog, runs) for text in where]  # each reads its column of every run
    shown = catalog.resolve_all(parse_names(columns, default=("run",) if diff else DEFAULT_COLUMNS))
    if at_flops is not None:  # accuracy at a compute budget, after the columns asked for
        shown.append(catalog.resolve(budget_column(at_flops)))
    keys = catalog.resolve_all(parse_names(group_by, default=(), option="--group-by")) if group_by else []
    sorts = [(catalog.resolve(name) if not (group_by and name == "n") else None, descending) for name, descending in parse_sort(sort)]

    keep = [all(holds) for holds in zip(*(map(c.holds, c.values) for c in conditions))] if conditions else [True] * len(runs)
    selected = runs if all(keep) else [run for run, kept in zip(runs, keep) if kept]
    for part in PARTS:  # what the table shows of them, and their problems
        runs.reader.plan(selected, part)
    items = group_runs(selected, keys) if group_by else [[run] for run in selected]
    order = [(_sort_value(column, bool(group_by), selected), descending) for column, descending in sorts]
    order += [(_key_value(key), False) for key in keys]  # groups: by key values after --sort
    items = sort_items(items, order)[:top]
    table = _group_table(items, keys, shown, selected) if group_by else _run_table(items, shown, catalog, diff)
    if at_flops is not None:
        table.notes.append(BUDGET_NOTE.format(column=budget_column(at_flops), budget=f"{at_flops:g}"))
    if not selected:
        table.notes.append(f"none of the {len(runs)} runs matches --where {' --where '.join(where)}")
    table.reader = runs.reader
    return table


def budget_column(flops: float) -> str:
    return f"at:flops={flops:g}:eval_acc"


def catalog_of(arguments: list[str] | tuple[str, ...]) -> Catalog:
    """What columns the runs the arguments name offer (for --list-columns)."""
    runs = load_runs(arguments)
    with no_gc():
        catalog = Catalog(runs)
        catalog.describe()  # reads every run's keys
        runs.reader.save()
    return catalog


def _sort_value(column: Column | None, grouped: bool, runs: list[RunRecord]) -> Callable[[list[RunRecord]], Any]:
    """Sort key of a row's runs: the run's value, or for a group its mean / shared value (`n`, None: its size)."""
    if column is None:
        return len
    if grouped:
        return lambda members: group_value(members, column)
    # one run a row: its value, as group_value would give it for a group of one (a measure that is no number: None)
    values = column.values(runs)
    if column.kind == MEASURE:
        values = [value if is_number(value) else None for value in values]
    by_run = {id(run): value for run, value in zip(runs, values)}
    return lambda members: by_run[id(members[0])]


def _key_value(key: Column) -> Callable[[list[RunRecord]], Any]:
    """group_value of one of the --group-by keys, from the group's first run: all its runs share the value."""
    if key.kind == MEASURE:  # as a Summary, so that a value that is no finite number sorts last
        return lambda members: summarize([key.value(members[0])])
    return lambda members: key.value(members[0])


def _run_table(items: list[list[RunRecord]], shown: list[Column], catalog: Catalog, diff: bool) -> Table:
    chosen = [run for (run,) in items]
    notes = []
    if diff:
        differing = differing_config_keys(chosen, exclude={c.name for c in shown})
        shown = shown + catalog.resolve_all(differing)
        if not differing:
            notes.append(f"all {len(chosen)} selected runs have the same config")
    names = [c.name for c in shown]
    rows = [dict(zip(names, values)) for values in zip(*(c.values(chosen) for c in shown))] if shown else [{} for _ in chosen]
    measures = {c.name for c in shown if c.kind == MEASURE}
    return Table([c.name for c in shown], measures, rows, items, notes=notes)


def _group_table(groups: list[list[RunRecord]], keys: list[Column], shown: list[Column], selected: list[RunRecord]) -> Table:
    key_names = [key.name for key in keys]
    measures = [c for c in shown if c.kind == MEASURE and c.name not in key_names]
    extra = ["n"] + (["status"] if "status" not in key_names else []) + ["varies"]
    rows, labels = [], []
    cut = GroupCut(groups, selected)  # each column read once for all groups
    values = {m.name: cut.split(m.values(cut.everyone)) for m in measures}
    statuses = cut.split(status_column(cut.everyone))
    for i, (runs, varies) in enumerate(zip(groups, differing_in_groups(cut))):
        row: dict[str, Any] = {key.name: key.value(runs[0]) for key in keys}
        row["n"] = len(runs)
        if "status" not in key_names:
            row["status"] = status_counts(statuses[i])
        row["varies"] = ", ".join(varies) or None
        row.update({name: summarize(per_group[i]) for name, per_group in values.items()})
        rows.append(row)
        labels.append(", ".join(f"{key.name}={_short(row[key.name])}" for key in keys) + f" (n={len(runs)})")
    columns = [*key_names, *extra, *(m.name for m in measures)]
    notes = [GROUP_NOTE] + [f"warning: group {label}: {problem}"
                            for label, summaries in zip(labels, cut.split(provenance_column(cut.everyone)))
                            for problem in provenance.mixed(summaries)]
    return Table(columns, {m.name for m in measures}, rows, groups, labels, grouped=True, notes=notes)


def _run_labels(runs: list[RunRecord]) -> list[str]:
    """`schedule.name=unfair_back, seed=1` from the config keys that differ; the run name where none do."""
    differing = differing_config_keys(runs)
    labels = [", ".join(f"{key}={_short(run.config_get(key))}" for key in differing) or run.dirname for run in runs]
    repeated = {label for label, count in Counter(labels).items() if count > 1}
    return [f"{label} ({run.dirname})" if label in repeated and differing else label for label, run in zip(labels, runs)]


def _short(value: Any) -> str:
    return "-" if value is None else str(value)
