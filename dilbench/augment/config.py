"""The `augmentation:` section of a run config: a mode and a list of imgaug operations (docs/guides/augmentation.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dilbench.augment.ops import Op
from dilbench.typed.fields import key
from dilbench.typed.validate import FieldError


@dataclass(frozen=True)
class AugmentationConfig:
    """imgaug operations applied to training batches (docs/guides/augmentation.md; ops in dilbench/augment/ops.py)."""

    mode: Literal["none", "replace", "paired"] = key(
        "none", "none; replace: every training image is augmented in place; paired: each batch is half originals "
                "plus their augmented copies (batch_size must be even)")
    random_order: bool = key(False, "apply the top-level ops in a random order per image")
    ops: tuple[Op, ...] = key((), "imgaug operations, each a one-key mapping such as {fliplr: {p: 0.5}}, "
                                              "or an operation's name alone for its defaults")

    def __post_init__(self) -> None:
        if self.mode != "none" and not self.ops:
            raise FieldError("ops", f"mode {self.mode!r} needs at least one operation, e.g. ops: [{{fliplr: {{p: 0.5}}}}]")
