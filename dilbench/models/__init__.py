"""Model registry: config name -> (config dataclass, builder). Importing this never imports TensorFlow."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from dilbench.models import context


@dataclass(frozen=True)
class ModelEntry:
    config: type
    build: Callable[..., Any]  # (config, input_shape, num_classes, dtype, seed) -> GroupedModel
    description: str


MODELS: dict[str, ModelEntry] = {
    "context_module": ModelEntry(
        context.ContextModuleConfig, context.build,
        "Yu & Koltun's dilated-convolution context module (basic/large) + classifier head; one group per layer",
    ),
}


def build_model(cfg: Any, input_shape: tuple[int, int, int], num_classes: int, dtype: str, seed: int):
    """Build the GroupedModel that `cfg` (one of the registered model configs) describes."""
    return MODELS[cfg.name].build(cfg, input_shape, num_classes, dtype, seed)
