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
from dilbench.report.aggregate import differing_config_keys, group_runs, group_value, status_counts, summarize
from dilbench.report.columns import DEFAULT_COLUMNS, MEASURE, Catalog, Column, parse_names
from dilbench.report.runs_index import RunRecord, find_runs, read_runs
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
    labels: list[str]  # legend text per row: the config values that tell the rows apart
    grouped: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[tuple[Path, str]]:
        return [(run.path, problem) for runs in self.members for run in runs for problem in run.problems]


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
    runs = read_runs(find_runs(arguments))
    catalog = Catalog(runs)
    conditions = [parse_condition(text, catalog, runs) for text in where]
    shown = catalog.resolve_all(parse_names(columns, default=("run",) if diff else DEFAULT_COLUMNS))
    if at_flops is not None:  # accuracy at a compute budget, after the columns asked for
        shown.append(catalog.resolve(budget_column(at_flops)))
    keys = catalog.resolve_all(parse_names(group_by, default=(), option="--group-by")) if group_by else []
    order = [(_sort_value(name, catalog, bool(group_by)), descending) for name, descending in parse_sort(sort)]
    order += [(_sort_value(key.name, catalog, True), False) for key in keys]  # groups: by key values after --sort

    selected = [run for run in runs if all(c.holds(c.column.value(run)) for c in conditions)]
    items = group_runs(selected, keys) if group_by else [[run] for run in selected]
    items = sort_items(items, order)[:top]
    table = _group_table(items, keys, shown) if group_by else _run_table(items, shown, catalog, diff)
    if at_flops is not None:
        table.notes.append(BUDGET_NOTE.format(column=budget_column(at_flops), budget=f"{at_flops:g}"))
    if not selected:
        table.notes.append(f"none of the {len(runs)} runs matches --where {' --where '.join(where)}")
    return table


def budget_column(flops: float) -> str:
    return f"at:flops={flops:g}:eval_acc"


def catalog_of(arguments: list[str] | tuple[str, ...]) -> Catalog:
    """What columns the runs the arguments name offer (for --list-columns)."""
    return Catalog(read_runs(find_runs(arguments)))


def _sort_value(name: str, catalog: Catalog, grouped: bool) -> Callable[[list[RunRecord]], Any]:
    """Sort key of a row's runs: the run's value, or for a group its mean / shared value (`n`: its size)."""
    if grouped and name == "n":
        return len
    column = catalog.resolve(name)
    return lambda members: group_value(members, column)


def _run_table(items: list[list[RunRecord]], shown: list[Column], catalog: Catalog, diff: bool) -> Table:
    chosen = [run for (run,) in items]
    notes = []
    if diff:
        differing = differing_config_keys(chosen, exclude={c.name for c in shown})
        shown = shown + catalog.resolve_all(differing)
        if not differing:
            notes.append(f"all {len(chosen)} selected runs have the same config")
    rows = [{c.name: c.value(run) for c in shown} for run in chosen]
    measures = {c.name for c in shown if c.kind == MEASURE}
    return Table([c.name for c in shown], measures, rows, items, _run_labels(chosen), notes=notes)


def _group_table(groups: list[list[RunRecord]], keys: list[Column], shown: list[Column]) -> Table:
    key_names = [key.name for key in keys]
    measures = [c for c in shown if c.kind == MEASURE and c.name not in key_names]
    extra = ["n"] + (["status"] if "status" not in key_names else []) + ["varies"]
    rows, labels = [], []
    for runs in groups:
        row: dict[str, Any] = {key.name: key.value(runs[0]) for key in keys}
        row["n"] = len(runs)
        if "status" not in key_names:
            row["status"] = status_counts(runs)
        row["varies"] = ", ".join(differing_config_keys(runs)) or None
        row.update({m.name: summarize([m.value(run) for run in runs]) for m in measures})
        rows.append(row)
        labels.append(", ".join(f"{key.name}={_short(row[key.name])}" for key in keys) + f" (n={len(runs)})")
    columns = [*key_names, *extra, *(m.name for m in measures)]
    notes = [GROUP_NOTE] + [f"warning: group {label}: {problem}" for label, runs in zip(labels, groups)
                            for problem in provenance.mixed([run.meta for run in runs])]
    return Table(columns, {m.name for m in measures}, rows, groups, labels, grouped=True, notes=notes)


def _run_labels(runs: list[RunRecord]) -> list[str]:
    """`schedule.name=unfair_back, seed=1` from the config keys that differ; the run name where none do."""
    differing = differing_config_keys(runs)
    labels = [", ".join(f"{key}={_short(run.config.get(key))}" for key in differing) or run.path.name for run in runs]
    repeated = {label for label, count in Counter(labels).items() if count > 1}
    return [f"{label} ({run.path.name})" if label in repeated and differing else label for label, run in zip(labels, runs)]


def _short(value: Any) -> str:
    return "-" if value is None else str(value)
