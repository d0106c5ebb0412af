"""Column names of `dilbench compare` and how each value is computed from a run record.

A column is one of:
  * a built-in (`name`, `status`, `final_eval_acc`, `gap`, ... see BUILTINS),
  * a metric qualifier over a metrics.jsonl key: `last:`, `max:`, `min:`, `mean:`, `epoch_of:max:`,
    `epoch_of:min:` (e.g. `max:eval_acc`, `epoch_of:min:eval_loss`),
  * any dotted key of config.yaml (`optimizer.lr`, `model.channels`),
  * any dotted key of meta.json under `meta.` (`meta.host`, `meta.git.commit`),
  * a metric at a compute budget, `at:AXIS=BUDGET:KEY` (`at:flops=1e12:eval_acc`, `at:seconds=600:eval_acc`,
    `at:epoch=1.5:eval_loss`): interpolated linearly between the epochs around it (report/budget.py).
A name none of the selected runs has is an error listing close matches, never a silently empty column;
a key only some runs have (an older schema) is simply empty for the others.
"""

from __future__ import annotations

import difflib
import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from dilbench.errors import UsageError
from dilbench.report.budget import AXES, value_at
from dilbench.report.packing import MISSING
from dilbench.report.run_parts import QUALIFIERS, SOURCES, SUMMED, is_number, numeric_of
from dilbench.report.runs_index import (
    RunRecord,
    config_column,
    keys_column,
    meta_column,
    part_column,
    reduced_column,
    status_column,
)
from dilbench.tables import text_table

MEASURE = "measure"  # a number measured by the run: aggregated by --group-by, shown with fixed decimals
SETTING = "setting"  # what the run was (config, meta, identity): a group key or left out of groups

DEFAULT_COLUMNS = (  # `run` first: runs of one name and seed are otherwise identical rows
    "run", "name", "status", "model", "schedule", "augmentation", "seed", "epochs", "final_eval_acc", "best_eval_acc",
    "best_epoch", "final_train_acc", "gap", "wall_time", "images_per_s",
)


PARTS = tuple(SOURCES)  # what a column may read, unless it says


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # MEASURE or SETTING
    value: Callable[[RunRecord], Any]
    parts: tuple[str, ...] = PARTS  # the files (run_parts.SOURCES) its values come from
    bulk: Callable[[list[RunRecord]], list[Any]] | None = None  # `value` of many runs at once, faster
    separator: str | None = None  # a list in one text (tags): --where KEY=V keeps runs whose list holds V

    def values(self, runs: list[RunRecord]) -> list[Any]:
        """The column for many runs, their files read first (in parallel when many are not in the index)."""
        for part in self.parts if runs else ():
            runs[0].reader.plan(runs, part)
        return self.bulk(runs) if self.bulk is not None else [self.value(run) for run in runs]


def _reduced(name: str) -> Callable[[RunRecord], Any]:
    return lambda run: run.reduced(name)


def _setting(config_key: str, meta_key: str | None = None) -> Callable[[RunRecord], Any]:
    """A config value, falling back to meta.json for runs whose config.yaml is missing or corrupt."""
    def value(run: RunRecord) -> Any:
        found = run.config_get(config_key, MISSING)
        if found is not MISSING:
            return found
        return run.meta.get(meta_key) if meta_key else None

    return value


def _settings(config_key: str, meta_key: str | None = None) -> Callable[[list[RunRecord]], list[Any]]:
    def values(runs: list[RunRecord]) -> list[Any]:
        found = config_column(runs, config_key)
        if not found.count(MISSING):
            return found
        return [value if value is not MISSING else run.meta.get(meta_key) if meta_key else None for run, value in zip(runs, found)]

    return values


def _gap(run: RunRecord) -> float | None:
    train, test = run.reduced("last:train_acc"), run.reduced("last:eval_acc")
    return train - test if is_number(train) and is_number(test) else None


def _gaps(runs: list[RunRecord]) -> list[float | None]:
    pairs = zip(reduced_column(runs, "last:train_acc"), reduced_column(runs, "last:eval_acc"))
    finite = math.isfinite
    return [train - test if (train.__class__ is float is test.__class__ and finite(train) and finite(test))
            or (is_number(train) and is_number(test)) else None for train, test in pairs]


