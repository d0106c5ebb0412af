"""`--where` filters and `--sort` order for compare, over any column name.

Values on the command line are text; they are compared with the run's value by its type, so
`optimizer.lr=1e-4` matches 0.0001, `deterministic=true` matches True and `model.hidden=[64]` a list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dilbench.config.loader import parse_value
from dilbench.errors import UsageError
from dilbench.report.aggregate import Summary
from dilbench.report.columns import Catalog, Column, is_number

_CONDITION = re.compile(r"^(?P<key>[^=!<>]+?)\s*(?P<op>!=|>=|<=|=|>|<)\s*(?P<text>.*)$")


@dataclass(frozen=True)
class Condition:
    """KEY=A,B (any of), KEY!=A,B (none of), KEY>X, KEY>=X, KEY<X, KEY<=X."""

    column: Column
    op: str
    texts: tuple[str, ...]

    def holds(self, value: Any) -> bool:
        if self.op == "=":
            return any(_equal(value, text) for text in self.texts)
        if self.op == "!=":
            return not any(_equal(value, text) for text in self.texts)
        return _ordered(value, self.op, self.texts[0])


def parse_condition(text: str, catalog: Catalog) -> Condition:
    match = _CONDITION.match(text.strip())
    if not match:
        raise UsageError(f"--where {text}: expected KEY=VALUE (also !=, >, >=, <, <=), e.g. --where schedule.name=unfair_back")
    value = match["text"].strip()
    texts = (value,) if value.startswith("[") or match["op"] not in ("=", "!=") else tuple(v.strip() for v in value.split(","))
    return Condition(catalog.resolve(match["key"]), match["op"], texts)


def _equal(value: Any, text: str) -> bool:
    if value is None:
        return text.lower() in ("", "null", "none", "~", "-")
    if isinstance(value, bool):
        return text.lower() in (("true", "yes", "on", "1") if value else ("false", "no", "off", "0"))
    if is_number(value):
        try:
            return float(text) == float(value)
        except ValueError:
            return False
    if isinstance(value, (list, dict)):
        return parse_value(text) == value
    return str(value) == text


def _ordered(value: Any, op: str, text: str) -> bool:
    try:
        left, right = (float(value), float(text)) if is_number(value) else (value, text)
        if not isinstance(left, (float, str)):
            return False
        return {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[op]
    except (TypeError, ValueError):
        return False


def parse_sort(text: str | None) -> list[tuple[str, bool]]:
    """`-max:test_acc,name` -> [("max:test_acc", descending), ("name", ascending)]."""
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
