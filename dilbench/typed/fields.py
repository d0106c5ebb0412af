"""How a config dataclass declares a key: its default and its description, side by side.

The description is the one `dilbench schema` puts in the JSON Schema (and so what an editor shows
when completing the key); keeping it on the field means a new key cannot ship without one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

HELP = "help"  # the field metadata entry holding the description


def key(default: Any = dataclasses.MISSING, help: str = "", *, factory: Callable[[], Any] | Any = dataclasses.MISSING) -> Any:
    """A dataclass field with `default` (or `factory`) and a one-line description of the key."""
    return dataclasses.field(default=default, default_factory=factory, metadata={HELP: help})


def help_of(field: dataclasses.Field) -> str:
    return field.metadata.get(HELP, "")