def _peak_mib(key: str) -> Callable[[RunRecord], float | None]:
    """The largest value of a bytes key over the run's epochs, in MiB (None for runs from before it was recorded)."""
    def peak(run: RunRecord) -> float | None:
        value = run.reduced(f"max:{key}")
        return value / 2**20 if is_number(value) else None

    return peak


def _peaks_mib(key: str) -> Callable[[list[RunRecord]], list[float | None]]:
    def peaks(runs: list[RunRecord]) -> list[float | None]:
        return [value / 2**20 if is_number(value) else None for value in reduced_column(runs, f"max:{key}")]

    return peaks


def _tags_text(run: RunRecord) -> str | None:
    return ",".join(run.tags) or None


def _tags_texts(runs: list[RunRecord]) -> list[str | None]:
    return [",".join(tags) or None if isinstance(tags, list) else None
            for tags in part_column(runs, "tags", "tags:tags", lambda part: part.get("tags"))]


def _note_line(text: Any) -> str | None:
    return " / ".join(text.splitlines()) if isinstance(text, str) and text else None


def _note_lines(runs: list[RunRecord]) -> list[str | None]:
    return [_note_line(text) for text in part_column(runs, "note", "note:text", lambda part: part.get("text"))]


# name -> (kind, value, help): the help text is what `--help`, --list-columns and errors show.
BUILTINS: dict[str, tuple[str, Callable[[RunRecord], Any], str]] = {
    "run": (SETTING, lambda run: run.dirname, "run directory name"),
    "path": (SETTING, lambda run: str(run.path), "run directory path as found"),
    "name": (SETTING, _setting("name", "name"), "config name"),
    "status": (SETTING, lambda run: run.status,
               "running|completed|pruned|failed|interrupted|crashed|stale, unknown (no meta.json), corrupt"),
    "model": (SETTING, _setting("model.name"), "model.name"),
    "schedule": (SETTING, _setting("schedule.name"), "schedule.name"),
    "augmentation": (SETTING, _setting("augmentation.mode"), "augmentation.mode"),
    "seed": (SETTING, _setting("seed", "seed"), "seed"),
    "epochs": (MEASURE, _reduced("epochs"), "epochs done (records in metrics.jsonl)"),
    "final_eval_acc": (MEASURE, _reduced("last:eval_acc"), "= last:eval_acc"),
    "best_eval_acc": (MEASURE, _reduced("max:eval_acc"), "= max:eval_acc"),
    "best_epoch": (MEASURE, _reduced("epoch_of:max:eval_acc"), "= epoch_of:max:eval_acc"),
    "final_train_acc": (MEASURE, _reduced("last:train_acc"), "= last:train_acc"),
    "gap": (MEASURE, _gap, "last:train_acc - last:eval_acc (positive: overfitting)"),
    "wall_time": (MEASURE, _reduced(f"{SUMMED}:seconds"), "seconds of training and evaluation, summed over epochs (survives resumes; "
                  "runs before train_seconds existed: training only)"),
    "train_time": (MEASURE, _reduced("train_time"), "seconds of training batches, summed over epochs"),
    "eval_time": (MEASURE, _reduced(f"{SUMMED}:eval_seconds"), "seconds of evaluation, summed over epochs (empty for older runs)"),
    "images_per_s": (MEASURE, _reduced("images_per_s"), "training images per second of training time, over all epochs"),
    "train_flops": (MEASURE, _reduced("last:train_flops"),
                    "= last:train_flops, the run's training FLOPs so far (the schedule's cost model)"),
    "peak_rss_mib": (MEASURE, _peak_mib("peak_rss_bytes"), "peak resident memory of the run's processes, MiB (max over epochs)"),
    "cpu_util": (MEASURE, _reduced("mean:cpu_util"),
                 "CPU time / wall time / usable CPUs, mean over epochs (1.0: every CPU busy)"),
    "gpu_peak_mib": (MEASURE, _peak_mib("gpu_peak_bytes"), "peak GPU memory TensorFlow allocated, MiB (max over epochs; GPU runs)"),
    "data_sha256": (SETTING, lambda run: "+".join(run.provenance[0]) or None,
                    "SHA-256 of the data files read (first 12 hex digits; a+b: a resume read other data)"),
    "dirty": (SETTING, lambda run: run.provenance[2], "ran from uncommitted changes (true: see its source.patch)"),
    "tags": (SETTING, _tags_text, "the run's tags (dilbench tag); --where tags=X keeps runs tagged X"),
    "tag": (SETTING, _tags_text, "= tags (reads better in --where tag=baseline)"),
    "note": (SETTING, lambda run: _note_line(run.note), "the run's note (dilbench note)"),
    "problems": (SETTING, lambda run: "; ".join(run.problems) or None, "missing or corrupt files of the run"),
}
LISTS = {"tags": ",", "tag": ","}  # columns holding a list as text: --where tests membership


