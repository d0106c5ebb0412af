"""The augmentation operations a config may list, each a typed dataclass plus its imgaug builder.

In YAML an operation is a one-key mapping, `- fliplr: {p: 1.0}`, so unknown operations and parameters
fail at config validation with the valid ones listed. Parameter names and defaults are imgaug 0.4's;
a number is a constant and a `[low, high]` range is sampled uniformly per image. Builders receive the
imgaug module from the caller, so this module imports neither imgaug nor TensorFlow.
An operation, built in or from a plugin, is registered with `register_augmentation` (public as
`dilbench.plugins.register_augmentation`): a frozen dataclass subclassing AugmentOp and its builder.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Protocol, Union

from dilbench.registry import Registry, check_callable
from dilbench.typed.fields import key
from dilbench.typed.registry import RegistryError, check_config
from dilbench.typed.validate import FieldError, OneKey

Range = Union[float, tuple[float, float]]
IntRange = Union[int, tuple[int, int]]
PerChannel = Union[bool, float]  # false/true, or the probability of sampling per channel
PadMode = Literal["constant", "edge", "reflect", "symmetric", "wrap"]
PER_CHANNEL = "true/false, or the probability of sampling per channel"


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
    """The base of every augmentation operation's config dataclass. As an annotation (`tuple[AugmentOp, ...]`)
    it stands for every operation registered when validation runs, plugins' included."""

    kind: ClassVar[str] = "operation"

    @classmethod
    def registered_variants(cls) -> tuple[type[OneKey], ...]:
        return tuple(entry.config for entry in OPS.values())


Op = AugmentOp  # any registered operation


# ---- geometric -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fliplr(AugmentOp):
    """Mirror left-right with probability p."""

    name: Literal["fliplr"] = field(default="fliplr", init=False)
    p: float = key(1.0, "probability of mirroring left-right, in [0, 1]")

    def __post_init__(self) -> None:
        _bounds(self, "p", 0, 1)


@dataclass(frozen=True)
class Flipud(AugmentOp):
    """Mirror top-bottom with probability p."""

    name: Literal["flipud"] = field(default="flipud", init=False)
    p: float = key(1.0, "probability of mirroring top-bottom, in [0, 1]")

    def __post_init__(self) -> None:
        _bounds(self, "p", 0, 1)


@dataclass(frozen=True)
class Affine(AugmentOp):
    """Translate (x and y drawn independently, as fractions of the size), rotate and shear (degrees,
    shear along x) and scale (one factor for both axes); pixels outside are filled by `mode`/`cval`."""

    name: Literal["affine"] = field(default="affine", init=False)
    translate_percent: Range = key(0.0, "translation as a fraction of the size, x and y drawn separately, in [-1, 1]")
    rotate: Range = key(0.0, "rotation in degrees, in [-360, 360]")
    scale: Range = key(1.0, "scale factor for both axes, in [0.01, 100]")
    shear: Range = key(0.0, "shear along x in degrees, in [-80, 80]")
    order: Literal[0, 1, 3] = key(1, "interpolation: 0 nearest, 1 bilinear, 3 bicubic")
    mode: PadMode = key("constant", "how pixels outside the image are filled: constant, edge, reflect, symmetric or wrap")
    cval: Range = key(0.0, "fill value with mode constant, in [0, 255]")

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
    percent: Range = key((0.0, 0.1), "fraction cut from each side, drawn per side, in [0, 0.45]")

    def __post_init__(self) -> None:
        _bounds(self, "percent", 0, 0.45)


@dataclass(frozen=True)
class Pad(AugmentOp):
    """Pad each side by a fraction of the size (drawn per side), then resize back."""

    name: Literal["pad"] = field(default="pad", init=False)
    percent: Range = key((0.0, 0.1), "fraction added to each side, drawn per side, in [0, 1]")
    pad_mode: PadMode = key("constant", "how the padding is filled: constant, edge, reflect, symmetric or wrap")
    pad_cval: Range = key(0.0, "padding value with pad_mode constant, in [0, 255]")

    def __post_init__(self) -> None:
        _bounds(self, "percent", 0, 1)
        _bounds(self, "pad_cval", 0, 255)


@dataclass(frozen=True)
class CropAndPad(AugmentOp):
    """Crop (negative fractions) or pad (positive) each side, then resize back."""

    name: Literal["crop_and_pad"] = field(default="crop_and_pad", init=False)
    percent: Range = key((-0.1, 0.1), "fraction of each side: negative crops, positive pads, in [-0.45, 1]")
    pad_mode: PadMode = key("constant", "how the padding is filled: constant, edge, reflect, symmetric or wrap")
    pad_cval: Range = key(0.0, "padding value with pad_mode constant, in [0, 255]")

    def __post_init__(self) -> None:
        _bounds(self, "percent", -0.45, 1)
        _bounds(self, "pad_cval", 0, 255)


