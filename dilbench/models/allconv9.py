"""The 9-layer all-convolutional ELU net of the unfair-backprop experiments (DESIGN.md's table).

No biases, 'same' padding, stride 1, ELU after every layer including the last, truncated-normal init
with each layer's stddev, 2x2/2 average pooling after layers 3 and 6; logits are the spatial mean of
layer 9's output. A layer group is one conv layer (+ its pooling); the head has no parameters.
1,301,888 parameters at width 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dilbench.typed.checks import positive
from dilbench.typed.fields import key

DESCRIPTION = "the 9-layer ELU all-conv net of the unfair-backprop experiments; one group per conv layer"

# (kernel size, output channels, init stddev) of layers 1..9; layer 9's channels become num_classes.
LAYERS = (
    (3, 256, 0.05), (3, 256, 0.04), (3, 128, 0.06),
    (3, 128, 0.04), (3, 128, 0.06), (3, 64, 0.05),
    (3, 64, 0.04), (1, 64, 0.05), (1, 10, 0.06),
)
POOL_AFTER = (3, 6)


@dataclass(frozen=True)
class AllConv9Config:
    name: Literal["allconv9"] = "allconv9"
    width: float = key(1.0, "multiplies the channels of layers 1-8 (the class layer keeps one channel per class), for quick runs")

    def __post_init__(self) -> None:
        positive(self, "width")

    def channels(self, num_classes: int) -> list[int]:
        """Output channels of layers 1..9."""
        hidden = [max(1, round(c * self.width)) for _, c, _ in LAYERS[:-1]]
        return [*hidden, num_classes]


def build(cfg: AllConv9Config, input_shape: tuple[int, int, int], num_classes: int, dtype: str, seed: int):
    import keras

    from dilbench.models.grouped import GroupedModel
    from dilbench.models.layers import layer_seeds

    seeds = layer_seeds(seed)
    groups = []
    for index, ((size, _, stddev), channels) in enumerate(zip(LAYERS, cfg.channels(num_classes)), start=1):
        layers = [keras.layers.Conv2D(
            channels, size, padding="same", use_bias=False, activation="elu", dtype=dtype, name=f"conv{index}",
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=stddev, seed=next(seeds)),
        )]
        if index in POOL_AFTER:
            layers.append(keras.layers.AveragePooling2D(2, 2, dtype=dtype, name=f"pool{index}"))
        groups.append(keras.Sequential(layers, name=f"layer{index}"))
    head = keras.Sequential([keras.layers.GlobalAveragePooling2D(dtype=dtype, name="spatial_mean")], name="head")
    return GroupedModel(groups, head, input_shape)
