"""A toy data set: tiny random uint8 images of 3 classes, made in memory."""

from __future__ import annotations

import os

import numpy as np

from dilbench.plugins import Decoded, Source, register_dataset

DESCRIPTION = "48 train / 16 test random 8x8x1 images of 3 classes, for the registry test"
SHAPE, CLASSES, TRAIN, TEST = (8, 8, 1), 3, 48, 16


def source(root: str | os.PathLike | None, download: bool) -> Source:
    """Always the same seeded arrays: `root` and `download` do not apply."""
    del root, download
    return Source("toy random images", (), _decode, cacheable=False)


def _decode() -> Decoded:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (TRAIN + TEST, *SHAPE), dtype=np.uint8)
    labels = np.arange(TRAIN + TEST, dtype=np.int64) % CLASSES
    return Decoded(images[:TRAIN], labels[:TRAIN], images[TRAIN:], labels[TRAIN:], class_names=("a", "b", "c"))


def register() -> None:
    register_dataset("toy_random", source, description=DESCRIPTION, image_shape=SHAPE, num_classes=CLASSES)
