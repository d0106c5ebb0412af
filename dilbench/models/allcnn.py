"""All-CNN-C of Springenberg et al., "Striving for Simplicity: The All Convolutional Net" (2015), Tables 1-2.

conv3x3 96, 96, 96/stride 2, 192, 192, 192/stride 2 ('same' padding), conv3x3 192 'valid', 1x1 192,
1x1 num_classes, each followed by ReLU (the paper's table puts one after the class layer too), then
global average pooling. The paper's dropout: 20% on the input, 50% after each stride-2 layer. Convs
have biases unless `batch_norm` puts BN after them (then a bias is pointless). One group per conv layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dilbench.models.bias import warn_if_bias_before_bn
from dilbench.typed.checks import in_unit_interval, positive
from dilbench.typed.fields import key

DESCRIPTION = "Springenberg et al.'s All-CNN-C (9 convs, global average pooling); one group per conv layer"

# (kernel size, output channels, stride, padding) of layers 1..9; layer 9's channels become num_classes.
LAYERS = (
    (3, 96, 1, "same"), (3, 96, 1, "same"), (3, 96, 2, "same"),
    (3, 192, 1, "same"), (3, 192, 1, "same"), (3, 192, 2, "same"),
    (3, 192, 1, "valid"), (1, 192, 1, "valid"), (1, 10, 1, "valid"),
)


@dataclass(frozen=True)
class AllCnnCConfig:
    name: Literal["allcnn_c"] = "allcnn_c"
    width: float = key(1.0, "multiplies the channels of layers 1-8 (the class layer keeps one channel per class)")
    input_dropout: float = key(0.2, "dropout on the input image (the paper's), in [0, 1)")
    dropout: float = key(0.5, "dropout after the two stride-2 layers, 3 and 6 (the paper's), in [0, 1)")
    batch_norm: bool = key(False, "batch norm after convs 1-8 (not in the paper; trains much faster)")
    use_bias: bool | None = key(None, "null: a conv bias exactly where no batch norm follows; true with batch norm is kept but warns")

    def __post_init__(self) -> None:
        positive(self, "width")
        in_unit_interval(self, "input_dropout", "dropout")
        if self.batch_norm:
            warn_if_bias_before_bn(bool(self.use_bias), "All-CNN-C's convs 1-8")

    def channels(self, num_classes: int) -> list[int]:
        """Output channels of layers 1..9."""
        hidden = [max(1, round(c * self.width)) for _, c, _, _ in LAYERS[:-1]]
        return [*hidden, num_classes]


def build(cfg: AllCnnCConfig, input_shape: tuple[int, int, int], num_classes: int, dtype: str, seed: int):
    import keras

    from dilbench.models.grouped import GroupedModel
    from dilbench.models.layers import Dropout, batch_norm, conv2d_same, layer_seeds

    seeds = layer_seeds(seed)
    groups = []
    for index, ((size, _, stride, padding), channels) in enumerate(zip(LAYERS, cfg.channels(num_classes)), start=1):
        with_bn = cfg.batch_norm and index < len(LAYERS)
        use_bias = cfg.use_bias if cfg.use_bias is not None else not with_bn
        layers = []
        if index == 1 and cfg.input_dropout:
            layers.append(Dropout(cfg.input_dropout, seed=next(seeds), dtype=dtype, name="input_dropout"))
        if padding == "same":  # symmetric padding at stride 2, like Caffe's pad: 1
            layers += conv2d_same(channels, size, stride, use_bias=use_bias, dtype=dtype, seed=next(seeds), name=f"conv{index}")
        else:
            layers.append(keras.layers.Conv2D(
                channels, size, padding="valid", use_bias=use_bias, dtype=dtype, name=f"conv{index}",
                kernel_initializer=keras.initializers.HeNormal(seed=next(seeds)),
            ))
        if with_bn:
            layers.append(batch_norm(0.99, 1e-3, dtype, f"conv{index}_bn"))
        layers.append(keras.layers.ReLU(dtype=dtype, name=f"relu{index}"))
        if stride > 1 and cfg.dropout:
            layers.append(Dropout(cfg.dropout, seed=next(seeds), dtype=dtype, name=f"dropout{index}"))
        groups.append(keras.Sequential(layers, name=f"layer{index}"))
    head = keras.Sequential([keras.layers.GlobalAveragePooling2D(dtype=dtype, name="global_mean")], name="head")
    return GroupedModel(groups, head, input_shape)
