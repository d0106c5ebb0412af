"""The augmentation operations a config may list, each a typed dataclass plus its imgaug builder.

In YAML an operation is a one-key mapping, `- fliplr: {p: 1.0}`, so unknown operations and parameters
fail at config validation with the valid ones listed. Parameter names and defaults are imgaug 0.4's;
a number is a constant and a `[low, high]` range is sampled uniformly per image. Builders receive the
imgaug module from the caller, so this module imports neither imgaug nor TensorFlow.
Registering an operation is one dataclass, one builder and one line in OPS.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, Union

from dilbench.config.validate import FieldError, OneKey

Range = Union[float, tuple[float, float]]
IntRange = Union[int, tuple[int, int]]
PerChannel = Union[bool, float]  # false/true, or the probability of sampling per channel
PadMode = Literal["constant", "edge", "reflect", "symmetric", "wrap"]


def _bounds(obj: object, name: str, low: float, high: float = math.inf) -> None:
    """FieldError unless `name` (a number or a [low, high] range) is ordered and inside [low, high]."""
    value = getattr(obj, name)
    lo, hi = value if isinstance(value, tuple) else (value, value)
    shown = list(value) if isinstance(value, tuple) else value
    if lo > hi:
        raise FieldError(name, f"range {shown} is reversed; write [low, high]")
    if lo < low or hi > high:
        allowed = f">= {low}" if high == math.inf else f"in [{low}, {high}]"
        raise FieldError(name, f"must be {allowed}, got {shown}")


def _some_ops(obj: Any) -> None:
    if not obj.ops:
        raise FieldError("ops", f"{obj.name} needs at least one operation")


class AugmentOp(OneKey):
    kind: ClassVar[str] = "operation"


# ---- geometric -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fliplr(AugmentOp):
    """Mirror left-right with probability p."""

    name: Literal["fliplr"] = field(default="fliplr", init=False)
    p: float = 1.0

    def __post_init__(self) -> None:
        _bounds(self, "p", 0, 1)


@dataclass(frozen=True)
class Flipud(AugmentOp):
    """Mirror top-bottom with probability p."""

    name: Literal["flipud"] = field(default="flipud", init=False)
    p: float = 1.0

    def __post_init__(self) -> None:
        _bounds(self, "p", 0, 1)


@dataclass(frozen=True)
class Affine(AugmentOp):
    """Translate (x and y drawn independently, as fractions of the size), rotate and shear (degrees,
    shear along x) and scale (one factor for both axes); pixels outside are filled by `mode`/`cval`."""

    name: Literal["affine"] = field(default="affine", init=False)
    translate_percent: Range = 0.0
    rotate: Range = 0.0
    scale: Range = 1.0
    shear: Range = 0.0
    order: Literal[0, 1, 3] = 1  # interpolation: nearest, bilinear, bicubic
    mode: PadMode = "constant"
    cval: Range = 0.0

    def __post_init__(self) -> None:
        _bounds(self, "translate_percent", -1, 1)
        _bounds(self, "rotate", -360, 360)
        _bounds(self, "scale", 0.01, 100)
        _bounds(self, "shear", -80, 80)
        _bounds(self, "cval", 0, 255)


@dataclass(frozen=True)
class Crop(AugmentOp):
    """Crop each side by a fraction of the size (drawn per side), then resize back."""

    name: Literal["crop"] = field(default="crop", init=False)
    percent: Range = (0.0, 0.1)

    def __post_init__(self) -> None:
        _bounds(self, "percent", 0, 0.45)


@dataclass(frozen=True)
class Pad(AugmentOp):
    """Pad each side by a fraction of the size (drawn per side), then resize back."""

    name: Literal["pad"] = field(default="pad", init=False)
    percent: Range = (0.0, 0.1)
    pad_mode: PadMode = "constant"
    pad_cval: Range = 0.0

    def __post_init__(self) -> None:
        _bounds(self, "percent", 0, 1)
        _bounds(self, "pad_cval", 0, 255)


@dataclass(frozen=True)
class CropAndPad(AugmentOp):
    """Crop (negative fractions) or pad (positive) each side, then resize back."""

    name: Literal["crop_and_pad"] = field(default="crop_and_pad", init=False)
    percent: Range = (-0.1, 0.1)
    pad_mode: PadMode = "constant"
    pad_cval: Range = 0.0

    def __post_init__(self) -> None:
        _bounds(self, "percent", -0.45, 1)
        _bounds(self, "pad_cval", 0, 255)


# ---- pixel values ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianBlur(AugmentOp):
    name: Literal["gaussian_blur"] = field(default="gaussian_blur", init=False)
    sigma: Range = (0.0, 3.0)

    def __post_init__(self) -> None:
        _bounds(self, "sigma", 0)


@dataclass(frozen=True)
class AdditiveGaussianNoise(AugmentOp):
    """Add noise of standard deviation `scale`, in pixel values (0-255)."""

    name: Literal["additive_gaussian_noise"] = field(default="additive_gaussian_noise", init=False)
    scale: Range = (0.0, 15.0)
    per_channel: PerChannel = False

    def __post_init__(self) -> None:
        _bounds(self, "scale", 0, 255)
        _bounds(self, "per_channel", 0, 1)


@dataclass(frozen=True)
class Dropout(AugmentOp):
    """Set a fraction p of the pixels to zero."""

    name: Literal["dropout"] = field(default="dropout", init=False)
    p: Range = (0.0, 0.05)
    per_channel: PerChannel = False

    def __post_init__(self) -> None:
        _bounds(self, "p", 0, 1)
        _bounds(self, "per_channel", 0, 1)


@dataclass(frozen=True)
class LinearContrast(AugmentOp):
    """Scale each pixel's distance from mid-grey (128) by alpha."""

    name: Literal["linear_contrast"] = field(default="linear_contrast", init=False)
    alpha: Range = (0.6, 1.4)
    per_channel: PerChannel = False

    def __post_init__(self) -> None:
        _bounds(self, "alpha", 0)
        _bounds(self, "per_channel", 0, 1)


