"""Small value checks used by config dataclasses' `__post_init__`."""

from __future__ import annotations

from dilbench.config.validate import FieldError


def positive(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and value <= 0:
            raise FieldError(name, f"must be > 0, got {value!r}")


def non_negative(obj: object, *names: str) -> None:
    for name in names:
        value = getattr(obj, name)
        if value is not None and value < 0:
            raise FieldError(name, f"must be >= 0, got {value!r}")


def in_unit_interval(obj: object, *names: str) -> None:
    """0 <= value < 1, as for Adam's betas and momentum."""
    for name in names:
        value = getattr(obj, name)
        if not 0 <= value < 1:
            raise FieldError(name, f"must be in [0, 1), got {value!r}")
