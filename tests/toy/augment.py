"""A toy augmentation operation: invert the image (255 - pixel) with probability p."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dilbench.plugins import AugmentOp, BuildContext, FieldError, key, register_augmentation


@dataclass(frozen=True)
class ToyInvert(AugmentOp):
    """Invert the image (255 - pixel) with probability p."""

    name: Literal["toy_invert"] = field(default="toy_invert", init=False)
    p: float = key(1.0, "probability of inverting, in [0, 1]")

    def __post_init__(self) -> None:
        if not 0 <= self.p <= 1:
            raise FieldError("p", f"must be in [0, 1], got {self.p}")


def build(op: ToyInvert, ctx: BuildContext) -> Any:
    return ctx.iaa.Invert(op.p)


def register() -> None:
    register_augmentation("toy_invert", ToyInvert, build)
