"""Typed, frozen run configuration loaded from YAML (no TensorFlow import).

The names below are loaded on first use: model and schedule modules import this package's
`validate` and `checks` while the schema (which needs their registries) is being built, so importing
the schema eagerly here would be circular.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Config": "dilbench.config.schema",
    "ConfigError": "dilbench.config.yamlfile",
    "dump_config": "dilbench.config.loader",
    "load_config": "dilbench.config.loader",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'dilbench.config' has no attribute {name!r}")