# ---- pixel values ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class GaussianBlur(AugmentOp):
    """Blur with a Gaussian kernel of standard deviation sigma (pixels)."""

    name: Literal["gaussian_blur"] = field(default="gaussian_blur", init=False)
    sigma: Range = key((0.0, 3.0), "standard deviation of the Gaussian kernel in pixels, >= 0")

    def __post_init__(self) -> None:
        _bounds(self, "sigma", 0)


@dataclass(frozen=True)
class AdditiveGaussianNoise(AugmentOp):
    """Add noise of standard deviation `scale`, in pixel values (0-255)."""

    name: Literal["additive_gaussian_noise"] = field(default="additive_gaussian_noise", init=False)
    scale: Range = key((0.0, 15.0), "standard deviation of the noise in pixel values, in [0, 255]")
    per_channel: PerChannel = key(False, PER_CHANNEL)

    def __post_init__(self) -> None:
        _bounds(self, "scale", 0, 255)
        _bounds(self, "per_channel", 0, 1)


@dataclass(frozen=True)
class Dropout(AugmentOp):
    """Set a fraction p of the pixels to zero."""

    name: Literal["dropout"] = field(default="dropout", init=False)
    p: Range = key((0.0, 0.05), "fraction of pixels set to 0, in [0, 1]")
    per_channel: PerChannel = key(False, PER_CHANNEL)

    def __post_init__(self) -> None:
        _bounds(self, "p", 0, 1)
        _bounds(self, "per_channel", 0, 1)


@dataclass(frozen=True)
class LinearContrast(AugmentOp):
    """Scale each pixel's distance from mid-grey (128) by alpha."""

    name: Literal["linear_contrast"] = field(default="linear_contrast", init=False)
    alpha: Range = key((0.6, 1.4), "contrast factor, >= 0 (1: unchanged)")
    per_channel: PerChannel = key(False, PER_CHANNEL)

    def __post_init__(self) -> None:
        _bounds(self, "alpha", 0)
        _bounds(self, "per_channel", 0, 1)


@dataclass(frozen=True)
class Multiply(AugmentOp):
    """Multiply pixel values by mul (brightness)."""

    name: Literal["multiply"] = field(default="multiply", init=False)
    mul: Range = key((0.8, 1.2), "brightness factor, >= 0 (1: unchanged)")
    per_channel: PerChannel = key(False, PER_CHANNEL)

    def __post_init__(self) -> None:
        _bounds(self, "mul", 0)
        _bounds(self, "per_channel", 0, 1)


@dataclass(frozen=True)
class Cutout(AugmentOp):
    """Fill `nb_iterations` rectangles at random places, each `size` (a fraction of the image side)."""

    name: Literal["cutout"] = field(default="cutout", init=False)
    nb_iterations: IntRange = key(1, "number of rectangles, >= 0")
    size: Range = key(0.2, "rectangle size as a fraction of the image side, in [0, 1]")
    squared: bool = key(True, "square rectangles (else height and width are drawn separately)")
    fill_mode: Literal["constant", "gaussian"] = key("constant", "fill with cval (constant) or with Gaussian noise")
    cval: Range = key(128.0, "fill value with fill_mode constant, in [0, 255]")
    fill_per_channel: PerChannel = key(False, "true/false, or the probability of filling per channel")

    def __post_init__(self) -> None:
        _bounds(self, "nb_iterations", 0)
        _bounds(self, "size", 0, 1)
        _bounds(self, "cval", 0, 255)
        _bounds(self, "fill_per_channel", 0, 1)


@dataclass(frozen=True)
class Grayscale(AugmentOp):
    """Blend towards the grey image by alpha (1: fully grey). Grey (1-channel) images pass unchanged."""

    name: Literal["grayscale"] = field(default="grayscale", init=False)
    alpha: Range = key(1.0, "blend towards grey, in [0, 1] (1: fully grey)")

    def __post_init__(self) -> None:
        _bounds(self, "alpha", 0, 1)


# ---- combinators -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sometimes(AugmentOp):
    """With probability p, apply `ops` in sequence."""

    name: Literal["sometimes"] = field(default="sometimes", init=False)
    p: float = key(0.5, "probability of applying ops, in [0, 1]")
    ops: tuple[Op, ...] = key((), "operations applied in sequence (at least one)")

    def __post_init__(self) -> None:
        _bounds(self, "p", 0, 1)
        _some_ops(self)


@dataclass(frozen=True)
class OneOf(AugmentOp):
    """Apply exactly one of `ops`, chosen uniformly per image."""

    name: Literal["one_of"] = field(default="one_of", init=False)
    ops: tuple[Op, ...] = key((), "operations to choose one of per image (at least one)")

    def __post_init__(self) -> None:
        _some_ops(self)