@dataclass(frozen=True)
class Multiply(AugmentOp):
    """Multiply pixel values by mul (brightness)."""

    name: Literal["multiply"] = field(default="multiply", init=False)
    mul: Range = (0.8, 1.2)
    per_channel: PerChannel = False

    def __post_init__(self) -> None:
        _bounds(self, "mul", 0)
        _bounds(self, "per_channel", 0, 1)


@dataclass(frozen=True)
class Cutout(AugmentOp):
    """Fill `nb_iterations` rectangles at random places, each `size` (a fraction of the image side)."""

    name: Literal["cutout"] = field(default="cutout", init=False)
    nb_iterations: IntRange = 1
    size: Range = 0.2
    squared: bool = True
    fill_mode: Literal["constant", "gaussian"] = "constant"
    cval: Range = 128.0
    fill_per_channel: PerChannel = False

    def __post_init__(self) -> None:
        _bounds(self, "nb_iterations", 0)
        _bounds(self, "size", 0, 1)
        _bounds(self, "cval", 0, 255)
        _bounds(self, "fill_per_channel", 0, 1)


@dataclass(frozen=True)
class Grayscale(AugmentOp):
    """Blend towards the grey image by alpha (1: fully grey). Grey (1-channel) images pass unchanged."""

    name: Literal["grayscale"] = field(default="grayscale", init=False)
    alpha: Range = 1.0

    def __post_init__(self) -> None:
        _bounds(self, "alpha", 0, 1)


# ---- combinators -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sometimes(AugmentOp):
    """With probability p, apply `ops` in sequence."""

    name: Literal["sometimes"] = field(default="sometimes", init=False)
    p: float = 0.5
    ops: tuple[Op, ...] = ()

    def __post_init__(self) -> None:
        _bounds(self, "p", 0, 1)
        _some_ops(self)


@dataclass(frozen=True)
class OneOf(AugmentOp):
    """Apply exactly one of `ops`, chosen uniformly per image."""

    name: Literal["one_of"] = field(default="one_of", init=False)
    ops: tuple[Op, ...] = ()

    def __post_init__(self) -> None:
        _some_ops(self)


@dataclass(frozen=True)
class SomeOf(AugmentOp):
    """Apply n of `ops` (a count or a [low, high] range drawn per image)."""

    name: Literal["some_of"] = field(default="some_of", init=False)
    n: IntRange = 1
    ops: tuple[Op, ...] = ()
    random_order: bool = False

    def __post_init__(self) -> None:
        _some_ops(self)
        _bounds(self, "n", 0, len(self.ops))


