"""Model registry: config name -> (config dataclass, builder). Importing this never imports TensorFlow."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dilbench.models import allcnn, allconv9, context, resnet_v2


@dataclass(frozen=True)
class ModelEntry:
    config: type
    build: Callable[..., Any]  # (config, input_shape, num_classes, dtype, seed) -> GroupedModel
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


def build_model(cfg: Any, input_shape: tuple[int, ...], num_classes: int, dtype: str, seed: int):
    """Build the GroupedModel that `cfg` (one of the registered model configs) describes."""
    return MODELS[cfg.name].build(cfg, input_shape, num_classes, dtype, seed)


def model_keys(name: str) -> dict[str, Any]:
    """The config keys of model `name` (other than `name`) with their defaults, as plain YAML values."""
    from dilbench.typed.validate import to_plain

    defaults = to_plain(MODELS[name].config())
    defaults.pop("name")
    return defaults
