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
demand) is generic. tags.json and notes.md (`dilbench tag`, `dilbench note`) are two such lines, read
through `RunRecord.part("tags")` and `part("note")`, stored, kept fresh and dropped like the others (their
problems join the run's, in SOURCES order). Another small per-run file is one line more, e.g.
`Source("x.json", read_json_part)` or `Source("x.md", read_text_part)`. Changing this module makes
existing indexes rebuild once (index_store.code_digest).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dilbench.report import provenance
from dilbench.report.packing import MISSING, SeriesChunk, pack_series
from dilbench.runs.rundir import RunDir, upgrade_meta, upgrade_record


@dataclass
class Part:
    """One file of a run, read: see the module docstring."""

    values: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    extras: dict[str, Any] = field(default_factory=dict)
    series: dict[str, list[Any]] = field(default_factory=dict)
    records: int = 0  # epoch records behind `series`
    packed: bytes | None = None  # `series` packed as the index keeps them (then `series` is left empty)
    packed_keys: tuple[str, ...] = ()  # the keys of the packed series

    def pack(self) -> Part:
        """This part with its series packed (cheap to hand from one process to another); `packed` stays None
        when the index cannot hold them exactly."""
        if self.series and self.packed is None:
            self.packed = pack_series(self.series, self.records)
            if self.packed is not None:
                self.packed_keys, self.series = tuple(self.series), {}
        return self

    def _chunk(self) -> SeriesChunk | None:
        return SeriesChunk(self.packed) if self.packed is not None else None

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
        chunk = self._chunk()
        if chunk is not None:
            return chunk.values(key)
        values = self.series.get(key)
        return list(values) if values is not None else [MISSING] * self.records

    def series_keys(self) -> tuple[str, ...]:
        return self.packed_keys if self.packed is not None else tuple(self.series)

    def numeric_keys(self) -> tuple[str, ...]:
        return numeric_of(tuple(self.values))

    def records_list(self) -> list[dict[str, Any]]:
        """The epoch records back from the series."""
        records: list[dict[str, Any]] = [{} for _ in range(self.records)]
        for key in self.series_keys():
            for record, value in zip(records, self.series_of(key)):
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
    import yaml

    try:
        text = path.read_text()
        data = simple_yaml(text)
        plain = data is not None
        if data is None:  # beyond what dump_config writes: YAML itself decides
            data = RunDir(path.parent).read_config_data()
            plain = _plain(yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)), set())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        return Part(problems=(f"config.yaml unreadable: {first_line(err)}",))
    if not isinstance(data, dict):
        return Part(problems=(f"config.yaml is not a mapping (got {type(data).__name__})",))
    return Part(values=flatten(data), extras={"plain": plain})


def _plain(node: Any, seen: set[int]) -> bool:
    """Whether flattening loses nothing of this YAML: no key written twice, with a dot, merged (`<<`) or
    not text, no alias. Then equal flattened values mean equal files (the sweep's check of a run's config)."""
    import yaml

    if node is None or id(node) in seen:
        return node is None
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        keys = [key.value for key, _ in node.value if isinstance(key, yaml.ScalarNode) and key.tag == "tag:yaml.org,2002:str"]
        return (len(keys) == len(node.value) == len(set(keys)) and not any("." in key for key in keys)
                and all(_plain(value, seen) for _, value in node.value))
    if isinstance(node, yaml.SequenceNode):
        return all(_plain(item, seen) for item in node.value)
    return True


_KEY_LINE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*):(?: (.*))?$")
_NOT_SIMPLE = re.compile(r"[^ -~\n]|[#\"&*!|>%@`\\]|^(---|\.\.\.)|\n\s*-(?: |$)", re.MULTILINE)
_SCALARS: dict[str, Any] = {}


class _NotSimple(Exception):
    pass


