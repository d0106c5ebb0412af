"""The Dataset value every consumer (pipeline, trainer, tests) works with."""

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    """In-memory images and labels of one data set, ready for a tf.data pipeline.

    Images are uint8 NHWC (MNIST (N, 28, 28, 1), CIFAR-10 (N, 32, 32, 3)); labels are int64 (N,)
    indices into `class_names`. `x_val`/`y_val` hold the validation images held out of the training
    set (empty, shape (0, H, W, C), when none were asked for); they may be omitted when building a
    Dataset by hand. `source` says where the data was read from, for logs and run metadata, and `digest`
    which bytes (the files' sizes and SHA-256).
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str
    x_val: np.ndarray = None  # type: ignore[assignment]  # None: nothing held out; __post_init__ makes it empty
    y_val: np.ndarray = None  # type: ignore[assignment]  # as x_val
    digest: dict[str, Any] | None = None  # the source files read: path, size, sha256 (cache.source_digest); None if unknown

    def __post_init__(self) -> None:
        if self.x_val is None:
            object.__setattr__(self, "x_val", np.empty((0, *self.image_shape), dtype=np.uint8))
        if self.y_val is None:
            object.__setattr__(self, "y_val", np.empty((0,), dtype=np.int64))
        for split in ("train", "test", "val"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != np.uint8 or x.shape[1:] != self.image_shape:
                raise ValueError(f"x_{split} must be uint8 {('N', *self.image_shape)}, got {x.dtype} {x.shape}")
            if y.dtype != np.int64 or y.shape != (len(x),):
                raise ValueError(f"y_{split} must be int64 ({len(x)},), got {y.dtype} {y.shape}")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of every image."""
        if self.x_train.ndim != 4:
            raise ValueError(f"x_train must be NHWC (4-D), got shape {self.x_train.shape}")
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, image_shape={self.image_shape}, classes={self.num_classes}, "
            f"source={self.source!r})"
        )
