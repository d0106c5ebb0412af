"""Small value checks used by config dataclasses' `__post_init__`; each reports every bad key it is given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dilbench.typed.validate import FieldError, FieldErrors


def _check(obj: object, names: tuple[str, ...], wrong: Callable[[Any], bool], expected: str) -> None:
    errors = [FieldError(name, f"must be {expected}, got {getattr(obj, name)!r}") for name in names if wrong(getattr(obj, name))]
    if errors:
        raise FieldErrors(errors)


def positive(obj: object, *names: str) -> None:
    _check(obj, names, lambda value: value is not None and value <= 0, "> 0")


def non_negative(obj: object, *names: str) -> None:
    _check(obj, names, lambda value: value is not None and value < 0, ">= 0")


def in_unit_interval(obj: object, *names: str) -> None:
    """0 <= value < 1, as for Adam's betas and momentum."""
    _check(obj, names, lambda value: not 0 <= value < 1, "in [0, 1)")
