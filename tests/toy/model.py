"""A toy model family: two Dense layer groups and a Dense head (a GroupedModel with 2 groups)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dilbench.plugins import key, register_model
from dilbench.typed.checks import positive

if TYPE_CHECKING:
    from dilbench.models.grouped import GroupedModel


@dataclass(frozen=True)
class ToyMlpConfig:
    name: Literal["toy_mlp"] = "toy_mlp"
    units: int = key(4, "hidden units of each group (> 0)")

    def __post_init__(self) -> None:
        positive(self, "units")


def build(cfg: ToyMlpConfig, input_shape: tuple[int, int, int], num_classes: int, dtype: str, seed: int) -> GroupedModel:
    import keras

    from dilbench.models.grouped import GroupedModel
    from dilbench.models.layers import layer_seeds

    seeds = layer_seeds(seed)

    def dense(units: int, name: str, activation: str | None = "relu") -> keras.Layer:
        init = keras.initializers.GlorotUniform(seed=next(seeds))
        return keras.layers.Dense(units, activation=activation, kernel_initializer=init, dtype=dtype, name=name)

    groups = [
        keras.Sequential([keras.layers.Flatten(dtype=dtype), dense(cfg.units, "dense1")], name="group1"),
        keras.Sequential([dense(cfg.units, "dense2")], name="group2"),
    ]
    return GroupedModel(groups, dense(num_classes, "head", activation=None), input_shape)


def register() -> None:
    register_model("toy_mlp", ToyMlpConfig, build, "a two-group MLP for the registry test")