def simple_yaml(text: str) -> dict[str, Any] | None:
    """The mapping YAML (PyYAML's safe loader) makes of a config.yaml as dump_config writes it, fast; None for
    anything beyond that: block mappings of `key: value` lines, values plain or single-quoted scalars, flat
    flow lists of plain scalars, `[]` and `{}`. Plain scalars get their type from PyYAML's own resolver and
    constructor, so `0.0001`, `1.0e-08`, `null`, `yes` and `1e-4` (a string in YAML 1.1) come out as YAML's."""
    if _NOT_SIMPLE.search(text):
        return None
    try:
        return _simple_mapping(text)
    except _NotSimple:
        return None


def _simple_mapping(text: str) -> dict[str, Any] | None:
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(0, root)]
    pending: tuple[int, dict[str, Any], str] | None = None  # a key without a value: a nested mapping may follow
    for line in text.split("\n"):
        body = line.lstrip(" ")
        if not body:
            continue
        indent = len(line) - len(body)
        match = _KEY_LINE.match(body)
        if match is None:
            raise _NotSimple
        if pending is not None:
            at, mapping, key = pending
            if indent > at:
                mapping[key] = {}
                stack.append((indent, mapping[key]))
            pending = None
        while stack[-1][0] > indent:
            stack.pop()
        if stack[-1][0] != indent:
            raise _NotSimple
        mapping = stack[-1][1]
        key, value = match.group(1), match.group(2)
        if _scalar(key) != key:  # `on:` is True, `null:` is None in YAML 1.1
            raise _NotSimple
        if key in mapping:  # written twice: YAML keeps the last silently; leave it to YAML (and the sweep's full check)
            raise _NotSimple
        if not value:
            mapping[key] = None
            pending = (indent, mapping, key)
        else:
            mapping[key] = _simple_value(value)
    return root if root else None


def _simple_value(text: str) -> Any:
    if text != text.strip() or ": " in text or text.endswith(":"):
        raise _NotSimple
    if text == "[]":
        return []
    if text == "{}":
        return {}
    first = text[0]
    if first == "[":
        inner = text[1:-1]
        if text[-1] != "]" or not inner or any(c in inner for c in "[]{}'"):
            raise _NotSimple
        items = inner.split(", ")
        if any(not item or "," in item or item != item.strip() or item[0] in "-?:" for item in items):
            raise _NotSimple
        return [_scalar(item) for item in items]
    if first == "'":
        body = text[1:-1]
        if len(text) < 2 or text[-1] != "'" or "'" in body.replace("''", ""):
            raise _NotSimple
        return body.replace("''", "'")
    if first in "-?:,[]{}'" and not (first == "-" and len(text) > 1 and (text[1].isdigit() or text[1] == ".")):
        raise _NotSimple
    return _scalar(text)


def _scalar(text: str) -> Any:
    """A plain scalar as PyYAML's safe loader resolves and constructs it (memoised: configs repeat their values)."""
    try:
        return _SCALARS[text]
    except KeyError:
        pass
    import yaml

    if not _YAML:
        _YAML.extend((yaml.resolver.Resolver(), yaml.constructor.SafeConstructor()))
    resolver, constructor = _YAML
    try:
        node = yaml.ScalarNode(resolver.resolve(yaml.ScalarNode, text, (True, False)), text)
        value = constructor.construct_object(node, deep=True)
    except yaml.YAMLError:
        raise _NotSimple from None
    if isinstance(value, (list, dict, set, bytes, bytearray)):
        raise _NotSimple
    if len(_SCALARS) < 100_000:
        _SCALARS[text] = value
    return value


_YAML: list[Any] = []  # PyYAML's resolver and safe constructor, made on first use


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
    return meta_part(meta, text)


def meta_part(meta: dict[str, Any], text: str) -> Part:
    """The part of a meta.json read as `meta` from `text`: its values, status, text and provenance summary."""
    return Part(values=flatten(meta), extras={"status": str(meta.get("status") or "unknown"), "text": text,
                                              "provenance": provenance.summary(meta)})


def no_meta() -> Part:
    return Part(problems=("no meta.json (status unknown)",), extras={"status": "unknown"})


