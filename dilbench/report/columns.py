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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dilbench.errors import UsageError
from dilbench.report import provenance
from dilbench.report.budget import AXES, value_at
from dilbench.report.runs_index import RunRecord, flatten
from dilbench.tables import text_table

MEASURE = "measure"  # a number measured by the run: aggregated by --group-by, shown with fixed decimals
SETTING = "setting"  # what the run was (config, meta, identity): a group key or left out of groups

QUALIFIERS = ("last", "max", "min", "mean", "epoch_of:max", "epoch_of:min")
DEFAULT_COLUMNS = (  # `run` first: runs of one name and seed are otherwise identical rows
    "run", "name", "status", "model", "schedule", "augmentation", "seed", "epochs", "final_eval_acc", "best_eval_acc",
    "best_epoch", "final_train_acc", "gap", "wall_time", "images_per_s",
)


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # MEASURE or SETTING
    value: Callable[[RunRecord], Any]
    separator: str | None = None  # a list in one text (tags): --where KEY=V keeps runs whose list holds V


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_series(run: RunRecord, key: str) -> list[tuple[int, float]]:
    """(epoch, value) of every epoch record holding a finite number under `key`."""
    return [(r.get("epoch", i + 1), r[key]) for i, r in enumerate(run.metrics) if is_number(r.get(key))]


def qualified(qualifier: str, key: str, run: RunRecord) -> Any:
    """One qualifier over one metrics.jsonl key; ties in epoch_of:max/min go to the earliest epoch."""
    if qualifier == "last":
        return run.metrics[-1].get(key) if run.metrics else None
    series = metric_series(run, key)
    if not series:
        return None
    values = [v for _, v in series]
    if qualifier == "mean":
        return math.fsum(values) / len(values)
    best = max(values) if qualifier.endswith("max") else min(values)
    if qualifier.startswith("epoch_of:"):
        return next(epoch for epoch, v in series if v == best)
    return best


def _setting(config_key: str, meta_key: str | None = None) -> Callable[[RunRecord], Any]:
    """A config value, falling back to meta.json for runs whose config.yaml is missing or corrupt."""
    return lambda run: run.config.get(config_key, run.meta.get(meta_key) if meta_key else None)


def _gap(run: RunRecord) -> float | None:
    train, test = qualified("last", "train_acc", run), qualified("last", "eval_acc", run)
    return train - test if is_number(train) and is_number(test) else None


def _summed(key: str) -> Callable[[RunRecord], float | None]:
    def total(run: RunRecord) -> float | None:
        values = [v for _, v in metric_series(run, key)]
        return math.fsum(values) if values else None

    return total


def _train_seconds(record: dict[str, Any]) -> Any:
    """The epoch's seconds of training batches; runs before `train_seconds` existed recorded them as `seconds`."""
    return record["train_seconds"] if "train_seconds" in record else record.get("seconds")


def _train_time(run: RunRecord) -> float | None:
    values = [t for t in map(_train_seconds, run.metrics) if is_number(t)]
    return math.fsum(values) if values else None


def _images_per_s(run: RunRecord) -> float | None:
    pairs = [(r["images_per_s"] * t, t) for r in run.metrics
             if is_number(r.get("images_per_s")) and is_number(t := _train_seconds(r))]
    total_seconds = math.fsum(s for _, s in pairs)
    return math.fsum(i for i, _ in pairs) / total_seconds if total_seconds > 0 else None


def _peak_mib(key: str) -> Callable[[RunRecord], float | None]:
    """The largest value of a bytes key over the run's epochs, in MiB (None for runs from before it was recorded)."""
    def peak(run: RunRecord) -> float | None:
        values = [v for _, v in metric_series(run, key)]
        return max(values) / 2**20 if values else None

    return peak


