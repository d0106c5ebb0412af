"""Model registry: config name -> (config dataclass, builder). Importing this never imports TensorFlow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dilbench.models import allcnn, allconv9, context, resnet_v2
from dilbench.typed.registry import check_names

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


MODELS: dict[str, ModelEntry] = {
    "context_module": ModelEntry(
        context.ContextModuleConfig, context.build,
        "Yu & Koltun's dilated-convolution context module (basic/large) + classifier head; one group per layer",
        context.receptive_fields,
    ),
    "allconv9": ModelEntry(allconv9.AllConv9Config, allconv9.build, allconv9.DESCRIPTION),
    "allcnn_c": ModelEntry(allcnn.AllCnnCConfig, allcnn.build, allcnn.DESCRIPTION),
    "resnet_v2": ModelEntry(resnet_v2.ResNetV2Config, resnet_v2.build, resnet_v2.DESCRIPTION),
}
check_names({key: entry.config for key, entry in MODELS.items()}, "model")


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