BUILTIN_PARTS: dict[str, tuple[str, ...]] = {  # the files each built-in reads (the others: metrics.jsonl's reductions)
    "run": (), "path": (), "name": ("config", "meta"), "status": ("meta",), "model": ("config",), "schedule": ("config",),
    "augmentation": ("config",), "seed": ("config", "meta"), "problems": PARTS,
    "data_sha256": ("meta",), "dirty": ("meta",), "tags": ("tags",), "tag": ("tags",), "note": ("note",),
}
BUILTIN_BULK: dict[str, Callable[[list[RunRecord]], list[Any]]] = {
    "run": lambda runs: [run.dirname for run in runs], "name": _settings("name", "name"), "status": status_column,
    "model": _settings("model.name"), "schedule": _settings("schedule.name"), "augmentation": _settings("augmentation.mode"),
    "seed": _settings("seed", "seed"), "gap": _gaps,
    **{name: functools.partial(reduced_column, name=reduction) for name, reduction in (
        ("epochs", "epochs"), ("final_eval_acc", "last:eval_acc"), ("best_eval_acc", "max:eval_acc"),
        ("best_epoch", "epoch_of:max:eval_acc"), ("final_train_acc", "last:train_acc"), ("wall_time", f"{SUMMED}:seconds"),
        ("train_time", "train_time"), ("eval_time", f"{SUMMED}:eval_seconds"), ("images_per_s", "images_per_s"),
        ("train_flops", "last:train_flops"), ("cpu_util", "mean:cpu_util"))},
    "peak_rss_mib": _peaks_mib("peak_rss_bytes"), "gpu_peak_mib": _peaks_mib("gpu_peak_bytes"),
    "tags": _tags_texts, "tag": _tags_texts, "note": _note_lines,
}


def builtin(name: str) -> Column:
    kind, value, _ = BUILTINS[name]
    return Column(name, kind, value, BUILTIN_PARTS.get(name, ("metrics",)), BUILTIN_BULK.get(name), LISTS.get(name))


