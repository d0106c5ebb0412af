"""A run directory's small files, each read into one *part* of its summary (no TensorFlow).

A part holds what compare, show and the sweep ask about one file, in a shape the index can store
generically (report/index_store.py):

  * `values`: flat, dotted keys in file order: the flattened config, the flattened meta.json, or for
    metrics.jsonl the reductions every table column needs (`last:eval_acc`, `max:eval_acc`,
    `sum:seconds`, `epochs`, ...), so a table of final metrics never touches the epochs;
  * `problems`: why the file could not be read, or only in part (one line each);
  * `extras`: part-specific small values (meta.json's text, for its nested form and the owner);
  * `series`: metrics.jsonl only: every key's value per epoch record (MISSING where a record lacks it).

SOURCES maps a part's name to its file and reader; everything else (freshness, storage, loading on
demand) is generic. Another small per-run file (say `tags.json`) is one line there, e.g.
`"tags": Source("tags.json", read_json_part)`, and is then read through `RunRecord.part("tags")`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dilbench.runs.rundir import RunDir, upgrade_meta


class _Missing:
    """A key a record or run does not have (None is a value: `root: null`)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass
class Part:
    """One file of a run, read: see the module docstring."""

    values: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    extras: dict[str, Any] = field(default_factory=dict)
    series: dict[str, list[Any]] = field(default_factory=dict)
    records: int = 0  # epoch records behind `series`

    # The read-only interface a RunRecord uses, shared with the index's stored parts (index_store.StoredPart).
    def as_dict(self) -> dict[str, Any]:
        return self.values

    def get(self, key: str) -> Any:
        return self.values.get(key, MISSING)

    def keys(self) -> tuple[str, ...]:
        return tuple(self.values)

    def extra(self, name: str, default: Any = None) -> Any:
        return self.extras.get(name, default)

    def series_of(self, key: str) -> list[Any]:
        values = self.series.get(key)
        return list(values) if values is not None else [MISSING] * self.records

    def series_keys(self) -> tuple[str, ...]:
        return tuple(self.series)

    def records_list(self) -> list[dict[str, Any]]:
        """The epoch records back from the series."""
        records: list[dict[str, Any]] = [{} for _ in range(self.records)]
        for key, values in self.series.items():
            for record, value in zip(records, values):
                if value is not MISSING:
                    record[key] = value
        return records

    def nested(self) -> dict[str, Any]:
        """meta.json as written, from a meta part (empty when there was none or an unreadable one)."""
        text = self.extras.get("text")
        return upgrade_meta(json.loads(text)) if text is not None else {}


@dataclass(frozen=True)
class Source:
    """A file of the run directory and how it becomes a part; `absent` is the part when it does not exist."""

    file: str
    read: Callable[[Path], Part]
    absent: Callable[[], Part] = Part


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings to dotted keys; lists and scalars are kept as values."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__


# ---- config.yaml ------------------------------------------------------------------------------------
def read_config_part(path: Path) -> Part:
    """config.yaml as plain YAML flattened to dotted keys (not validated: runs of older or newer schemas stay readable)."""
    try:
        data = RunDir(path.parent).read_config_data()
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        return Part(problems=(f"config.yaml unreadable: {first_line(err)}",))
    if not isinstance(data, dict):
        return Part(problems=(f"config.yaml is not a mapping (got {type(data).__name__})",))
    return Part(values=flatten(data))


def no_config() -> Part:
    return Part(problems=("no config.yaml",))


# ---- meta.json --------------------------------------------------------------------------------------
def read_meta_part(path: Path) -> Part:
    """meta.json flattened (for meta.KEY columns), its text (the nested form, for show and the owner check)
    and its status: meta.json's, `unknown` without one, `corrupt` when it cannot be read as an object."""
    try:
        text = path.read_text()
        meta = upgrade_meta(json.loads(text))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return Part(problems=(f"meta.json unreadable: {first_line(err)}",), extras={"status": "corrupt"})
    if not isinstance(meta, dict):
        return Part(problems=(f"meta.json is not an object (got {type(meta).__name__})",), extras={"status": "corrupt"})
    return Part(values=flatten(meta), extras={"status": str(meta.get("status") or "unknown"), "text": text})


def no_meta() -> Part:
    return Part(problems=("no meta.json (status unknown)",), extras={"status": "unknown"})