@dataclass(frozen=True)
class Sequence(AugmentOp):
    """Apply every one of `ops`, in the listed order or in a random order per image."""

    name: Literal["sequence"] = field(default="sequence", init=False)
    ops: tuple[Op, ...] = ()
    random_order: bool = False

    def __post_init__(self) -> None:
        _some_ops(self)


# ---- builders --------------------------------------------------------------------------------------
class BuildContext(Protocol):
    """What a builder may use: the imgaug.augmenters module, the image channels, nested ops."""

    iaa: Any
    channels: int

    def children(self, ops: tuple[Op, ...]) -> list[Any]: ...


def _affine(op: Affine, ctx: BuildContext) -> Any:
    """imgaug reads a tuple as a uniform range; the dict forms draw x and y separately."""
    return ctx.iaa.Affine(
        translate_percent={"x": op.translate_percent, "y": op.translate_percent}, rotate=op.rotate, scale=op.scale,
        shear={"x": op.shear, "y": 0.0}, order=op.order, mode=op.mode, cval=op.cval,
    )


@dataclass(frozen=True)
class OpEntry:
    config: type
    build: Callable[[Any, BuildContext], Any]  # (op config, context) -> imgaug augmenter


OPS: dict[str, OpEntry] = {
    "fliplr": OpEntry(Fliplr, lambda op, ctx: ctx.iaa.Fliplr(op.p)),
    "flipud": OpEntry(Flipud, lambda op, ctx: ctx.iaa.Flipud(op.p)),
    "affine": OpEntry(Affine, _affine),
    "crop": OpEntry(Crop, lambda op, ctx: ctx.iaa.Crop(percent=op.percent, keep_size=True)),
    "pad": OpEntry(Pad, lambda op, ctx: ctx.iaa.Pad(
        percent=op.percent, pad_mode=op.pad_mode, pad_cval=op.pad_cval, keep_size=True)),
    "crop_and_pad": OpEntry(CropAndPad, lambda op, ctx: ctx.iaa.CropAndPad(
        percent=op.percent, pad_mode=op.pad_mode, pad_cval=op.pad_cval, keep_size=True)),
    "gaussian_blur": OpEntry(GaussianBlur, lambda op, ctx: ctx.iaa.GaussianBlur(sigma=op.sigma)),
    "additive_gaussian_noise": OpEntry(AdditiveGaussianNoise, lambda op, ctx: ctx.iaa.AdditiveGaussianNoise(
        scale=op.scale, per_channel=op.per_channel)),
    "dropout": OpEntry(Dropout, lambda op, ctx: ctx.iaa.Dropout(p=op.p, per_channel=op.per_channel)),
    "linear_contrast": OpEntry(LinearContrast, lambda op, ctx: ctx.iaa.LinearContrast(
        alpha=op.alpha, per_channel=op.per_channel)),
    "multiply": OpEntry(Multiply, lambda op, ctx: ctx.iaa.Multiply(mul=op.mul, per_channel=op.per_channel)),
    "cutout": OpEntry(Cutout, lambda op, ctx: ctx.iaa.Cutout(
        nb_iterations=op.nb_iterations, size=op.size, squared=op.squared, fill_mode=op.fill_mode,
        cval=op.cval, fill_per_channel=op.fill_per_channel)),
    "grayscale": OpEntry(Grayscale, lambda op, ctx: (
        ctx.iaa.Grayscale(alpha=op.alpha) if ctx.channels == 3 else ctx.iaa.Identity())),
    "sometimes": OpEntry(Sometimes, lambda op, ctx: ctx.iaa.Sometimes(op.p, ctx.iaa.Sequential(ctx.children(op.ops)))),
    "one_of": OpEntry(OneOf, lambda op, ctx: ctx.iaa.OneOf(ctx.children(op.ops))),
    "some_of": OpEntry(SomeOf, lambda op, ctx: ctx.iaa.SomeOf(
        op.n, ctx.children(op.ops), random_order=op.random_order)),
    "sequence": OpEntry(Sequence, lambda op, ctx: ctx.iaa.Sequential(ctx.children(op.ops), random_order=op.random_order)),
}

Op = Union[tuple(entry.config for entry in OPS.values())]  # type: ignore[valid-type]