# ---- metrics.jsonl ----------------------------------------------------------------------------------
def read_metrics_part(path: Path) -> Part:
    """Epoch records up to the first unreadable line, as per-key series and the reductions of them."""
    try:
        text = path.read_text()
        records = _json_lines(text)
        problem = None
        if records is None:  # something to report, or lines the quick way does not take: the careful way
            records, problem = RunDir(path.parent).read_metrics_checked()
    except (OSError, UnicodeDecodeError) as err:
        return metrics_part([], f"metrics.jsonl unreadable: {first_line(err)}")
    return metrics_part(records, f"metrics.jsonl {problem}; epochs from there on ignored" if problem else None)


_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # the C scanner json.loads uses
_OTHER_BREAKS = re.compile("[\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]")


def _json_lines(text: str) -> list[dict[str, Any]] | None:
    """The records of a metrics.jsonl whose every line is one JSON object from its first character to its last,
    as RunDir.read_metrics_checked reads them (0.1's keys renamed); None for anything else (a blank or torn
    line, other line breaks), which that careful reader then handles. Parses in place, without a string per line."""
    if _OTHER_BREAKS.search(text):
        return None
    records, at, end = [], 0, len(text)
    while at < end:
        if text[at] != "{":
            return None
        try:
            record, stop = _SCAN(text, at)
        except (StopIteration, ValueError):
            return None
        if stop < end and text[stop] != "\n":
            return None
        records.append(upgrade_record(record))
        at = stop + 1
    return records


def metrics_part(records: list[dict[str, Any]], problem: str | None = None) -> Part:
    keys = list(records[0]) if records else []
    if all(list(record) == keys for record in records):  # the usual file: every record has the same keys in order
        series = {key: list(values) for key, values in zip(keys, zip(*(record.values() for record in records)))}
    else:
        union: dict[str, None] = {}
        for record in records:
            union.update(dict.fromkeys(record))
        series = {key: [record.get(key, MISSING) for record in records] for key in union}
    return Part(values=reductions(series, len(records)), problems=(problem,) if problem else (), series=series, records=len(records))


def numeric_of(reduced: tuple[str, ...]) -> tuple[str, ...]:
    """Metric keys with a finite number in some record: those reduced to a `max:KEY`."""
    return tuple(name[len("max:"):] for name in reduced if name.startswith("max:"))


QUALIFIERS = ("last", "max", "min", "mean", "epoch_of:max", "epoch_of:min")
SUMMED = "sum"  # sum:KEY, what wall_time and eval_time add up


def reductions(series: dict[str, list[Any]], records: int) -> dict[str, Any]:
    """Every value a column computes from the epochs, by column-like name; a reduction without a value
    (no number under that key) is left out and reads as None.

    `last:KEY` for every key; for keys with a finite number somewhere `max:`, `min:`, `mean:`, `epoch_of:max:`,
    `epoch_of:min:` (ties go to the earliest epoch) and `sum:`; `epochs`, `train_time` and `images_per_s`.
    """
    out: dict[str, Any] = {"epochs": records}
    for key, values in series.items():
        last = values[-1]
        out[f"last:{key}"] = None if last is MISSING else last
    epochs = series.get("epoch")
    for key, values in series.items():
        numbers, where, total = _numbers(values)
        if not numbers:
            continue
        high, low = max(numbers), min(numbers)
        out[f"max:{key}"], out[f"min:{key}"], out[f"mean:{key}"] = high, low, total / len(numbers)
        first_high, first_low = numbers.index(high), numbers.index(low)  # ties: the earliest epoch
        out[f"epoch_of:max:{key}"] = _epoch(epochs, first_high if where is None else where[first_high])
        out[f"epoch_of:min:{key}"] = _epoch(epochs, first_low if where is None else where[first_low])
        out[f"{SUMMED}:{key}"] = total
    for name, reduce in SERIES_REDUCTIONS.items():
        value = reduce(series, records)
        if value is not None:
            out[name] = value
    return out