# name -> (kind, value, help): the help text is what `--help`, --list-columns and errors show.
BUILTINS: dict[str, tuple[str, Callable[[RunRecord], Any], str]] = {
    "run": (SETTING, lambda run: run.path.name, "run directory name"),
    "path": (SETTING, lambda run: str(run.path), "run directory path as found"),
    "name": (SETTING, _setting("name", "name"), "config name"),
    "status": (SETTING, lambda run: run.status,
               "running|completed|pruned|failed|interrupted|crashed|stale, unknown (no meta.json), corrupt"),
    "model": (SETTING, _setting("model.name"), "model.name"),
    "schedule": (SETTING, _setting("schedule.name"), "schedule.name"),
    "augmentation": (SETTING, _setting("augmentation.mode"), "augmentation.mode"),
    "seed": (SETTING, _setting("seed", "seed"), "seed"),
    "epochs": (MEASURE, lambda run: len(run.metrics), "epochs done (records in metrics.jsonl)"),
    "final_eval_acc": (MEASURE, lambda run: qualified("last", "eval_acc", run), "= last:eval_acc"),
    "best_eval_acc": (MEASURE, lambda run: qualified("max", "eval_acc", run), "= max:eval_acc"),
    "best_epoch": (MEASURE, lambda run: qualified("epoch_of:max", "eval_acc", run), "= epoch_of:max:eval_acc"),
    "final_train_acc": (MEASURE, lambda run: qualified("last", "train_acc", run), "= last:train_acc"),
    "gap": (MEASURE, _gap, "last:train_acc - last:eval_acc (positive: overfitting)"),
    "wall_time": (MEASURE, _summed("seconds"), "seconds of training and evaluation, summed over epochs (survives resumes; "
                  "runs before train_seconds existed: training only)"),
    "train_time": (MEASURE, _train_time, "seconds of training batches, summed over epochs"),
    "eval_time": (MEASURE, _summed("eval_seconds"), "seconds of evaluation, summed over epochs (empty for older runs)"),
    "images_per_s": (MEASURE, _images_per_s, "training images per second of training time, over all epochs"),
    "train_flops": (MEASURE, lambda run: qualified("last", "train_flops", run),
                    "= last:train_flops, the run's training FLOPs so far (the schedule's cost model)"),
    "peak_rss_mib": (MEASURE, _peak_mib("peak_rss_bytes"), "peak resident memory of the run's processes, MiB (max over epochs)"),
    "cpu_util": (MEASURE, lambda run: qualified("mean", "cpu_util", run),
                 "CPU time / wall time / usable CPUs, mean over epochs (1.0: every CPU busy)"),
    "gpu_peak_mib": (MEASURE, _peak_mib("gpu_peak_bytes"), "peak GPU memory TensorFlow allocated, MiB (max over epochs; GPU runs)"),
    "data_sha256": (SETTING, lambda run: provenance.data_sha256(run.meta),
                    "SHA-256 of the data files read (first 12 hex digits; a+b: a resume read other data)"),
    "dirty": (SETTING, lambda run: provenance.dirty(run.meta), "ran from uncommitted changes (true: see its source.patch)"),
    "tags": (SETTING, lambda run: ",".join(run.tags) or None, "the run's tags (dilbench tag); --where tags=X keeps runs tagged X"),
    "tag": (SETTING, lambda run: ",".join(run.tags) or None, "= tags (reads better in --where tag=baseline)"),
    "note": (SETTING, lambda run: " / ".join(run.note.splitlines()) if run.note else None, "the run's note (dilbench note)"),
    "problems": (SETTING, lambda run: "; ".join(run.problems) or None, "missing or corrupt files of the run"),
}
LISTS = {"tags": ",", "tag": ","}  # columns holding a list as text: --where tests membership


class Catalog:
    """The column names the selected runs offer; resolves names and explains unknown ones."""

    def __init__(self, runs: list[RunRecord]):
        self.config_keys = sorted({key for run in runs for key in run.config})
        self.meta_keys = sorted({f"meta.{key}" for run in runs for key in flatten(run.meta)})
        keys: set[str] = set()
        numeric: set[str] = set()
        for record in (record for run in runs for record in run.metrics):
            keys.update(record)
            numeric.update(key for key, value in record.items() if key not in numeric and is_number(value))
        self.metric_keys, self.numeric_keys = sorted(keys), sorted(numeric)

    def names(self) -> list[str]:
        qualified_names = [f"last:{k}" for k in self.metric_keys] + [
            f"{q}:{k}" for q in QUALIFIERS if q != "last" for k in self.numeric_keys
        ]
        return [*BUILTINS, *qualified_names, *self.config_keys, *self.meta_keys]

    def resolve(self, name: str) -> Column:
        name = name.strip()
        if name in BUILTINS:
            kind, value, _ = BUILTINS[name]
            return Column(name, kind, value, LISTS.get(name))
        for qualifier in sorted(QUALIFIERS, key=len, reverse=True):
            if name.startswith(f"{qualifier}:"):
                key = name[len(qualifier) + 1:]
                if key in (self.metric_keys if qualifier == "last" else self.numeric_keys):
                    kind = MEASURE if key in self.numeric_keys else SETTING  # last:eval_split is not averaged
                    return Column(name, kind, functools.partial(qualified, qualifier, key))
                break
        if name.startswith("at:"):
            return self._at_budget(name)
        if name in self.config_keys:
            return Column(name, SETTING, lambda run: run.config.get(name))
        if name in self.meta_keys:
            key = name[len("meta."):]
            return Column(name, SETTING, lambda run: flatten(run.meta).get(key))
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
        return Column(name, MEASURE, lambda run: value_at(run, axis, value, key))

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
