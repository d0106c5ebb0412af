"""Model registry: config name -> (config dataclass, builder). Importing this never imports TensorFlow.

A model family, built in or from a plugin, is registered with `register_model` (public as
`dilbench.plugins.register_model`): a frozen config dataclass whose `name: Literal[KEY]` defaults to its
key, and a builder that imports Keras when called and returns a GroupedModel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dilbench.models import allcnn, allconv9, context, resnet_v2
from dilbench.registry import Registry, check_callable, check_description
from dilbench.typed.registry import check_config

if TYPE_CHECKING:  # grouped.py imports Keras; importing the registry must not
    from dilbench.models.grouped import GroupedModel


class ModelBuilder(Protocol):
    """Builds a model family's GroupedModel from its config (the `cfg` of that family's dataclass)."""

    def __call__(self, cfg: Any, input_shape: tuple[int, int, int], num_classes: int, dtype: str, seed: int) -> GroupedModel: ...


@dataclass(frozen=True)
class ModelEntry:
    config: type  # a frozen dataclass whose `name: Literal[KEY]` defaults to its registry key
    build: ModelBuilder
    description: str
    receptive_fields: Callable[[Any], list[int]] | None = None  # per group, for families that define it


def _check(name: str, entry: ModelEntry) -> None:
    check_config(entry.config, name, "model")
    check_callable(entry.build, "model", name, "builder")
    check_description(entry.description, "model", name)
    if entry.receptive_fields is not None:
        check_callable(entry.receptive_fields, "model", name, "receptive_fields")


MODELS: Registry[ModelEntry] = Registry("model", _check)  # the first registered is the default model


def register_model(name: str, config: type, build: ModelBuilder, description: str, *,
                   receptive_fields: Callable[[Any], list[int]] | None = None) -> None:
    """Register model family `name`: `config` a frozen dataclass with `name: Literal[name] = name` and a
    default for every other key; `build(cfg, input_shape, num_classes, dtype, seed)` returns its GroupedModel
    (import Keras inside it); `description` one line; `receptive_fields(cfg)` per group, if it has them.
    RegistryError if the name is taken or the config cannot be validated (see typed/registry.py)."""
    MODELS.add(name, ModelEntry(config, build, description, receptive_fields), getattr(config, "__module__", ""))


register_model("context_module", context.ContextModuleConfig, context.build,
               "Yu & Koltun's dilated-convolution context module (basic/large) + classifier head; one group per layer",
               receptive_fields=context.receptive_fields)
register_model("allconv9", allconv9.AllConv9Config, allconv9.build, allconv9.DESCRIPTION)
register_model("allcnn_c", allcnn.AllCnnCConfig, allcnn.build, allcnn.DESCRIPTION)
register_model("resnet_v2", resnet_v2.ResNetV2Config, resnet_v2.build, resnet_v2.DESCRIPTION)


def build_model(cfg: Any, input_shape: tuple[int, ...], num_classes: int, dtype: str, seed: int) -> GroupedModel:
    """Build the GroupedModel that `cfg` (one of the registered model configs) describes on H x W x C inputs."""
    height, width, channels = input_shape
    return MODELS[cfg.name].build(cfg, (height, width, channels), num_classes, dtype, seed)


def model_keys(name: str) -> dict[str, Any]:
    """The config keys of model `name` (other than `name`) with their defaults, as plain YAML values."""
    from dilbench.typed.validate import to_plain

    defaults = to_plain(MODELS[name].config())
    defaults.pop("name")
    return defaults