# ---- metrics.jsonl ----------------------------------------------------------------------------------
def read_metrics_part(path: Path) -> Part:
    """Epoch records up to the first unreadable line, as per-key series and the reductions of them."""
    try:
        records, problem = RunDir(path.parent).read_metrics_checked()
    except (OSError, UnicodeDecodeError) as err:
        return metrics_part([], f"metrics.jsonl unreadable: {first_line(err)}")
    return metrics_part(records, f"metrics.jsonl {problem}; epochs from there on ignored" if problem else None)


def metrics_part(records: list[dict[str, Any]], problem: str | None = None) -> Part:
    keys: dict[str, None] = {}
    for record in records:
        keys.update(dict.fromkeys(record))
    series = {key: [record.get(key, MISSING) for record in records] for key in keys}
    return Part(values=reductions(records, series), problems=(problem,) if problem else (), series=series, records=len(records))


QUALIFIERS = ("last", "max", "min", "mean", "epoch_of:max", "epoch_of:min")
SUMMED = "sum"  # sum:KEY, what wall_time and eval_time add up


def reductions(records: list[dict[str, Any]], series: dict[str, list[Any]]) -> dict[str, Any]:
    """Every value a column computes from the epochs, by column-like name; a reduction without a value
    (no number under that key) is left out and reads as None.

    `last:KEY` for every key; for keys with a finite number somewhere `max:`, `min:`, `mean:`, `epoch_of:max:`,
    `epoch_of:min:` (ties go to the earliest epoch) and `sum:`; `epochs`, `train_time` and `images_per_s`.
    """
    out: dict[str, Any] = {"epochs": len(records)}
    for key, values in series.items():
        last = values[-1]
        out[f"last:{key}"] = None if last is MISSING else last
    epochs = series.get("epoch")
    for key, values in series.items():
        points = [(i, v) for i, v in enumerate(values) if v is not MISSING and is_number(v)]
        if not points:
            continue
        numbers = [v for _, v in points]
        high, low = max(numbers), min(numbers)
        total = math.fsum(numbers)
        out[f"max:{key}"], out[f"min:{key}"], out[f"mean:{key}"] = high, low, total / len(numbers)
        out[f"epoch_of:max:{key}"] = _epoch(epochs, next(i for i, v in points if v == high))
        out[f"epoch_of:min:{key}"] = _epoch(epochs, next(i for i, v in points if v == low))
        out[f"{SUMMED}:{key}"] = total
    for name, reduce in RECORD_REDUCTIONS.items():
        value = reduce(records)
        if value is not None:
            out[name] = value
    return out


def _epoch(epochs: list[Any] | None, index: int) -> Any:
    """A record's epoch: its `epoch`, or its position (1-based) in a record without one."""
    value = epochs[index] if epochs is not None else MISSING
    return index + 1 if value is MISSING else value


def _train_seconds(record: dict[str, Any]) -> Any:
    """The epoch's seconds of training batches; runs before `train_seconds` existed recorded them as `seconds`."""
    return record["train_seconds"] if "train_seconds" in record else record.get("seconds")


def _train_time(records: list[dict[str, Any]]) -> float | None:
    values = [t for t in map(_train_seconds, records) if is_number(t)]
    return math.fsum(values) if values else None


def _images_per_s(records: list[dict[str, Any]]) -> float | None:
    pairs = [(r["images_per_s"] * t, t) for r in records if is_number(r.get("images_per_s")) and is_number(t := _train_seconds(r))]
    total_seconds = math.fsum(s for _, s in pairs)
    return math.fsum(i for i, _ in pairs) / total_seconds if total_seconds > 0 else None


RECORD_REDUCTIONS: dict[str, Callable[[list[dict[str, Any]]], Any]] = {"train_time": _train_time, "images_per_s": _images_per_s}


# ---- a generic small JSON file (for files other features add) ------------------------------------
def read_json_part(path: Path) -> Part:
    """A small JSON file flattened like meta.json (a value that is not an object is kept under the key `value`)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return Part(problems=(f"{path.name} unreadable: {first_line(err)}",))
    return Part(values=flatten(data) if isinstance(data, dict) else {"value": data})


# name -> the file it is read from; the order is the order of a run's problems
SOURCES: dict[str, Source] = {
    "config": Source("config.yaml", read_config_part, no_config),
    "meta": Source("meta.json", read_meta_part, no_meta),
    "metrics": Source("metrics.jsonl", read_metrics_part, lambda: metrics_part([])),
}
MARKER_FILES = ("config.yaml", "meta.json")  # a directory holding either is a run directory
