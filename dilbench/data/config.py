"""The `data:` section of a run config: which data set, where, and which part of it a run uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from dilbench.data.registry import READERS
from dilbench.typed.checks import non_negative, positive
from dilbench.typed.fields import key
from dilbench.typed.validate import FieldError


@dataclass(frozen=True)
class DataConfig:
    """The data set and which part of it a run uses (docs/guides/data.md)."""

    # Annotations are evaluated when validation reads them (typing.get_type_hints), not at import: the
    # choices are the registry's at that time, so a data set registered later validates too.
    dataset: Literal[tuple(READERS)] = key(  # type: ignore[valid-type]
        "mnist", "the data set: mnist, cifar10, imagefolder, or mnist_bundled (the MNIST sample shipped with dilbench)")
    root: str | None = key(None, "file or directory holding the data; if null, $DILBENCH_DATA, then Keras's cache")
    train_subset: int | None = key(None, "use only this many training images (a seeded random subset); null: all")
    test_subset: int | None = key(None, "use only this many test images; null: all")
    validation: float = key(0.0, "hold out this fraction (<1) or count (>=1) of the training images as a validation split")

    def __post_init__(self) -> None:
        positive(self, "train_subset", "test_subset")
        non_negative(self, "validation")
        if self.validation >= 1 and self.validation != int(self.validation):
            raise FieldError("validation", f"a fraction below 1 or a whole count, got {self.validation}")
