"""ResNet v2 (He et al., "Identity Mappings in Deep Residual Networks", 2016) in the style of slim's
resnet_v2.py: the architecture is data, a list of blocks (unit depth, bottleneck depth, units, stride),
and every unit is the pre-activation bottleneck (`layers.BottleneckV2`). A block's stride sits in its
last unit.

- variant `imagenet`: root 7x7/2 conv 64 (with bias; no BN/ReLU before it in v2) + 3x3/2 max-pool;
  slim's blocks with bottleneck depths 64/128/256/512, strides 2,2,2,1; depth 50, 101, 152 or 200.
- variant `cifar`: root 3x3 conv 16 (with bias), three blocks with bottleneck depths 16/32/64 (unit
  depth 4x), n = (depth-2)/9 units each. He et al. put strides 1,2,2 in the *first* unit of each
  stage; with the stride in the last unit (slim's convention) the same resolutions are strides 2,2,1,
  exactly as slim turned ImageNet's 1,2,2,2 into 2,2,2,1: 32x32 -> 16x16 -> 8x8x(256) features,
  same parameter count.
- `blocks:` in YAML replaces the variant's list (the variant still picks the root).

Head: post-norm BN+ReLU, global mean, dense logits. The root belongs to the first group, so a model
has exactly one group per block (or per unit with `groups: unit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dilbench.models.bias import warn_if_bias_before_bn
from dilbench.typed.checks import positive
from dilbench.typed.fields import key
from dilbench.typed.validate import FieldError

DESCRIPTION = "ResNet v2 pre-activation bottlenecks (ImageNet 50-200, CIFAR 9n+2, or YAML blocks); a group per block or unit"

IMAGENET_UNITS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3)}
IMAGENET_BASES, IMAGENET_STRIDES = (64, 128, 256, 512), (2, 2, 2, 1)
CIFAR_BASES, CIFAR_STRIDES = (16, 32, 64), (2, 2, 1)
ROOT_DEPTH = {"imagenet": 64, "cifar": 16}
DEFAULT_DEPTH = {"imagenet": 50, "cifar": 164}


@dataclass(frozen=True)
class BlockSpec:
    """One block of ResNet v2 units (slim's resnet_v2_block)."""

    depth: int = key(help="output depth of every unit in the block")
    bottleneck: int = key(help="depth of each unit's 1x1 and 3x3 convolutions")
    units: int = key(help="number of units in the block")
    stride: int = key(1, "stride of the block's last unit")

    def __post_init__(self) -> None:
        positive(self, "depth", "bottleneck", "units", "stride")


@dataclass(frozen=True)
class ResNetV2Config:
    name: Literal["resnet_v2"] = "resnet_v2"
    variant: Literal["imagenet", "cifar"] = key("cifar", "cifar (3x3 root) or imagenet (7x7/2 root + max-pool)")
    depth: int | None = key(None, "imagenet: 50, 101, 152 or 200; cifar: 9n+2 (11, 20, 29, 56, 110, 164, ...); "
                                  "null: 50 (imagenet) or 164 (cifar); leave unset with blocks")
    blocks: tuple[BlockSpec, ...] = key((), "explicit blocks replacing the variant's: depth, bottleneck, units, stride; "
                                            "empty: the variant's blocks for depth")
    groups: Literal["block", "unit"] = key("block", "one layer group per block or per unit")
    use_bias: bool = key(False, "bias on the convs batch norm follows (the bottleneck's 1x1 and 3x3): kept but warns, "
                                "as batch norm cancels it")
    bn_momentum: float = key(0.997, "batch-norm moving-average momentum (slim's), in (0, 1)")
    bn_epsilon: float = key(1e-5, "batch-norm epsilon (slim's)")

    def __post_init__(self) -> None:
        positive(self, "bn_epsilon")
        if not 0 < self.bn_momentum < 1:
            raise FieldError("bn_momentum", f"must be in (0, 1), got {self.bn_momentum!r}")
        if self.blocks and self.depth is not None:
            raise FieldError("depth", "give either depth or an explicit blocks: list, not both")
        depth = self.depth if self.depth is not None else DEFAULT_DEPTH[self.variant]
        if not self.blocks and self.variant == "imagenet" and depth not in IMAGENET_UNITS:
            raise FieldError("depth", f"the imagenet variant has depth 50, 101, 152 or 200, got {depth}; "
                             "use variant: cifar (depth 9n+2) or an explicit blocks: list for others")
        if not self.blocks and self.variant == "cifar" and (depth < 11 or (depth - 2) % 9):
            raise FieldError("depth", f"the cifar variant has depth 9n+2 with n >= 1 (11, 20, 29, 56, 110, 164, ...), got {depth}")
        warn_if_bias_before_bn(self.use_bias, "ResNet v2's bottleneck 1x1 and 3x3 convs")

    def block_specs(self) -> tuple[BlockSpec, ...]:
        """The explicit `blocks`, else the variant's blocks for `depth`."""
        if self.blocks:
            return self.blocks
        depth = self.depth if self.depth is not None else DEFAULT_DEPTH[self.variant]
        units: tuple[int, ...]
        bases: tuple[int, ...]
        strides: tuple[int, ...]
        if self.variant == "imagenet":
            units, bases, strides = IMAGENET_UNITS[depth], IMAGENET_BASES, IMAGENET_STRIDES
        else:
            units, bases, strides = ((depth - 2) // 9,) * 3, CIFAR_BASES, CIFAR_STRIDES
        return tuple(BlockSpec(4 * base, base, n, stride) for base, n, stride in zip(bases, units, strides))


def build(cfg: ResNetV2Config, input_shape: tuple[int, int, int], num_classes: int, dtype: str, seed: int):
    import keras

    from dilbench.models.grouped import GroupedModel
    from dilbench.models.layers import BottleneckV2, batch_norm, conv2d_same, layer_seeds

    seeds = layer_seeds(seed)
    root_depth = ROOT_DEPTH[cfg.variant]
    if cfg.variant == "imagenet":
        root = [*conv2d_same(root_depth, 7, 2, use_bias=True, dtype=dtype, seed=next(seeds), name="root_conv"),
                keras.layers.MaxPooling2D(3, 2, padding="same", dtype=dtype, name="root_pool")]
    else:
        root = conv2d_same(root_depth, 3, 1, use_bias=True, dtype=dtype, seed=next(seeds), name="root_conv")

    pending, groups, depth_in = list(root), [], root_depth
    for b, spec in enumerate(cfg.block_specs(), start=1):
        for u in range(1, spec.units + 1):
            pending.append(BottleneckV2(
                depth_in, spec.depth, spec.bottleneck, spec.stride if u == spec.units else 1, use_bias=cfg.use_bias,
                momentum=cfg.bn_momentum, epsilon=cfg.bn_epsilon, seeds=seeds, dtype=dtype, name=f"block{b}_unit{u}",
            ))
            depth_in = spec.depth
            if cfg.groups == "unit":
                groups.append(keras.Sequential(pending, name=f"block{b}_unit{u}"))
                pending = []
        if cfg.groups == "block":
            groups.append(keras.Sequential(pending, name=f"block{b}"))
            pending = []
    head = keras.Sequential([
        batch_norm(cfg.bn_momentum, cfg.bn_epsilon, dtype, "postnorm"),
        keras.layers.ReLU(dtype=dtype, name="postnorm_relu"),
        keras.layers.GlobalAveragePooling2D(dtype=dtype, name="global_mean"),
        keras.layers.Dense(num_classes, dtype=dtype, name="logits", kernel_initializer=keras.initializers.GlorotUniform(next(seeds))),
    ], name="head")
    return GroupedModel(groups, head, input_shape)
