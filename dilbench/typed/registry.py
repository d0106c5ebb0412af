"""The check every config registry runs at import: a key is the `name` its config dataclass answers to.

Validation picks a section's dataclass by the `name` written in YAML (validate.named_variants reads the
`name` Literal), while code looks entries up by registry key; if the two differed, a config would
validate and then fail at lookup, or the reverse.
"""

from __future__ import annotations

from collections.abc import Mapping


class RegistryError(Exception):
    """A registry entry disagrees with itself: a programming error, raised at import."""


def check_names(configs: Mapping[str, type], kind: str) -> None:
    """Raise RegistryError naming the key and the dataclass if any key differs from its `name` default."""
    for key, config in configs.items():
        name = getattr(config, "name", None)
        if name != key:
            raise RegistryError(f"{kind} registry key {key!r} does not match {config.__module__}.{config.__qualname__}'s "
                                f"name default {name!r}; make them equal")
