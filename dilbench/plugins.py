"""Extend dilbench without forking it: register model families, data sets, schedules and augmentation operations.

    from dilbench.plugins import register_model, register_dataset, register_schedule, register_augmentation

Each function runs the checks dilbench's own entries get (they register through the same functions), so
a malformed entry or a taken name is a RegistryError where it is registered. Code that registers in its
own process (a script, a notebook) just calls them before loading a config; to reach the `dilbench`
command, a plugin is an installed distribution with an entry point in the group `dilbench.plugins`:

    [project.entry-points."dilbench.plugins"]
    tiny = "dilbench_tiny"              # a module that registers when imported (or "module:function")

Plugins are loaded on the first read of a registry (config validation reads them), once per process; a
broken one is skipped with one warning line and everything else works. A plugin module should import
TensorFlow and Keras only inside its builders, so that `validate` and `schema` stay fast.
`dilbench plugins` lists the installed plugins and what each registered. The guide: docs/guides/plugins.md.
"""

from __future__ import annotations

from typing import Any

from dilbench.augment.ops import AugmentOp, BuildContext, register_augmentation
from dilbench.data.registry import register_dataset
from dilbench.data.source import Decoded, Source
from dilbench.models import register_model
from dilbench.registry import GROUP, Plugin, load_plugins, registered
from dilbench.schedules import register_schedule
from dilbench.typed.fields import key
from dilbench.typed.registry import RegistryError
from dilbench.typed.validate import FieldError

__all__ = [
    "GROUP", "AugmentOp", "BuildContext", "Decoded", "FieldError", "Plugin", "RegistryError", "Source", "key",
    "load_plugins", "register_augmentation", "register_dataset", "register_model", "register_schedule", "registered",
]


def __getattr__(name: str) -> Any:
    """GroupedModel, what a model builder returns, imported on first use (inside the builder): it imports
    Keras and TensorFlow, so it is not in __all__ either."""
    if name == "GroupedModel":
        from dilbench.models.grouped import GroupedModel

        return GroupedModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