def _numbers(values: list[Any]) -> tuple[list[Any], list[int] | None, float]:
    """The finite numbers among `values`, where they are (None: everywhere) and their exact sum."""
    kinds = set(map(type, values))
    if kinds == {int} or kinds == {float}:  # the usual series: all numbers; finite if their sum is
        try:
            total = math.fsum(values)
        except (OverflowError, ValueError):
            total = math.nan
        if math.isfinite(total):
            return values, None, total
    if not kinds & {int, float}:
        return [], None, 0.0
    where = [i for i, v in enumerate(values) if v is not MISSING and is_number(v)]
    numbers = [values[i] for i in where]
    return numbers, where, math.fsum(numbers)


def _epoch(epochs: list[Any] | None, index: int) -> Any:
    """A record's epoch: its `epoch`, or its position (1-based) in a record without one."""
    value = epochs[index] if epochs is not None else MISSING
    return index + 1 if value is MISSING else value


def _train_seconds(series: dict[str, list[Any]], records: int) -> list[Any]:
    """Each epoch's seconds of training batches; runs before `train_seconds` existed recorded them as `seconds`."""
    train, both = series.get("train_seconds"), series.get("seconds")
    if train is not None and MISSING not in train:
        return train
    train, both = train or [MISSING] * records, both or [MISSING] * records
    return [(None if b is MISSING else b) if t is MISSING else t for t, b in zip(train, both)]


def _train_time(series: dict[str, list[Any]], records: int) -> float | None:
    numbers, _, total = _numbers(_train_seconds(series, records))
    return total if numbers else None


def _images_per_s(series: dict[str, list[Any]], records: int) -> float | None:
    """Training images per second over all epochs: weighted by each epoch's training seconds."""
    rates, seconds = series.get("images_per_s") or [MISSING] * records, _train_seconds(series, records)
    pairs = [(r * t, t) for r, t in zip(rates, seconds) if is_number(r) and is_number(t)]
    total_seconds = math.fsum(s for _, s in pairs)
    return math.fsum(i for i, _ in pairs) / total_seconds if total_seconds > 0 else None


SERIES_REDUCTIONS: dict[str, Callable[[dict[str, list[Any]], int], Any]] = {"train_time": _train_time, "images_per_s": _images_per_s}


# ---- a generic small JSON file (for files other features add) ------------------------------------
def read_json_part(path: Path) -> Part:
    """A small JSON file flattened like meta.json (a value that is not an object is kept under the key `value`)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        return Part(problems=(f"{path.name} unreadable: {first_line(err)}",))
    return Part(values=flatten(data) if isinstance(data, dict) else {"value": data})


def read_text_part(path: Path) -> Part:
    """A small text file (notes): its text under the key `text`."""
    try:
        return Part(values={"text": path.read_text()})
    except (OSError, UnicodeDecodeError) as err:
        return Part(problems=(f"{path.name} unreadable: {first_line(err)}",))


# ---- tags.json and notes.md (`dilbench tag` and `dilbench note`, runs/annotations.py) ------------------
def read_tags_part(path: Path) -> Part:
    """tags.json as RunDir.read_tags reads it: the sorted tags under the key `tags`."""
    try:
        tags = RunDir(path.parent).read_tags()
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return Part(problems=(f"tags.json unreadable: {first_line(err)}",))
    return Part(values={"tags": tags})


def read_note_part(path: Path) -> Part:
    """notes.md as RunDir.read_note reads it: the note under the key `text`, nothing for an empty one."""
    try:
        note = RunDir(path.parent).read_note()
    except (OSError, UnicodeDecodeError) as err:
        return Part(problems=(f"notes.md unreadable: {first_line(err)}",))
    return Part(values={"text": note} if note is not None else {})


# name -> the file it is read from; the order is the order of a run's problems
SOURCES: dict[str, Source] = {
    "config": Source("config.yaml", read_config_part, no_config),
    "meta": Source("meta.json", read_meta_part, no_meta),
    "metrics": Source("metrics.jsonl", read_metrics_part, lambda: metrics_part([])),
    "tags": Source("tags.json", read_tags_part),
    "note": Source("notes.md", read_note_part),
}
MARKER_FILES = ("config.yaml", "meta.json")  # a directory holding either is a run directory