class Catalog:
    """The column names the selected runs offer; resolves names and explains unknown ones."""

    def __init__(self, runs: list[RunRecord]):
        self.runs = runs

    @functools.cached_property
    def config_keys(self) -> list[str]:
        return sorted(_union(keys_column(self.runs, "config")))

    @functools.cached_property
    def meta_keys(self) -> list[str]:
        return sorted(f"meta.{key}" for key in _union(keys_column(self.runs, "meta")))

    @functools.cached_property
    def metric_keys(self) -> list[str]:
        return sorted(_union(keys_column(self.runs, "metrics", series=True)))

    @functools.cached_property
    def numeric_keys(self) -> list[str]:
        reduced = {id(keys): keys for keys in keys_column(self.runs, "metrics")}  # each layout of reductions once
        return sorted(_union(numeric_of(keys) for keys in reduced.values()))

    def names(self) -> list[str]:
        qualified_names = [f"last:{k}" for k in self.metric_keys] + [
            f"{q}:{k}" for q in QUALIFIERS if q != "last" for k in self.numeric_keys
        ]
        return [*BUILTINS, *qualified_names, *self.config_keys, *self.meta_keys]

    def resolve(self, name: str) -> Column:
        name = name.strip()
        if name in BUILTINS:
            return builtin(name)
        for qualifier in sorted(QUALIFIERS, key=len, reverse=True):
            if name.startswith(f"{qualifier}:"):
                key = name[len(qualifier) + 1:]
                if key in (self.metric_keys if qualifier == "last" else self.numeric_keys):
                    kind = MEASURE if key in self.numeric_keys else SETTING  # last:eval_split is not averaged
                    return Column(name, kind, _reduced(name), ("metrics",), functools.partial(reduced_column, name=name))
                break
        if name.startswith("at:"):
            return self._at_budget(name)
        if name in self.config_keys:
            return Column(name, SETTING, lambda run: run.config_get(name), ("config",),
                          lambda runs: [None if v is MISSING else v for v in config_column(runs, name)])
        if name in self.meta_keys:
            key = name[len("meta."):]
            return Column(name, SETTING, lambda run: run.meta_value(key), ("meta",),
                          lambda runs: [None if v is MISSING else v for v in meta_column(runs, key)])
        raise UsageError(self.unknown(name))

    def _at_budget(self, name: str) -> Column:
        """`at:AXIS=BUDGET:KEY`: a numeric metrics key at a budget on the epoch, flops or seconds axis."""
        axis, _, rest = name[len("at:"):].partition("=")
        budget, _, key = rest.partition(":")
        try:
            value = float(budget)
        except ValueError:
            value = math.nan
        if axis not in AXES or not math.isfinite(value) or key not in self.numeric_keys:
            raise UsageError(f"column {name!r}: expected at:AXIS=BUDGET:KEY with AXIS one of {', '.join(AXES)}, a number "
                             f"and a numeric metrics key ({', '.join(self.numeric_keys) or 'none'}), e.g. at:flops=1e12:eval_acc")
        return Column(name, MEASURE, lambda run: value_at(run, axis, value, key), ("metrics",))

    def resolve_all(self, names: list[str]) -> list[Column]:
        return [self.resolve(name) for name in names]

    def describe(self) -> str:
        """Every column the runs offer, by kind: what --list-columns prints."""
        lines = ["built-in columns:", text_table([[name, help_] for name, (_, _, help_) in BUILTINS.items()], indent="  ")]
        lines += ["metric qualifiers (QUALIFIER:KEY):", f"  {'  '.join(q + ':' for q in QUALIFIERS)}",
                  "  keys: " + (", ".join(self.metric_keys) or "none (no epoch finished)")
                  + "  (max/min/mean/epoch_of: numeric keys only; ties in epoch_of: go to the earliest epoch)"]
        lines += ["config keys:"] + [f"  {key}" for key in self.config_keys]
        lines += ["meta keys:"] + [f"  {key}" for key in self.meta_keys]
        return "\n".join(lines) + "\n"

    def unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names(), n=4, cutoff=0.6)
        hint = f"close matches: {', '.join(close)}" if close else "no close match"
        metrics = ", ".join(self.metric_keys) or "none (no epoch finished)"
        return (
            f"unknown column {name!r} ({hint}). Columns: built-ins {', '.join(BUILTINS)}; "
            f"metric qualifiers {', '.join(q + ':' for q in QUALIFIERS)} + a metrics key ({metrics}); "
            f"config keys {', '.join(self.config_keys) or 'none'}; meta keys as meta.KEY (e.g. meta.host, meta.git.commit)"
        )


def _union(key_lists: Iterable[tuple[str, ...]]) -> set[str]:
    """The keys of many runs; runs read from one index share their key tuples, so each distinct one is added once."""
    distinct = {id(keys): keys for keys in key_lists}
    return {key for keys in distinct.values() for key in keys}


def parse_names(text: str | None, default: tuple[str, ...] = DEFAULT_COLUMNS, option: str = "--columns") -> list[str]:
    """`a,b,c` -> the names; `+a,b` (or `+a,+b`) -> the defaults plus those not among them; empty -> the defaults."""
    if not text:
        return list(default)
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names or not names[0].startswith("+"):
        if any(name.startswith("+") for name in names):
            raise UsageError(f"{option} {text}: a `+` goes first and adds the whole list to the default columns (+{names[0]},...); "
                             "without it the list replaces them")
        return names
    added = [name.lstrip("+").strip() for name in names]
    return list(dict.fromkeys([*default, *added]))
