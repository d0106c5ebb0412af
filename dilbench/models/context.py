"""The context module of Yu & Koltun (ICLR 2016) with a classifier head, for MNIST-style inputs.

A stack of 3x3 convolutions with growing dilation (default 1,1,2,4,8,16,1) and a final 1x1 layer; each
layer is one layer group. `identity` init is the paper's: every layer starts as a pass-through of its
input (generalised to differing channel counts by the paper's formula), plus small symmetry-breaking
noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dilbench.typed.checks import non_negative, positive
from dilbench.typed.fields import key
from dilbench.typed.validate import FieldError

LARGE_MULTIPLIERS = (2, 2, 4, 8, 16, 32, 32, 1)


@dataclass(frozen=True)
class ContextModuleConfig:
    name: Literal["context_module"] = "context_module"
    variant: Literal["basic", "large"] = key("basic", "basic: channels everywhere; large: 2C,2C,4C,8C,16C,32C,32C,C")
    channels: int = key(32, "C, the channels of the module's layers")
    dilations: tuple[int, ...] = key((1, 1, 2, 4, 8, 16, 1), "one 3x3 layer per dilation (the large variant needs 7)")
    init: Literal["identity", "normal"] = key(
        "identity", "identity: the paper's pass-through init (plus noise); normal: random normal")
    init_stddev: float | None = key(None, "identity: stddev of the symmetry-breaking noise (null = 0.001); "
                                          "normal: weight stddev (null = He, sqrt(2/fan_in))")
    head: Literal["flatten", "global_avg"] = key("flatten", "flatten or global_avg before the dense layers")
    hidden: tuple[int, ...] = key((128,), "widths of the ReLU dense layers before the logits")

    def __post_init__(self) -> None:
        positive(self, "channels")
        non_negative(self, "init_stddev")
        if not self.dilations or min(self.dilations) < 1:
            raise FieldError("dilations", f"need at least one dilation, each >= 1, got {list(self.dilations)}")
        if self.variant == "large" and len(self.dilations) != len(LARGE_MULTIPLIERS) - 1:
            raise FieldError("dilations", f"the large variant has 7 dilated layers, got {len(self.dilations)} dilations")
        if any(h < 1 for h in self.hidden):
            raise FieldError("hidden", f"dense widths must be >= 1, got {list(self.hidden)}")

    def widths(self) -> list[int]:
        """Output channels of each layer: the dilated ones, then the final 1x1."""
        if self.variant == "large":
            return [m * self.channels for m in LARGE_MULTIPLIERS]
        return [self.channels] * (len(self.dilations) + 1)

    def kernels(self) -> list[tuple[int, int]]:
        """(kernel size, dilation) of each layer."""
        return [(3, d) for d in self.dilations] + [(1, 1)]


def receptive_fields(cfg: ContextModuleConfig) -> list[int]:
    """Receptive field (pixels per side) after each layer: 3, 5, 9, 17, 33, 65, 67, 67 by default."""
    field, fields = 1, []
    for size, dilation in cfg.kernels():
        field += (size - 1) * dilation
        fields.append(field)
    return fields


def identity_kernel(size: int, c_in: int, c_out: int, base: int):
    """The paper's identity init: k[centre, a, b] = base/c_out if floor(a*base/c_in) == floor(b*base/c_out)."""
    import numpy as np

    kernel = np.zeros((size, size, c_in, c_out), np.float32)
    a = np.arange(c_in)[:, None]
    b = np.arange(c_out)[None, :]
    match = (a * base // c_in) == (b * base // c_out)
    kernel[size // 2, size // 2] = np.where(match, base / c_out, 0.0)
    return kernel


def build(cfg: ContextModuleConfig, input_shape: tuple[int, int, int], num_classes: int, dtype: str, seed: int):
    import keras
    import numpy as np

    from dilbench.models.grouped import GroupedModel

    rng = np.random.default_rng(seed)
    groups = []
    c_in = input_shape[-1]
    for index, ((size, dilation), c_out) in enumerate(zip(cfg.kernels(), cfg.widths()), start=1):
        fan_in = size * size * c_in
        if cfg.init == "identity":
            noise = 1e-3 if cfg.init_stddev is None else cfg.init_stddev
            kernel = identity_kernel(size, c_in, c_out, cfg.channels)
            kernel += rng.normal(0.0, noise, kernel.shape).astype(np.float32) if noise else 0.0
        else:
            stddev = np.sqrt(2.0 / fan_in) if cfg.init_stddev is None else cfg.init_stddev
            kernel = rng.normal(0.0, stddev, (size, size, c_in, c_out)).astype(np.float32)
        conv = keras.layers.Conv2D(
            c_out, size, padding="same", dilation_rate=dilation, activation="relu",
            kernel_initializer=keras.initializers.Constant(kernel), dtype=dtype, name=f"conv{index}_d{dilation}",
        )
        groups.append(keras.Sequential([conv], name=f"layer{index}_d{dilation}" if size > 1 else f"layer{index}_1x1"))
        c_in = c_out
    head_layers = [keras.layers.Flatten(dtype=dtype) if cfg.head == "flatten" else keras.layers.GlobalAveragePooling2D(dtype=dtype)]
    head_layers += [
        keras.layers.Dense(width, activation="relu", dtype=dtype, kernel_initializer=keras.initializers.HeNormal(seed + i))
        for i, width in enumerate(cfg.hidden)
    ]
    head_layers.append(keras.layers.Dense(num_classes, dtype=dtype, kernel_initializer=keras.initializers.GlorotUniform(seed)))
    head = keras.Sequential(head_layers, name="head")
    return GroupedModel(groups, head, input_shape)
