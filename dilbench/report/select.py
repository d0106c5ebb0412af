"""`--where` filters and `--sort` order for compare, over any column name.

Values on the command line are text; they are compared with the run's value by its type, so
`optimizer.lr=1e-4` matches 0.0001, `runtime.deterministic=true` matches True and `model.hidden=[64]` a list.
A condition that cannot mean anything (`seed==1`, `seed>`, `seed>abc` when the seeds are numbers, an
unclosed `[64`) is a usage error showing the accepted forms, never a filter that silently keeps nothing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from dilbench.errors import UsageError
from dilbench.report.aggregate import Summary
from dilbench.report.columns import Catalog, Column, is_number
from dilbench.report.runs_index import RunRecord

FORMS = "KEY=V1,V2 (any of), KEY!=V1,V2 (none of), KEY>V, KEY>=V, KEY<V or KEY<=V, e.g. --where schedule.name=unfair_back"
NULLS = ("", "null", "none", "~", "-")
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")
_CONDITION = re.compile(r"^(?P<key>[^=!<>]+?)\s*(?P<op>!=|>=|<=|=|>|<)\s*(?P<text>.*)$")


@dataclass(frozen=True)
class Condition:
    """KEY=A,B (any of), KEY!=A,B (none of), KEY>X, KEY>=X, KEY<X, KEY<=X."""

    column: Column
    op: str
    texts: tuple[str, ...]
    values: list[Any] = field(default_factory=list, compare=False)  # the column's value for each run checked

    def holds(self, value: Any) -> bool:
        if self.column.separator is not None and self.op in ("=", "!="):  # tag=a,b: tagged a or b; tag!=a: not tagged a
            members = set(str(value).split(self.column.separator)) if value else set()
            hit = any(not members if text.lower() in NULLS else text in members for text in self.texts)
            return hit if self.op == "=" else not hit
        if self.op == "=":
            return any(_equal(value, text) for text in self.texts)
        if self.op == "!=":
            return not any(_equal(value, text) for text in self.texts)
        return _ordered(value, self.op, self.texts[0])


def parse_condition(text: str, catalog: Catalog, runs: list[RunRecord]) -> Condition:
    """A --where condition over a column the runs offer; UsageError if it cannot match as written.

    `runs` are those the condition will filter: a value that cannot compare with their values of the
    column (`seed>abc` where the seeds are numbers, `runtime.deterministic=maybe`) is refused.
    """
    match = _CONDITION.match(text.strip())
    if not match:
        raise UsageError(f"--where {text}: expected {FORMS}")
    op, value = match["op"], match["text"].strip()
    if value[:1] in ("=", "!", "<", ">"):
        raise UsageError(f"--where {text}: {op + value[0]!r} is not an operator; expected {FORMS}")
    if value.startswith("[") and not isinstance(parse_value(value), list):
        raise UsageError(f"--where {text}: {value} is not a list (write [a, b]); expected {FORMS}")
    texts = (value,) if value.startswith("[") or op not in ("=", "!=") else tuple(v.strip() for v in value.split(","))
    if op not in ("=", "!=") and not value:
        raise UsageError(f"--where {text}: {op} needs a value; expected {FORMS}")
    if len(texts) > 1 and "" in texts:
        raise UsageError(f"--where {text}: an empty value in the list; expected {FORMS}")
    column = catalog.resolve(match["key"])
    values = column.values(runs)
    _check_comparable(text, op, texts, values)
    return Condition(column, op, texts, values)


def _check_comparable(text: str, op: str, texts: tuple[str, ...], values: list[Any]) -> None:
    """UsageError if the column holds only numbers (or only booleans) and a value given is not one."""
    present = [v for v in values if v is not None]
    if not present:
        return
    wanted = [t for t in texts if op not in ("=", "!=") or t.lower() not in NULLS]
    if all(isinstance(v, bool) for v in present):
        bad = [t for t in wanted if t.lower() not in TRUE + FALSE]
        kind = "true or false"
    elif all(is_number(v) for v in present):
        bad = [t for t in wanted if not _is_number(t)]
        kind = "numbers"
    elif op not in ("=", "!=") and any(isinstance(v, (list, dict)) for v in present):
        bad, kind = [texts[0]], "lists or mappings, which have no order"
    else:
        return
    if bad:
        raise UsageError(f"--where {text}: the runs' values of this column are {kind}, so {bad[0]!r} can never match; "
                         f"expected {FORMS}")


def parse_value(text: str) -> Any:
    """A value as `--set` reads it (YAML). Imported on first use: dilbench.config pulls in every registry,
    which a `compare` without list values never needs."""
    from dilbench.config.loader import parse_value as parse

    return parse(text)


def _is_number(text: str) -> bool:
    """A number a value can equal or be ordered against (NaN equals nothing)."""
    try:
        return not math.isnan(float(text))
    except ValueError:
        return False


def _equal(value: Any, text: str) -> bool:
    if value is None:
        return text.lower() in NULLS
    if isinstance(value, bool):
        return text.lower() in (TRUE if value else FALSE)
    if is_number(value):
        try:
            return float(text) == float(value)
        except ValueError:
            return False
    if isinstance(value, (list, dict)):
        return parse_value(text) == value
    return str(value) == text


Ordered = TypeVar("Ordered", float, str)


def _ordered(value: Any, op: str, text: str) -> bool:
    try:
        if is_number(value):
            return _compare(float(value), op, float(text))
        return isinstance(value, str) and _compare(value, op, text)
    except (TypeError, ValueError):
        return False


def _compare(left: Ordered, op: str, right: Ordered) -> bool:
    return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[op]


def parse_sort(text: str | None) -> list[tuple[str, bool]]:
    """`-max:eval_acc,name` -> [("max:eval_acc", descending), ("name", ascending)]."""
    keys = [part.strip() for part in (text or "").split(",") if part.strip()]
    return [(key[1:], True) if key.startswith("-") else (key.lstrip("+"), False) for key in keys]


def _sortable(value: Any) -> tuple[int, Any]:
    if isinstance(value, Summary):
        value = value.mean
    if isinstance(value, (int, float)):  # bools sort as 0/1 with the numbers
        return (0, float(value))
    if isinstance(value, str):
        return (1, value)
    return (2, json.dumps(value, sort_keys=True, default=str))


def sort_items(items: list[Any], order: list[tuple[Callable[[Any], Any], bool]]) -> list[Any]:
    """Stable multi-key sort; items without a value go last whichever the direction."""
    for value_of, descending in reversed(order):
        values = [(item, value_of(item)) for item in items]
        present = [(item, v) for item, v in values if v is not None]
        present.sort(key=lambda pair: _sortable(pair[1]), reverse=descending)
        items = [item for item, _ in present] + [item for item, v in values if v is None]
    return items