@dataclass(frozen=True)
class SomeOf(AugmentOp):
    """Apply n of `ops` (a count or a [low, high] range drawn per image)."""

    name: Literal["some_of"] = field(default="some_of", init=False)
    n: IntRange = key(1, "how many of ops to apply: a count or a [low, high] range drawn per image")
    ops: tuple[Op, ...] = key((), "operations to choose from (at least one)")
    random_order: bool = key(False, "apply the chosen ops in a random order per image")

    def __post_init__(self) -> None:
        _some_ops(self)
        _bounds(self, "n", 0, len(self.ops))


@dataclass(frozen=True)
class Sequence(AugmentOp):
    """Apply every one of `ops`, in the listed order or in a random order per image."""

    name: Literal["sequence"] = field(default="sequence", init=False)
    ops: tuple[Op, ...] = key((), "operations to apply, every one (at least one)")
    random_order: bool = key(False, "apply ops in a random order per image (else in the listed order)")

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


def _check(name: str, entry: OpEntry) -> None:
    if not (isinstance(entry.config, type) and issubclass(entry.config, AugmentOp)):
        raise RegistryError(f"augmentation op {name!r}: its config {entry.config!r} does not subclass "
                            f"dilbench.plugins.AugmentOp", "declare it as @dataclass(frozen=True) class X(AugmentOp)")
    check_config(entry.config, name, "augmentation op", one_key=True, construct=False)
    check_callable(entry.build, "augmentation op", name, "builder")


OPS: Registry[OpEntry] = Registry("augmentation op", _check)


def register_augmentation(name: str, config: type, build: Callable[[Any, BuildContext], Any]) -> None:
    """Register augmentation operation `name`: `config` a frozen dataclass subclassing AugmentOp, with
    `name: Literal[name] = field(default=name, init=False)` and a default for every parameter (its docstring
    describes it); `build(op, ctx)` returns the imgaug augmenter of config `op` (ctx.iaa is
    imgaug.augmenters, ctx.channels the image channels, ctx.children(ops) builds nested operations).
    RegistryError if the name is taken or the config cannot be validated."""
    OPS.add(name, OpEntry(config, build), getattr(config, "__module__", ""))


register_augmentation("fliplr", Fliplr, lambda op, ctx: ctx.iaa.Fliplr(op.p))
register_augmentation("flipud", Flipud, lambda op, ctx: ctx.iaa.Flipud(op.p))
register_augmentation("affine", Affine, _affine)
register_augmentation("crop", Crop, lambda op, ctx: ctx.iaa.Crop(percent=op.percent, keep_size=True))
register_augmentation("pad", Pad, lambda op, ctx: ctx.iaa.Pad(
    percent=op.percent, pad_mode=op.pad_mode, pad_cval=op.pad_cval, keep_size=True))
register_augmentation("crop_and_pad", CropAndPad, lambda op, ctx: ctx.iaa.CropAndPad(
    percent=op.percent, pad_mode=op.pad_mode, pad_cval=op.pad_cval, keep_size=True))
register_augmentation("gaussian_blur", GaussianBlur, lambda op, ctx: ctx.iaa.GaussianBlur(sigma=op.sigma))
register_augmentation("additive_gaussian_noise", AdditiveGaussianNoise, lambda op, ctx: ctx.iaa.AdditiveGaussianNoise(
    scale=op.scale, per_channel=op.per_channel))
register_augmentation("dropout", Dropout, lambda op, ctx: ctx.iaa.Dropout(p=op.p, per_channel=op.per_channel))
register_augmentation("linear_contrast", LinearContrast, lambda op, ctx: ctx.iaa.LinearContrast(
    alpha=op.alpha, per_channel=op.per_channel))
register_augmentation("multiply", Multiply, lambda op, ctx: ctx.iaa.Multiply(mul=op.mul, per_channel=op.per_channel))
register_augmentation("cutout", Cutout, lambda op, ctx: ctx.iaa.Cutout(
    nb_iterations=op.nb_iterations, size=op.size, squared=op.squared, fill_mode=op.fill_mode,
    cval=op.cval, fill_per_channel=op.fill_per_channel))
register_augmentation("grayscale", Grayscale, lambda op, ctx: (
    ctx.iaa.Grayscale(alpha=op.alpha) if ctx.channels == 3 else ctx.iaa.Identity()))
register_augmentation("sometimes", Sometimes, lambda op, ctx: ctx.iaa.Sometimes(op.p, ctx.iaa.Sequential(ctx.children(op.ops))))
register_augmentation("one_of", OneOf, lambda op, ctx: ctx.iaa.OneOf(ctx.children(op.ops)))
register_augmentation("some_of", SomeOf, lambda op, ctx: ctx.iaa.SomeOf(
    op.n, ctx.children(op.ops), random_order=op.random_order))
register_augmentation("sequence", Sequence, lambda op, ctx: ctx.iaa.Sequential(ctx.children(op.ops), random_order=op.random_order))
