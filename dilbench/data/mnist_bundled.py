"""A real MNIST subset shipped inside the package, so quickstarts and tests run without any download."""

import os
import zipfile
from pathlib import Path

import numpy as np

from dilbench.data.errors import DataError
from dilbench.data.mnist import CLASS_NAMES
from dilbench.data.source import Decoded, Source

FILE = Path(__file__).with_name("bundled") / "mnist_t10k.npz"
TRAIN_SIZE = 8000
DESCRIPTION = (
    "the 10,000 real MNIST test images shipped with dilbench: the first 8,000 as train, "
    "the last 2,000 as test (28x28x1, no download)"
)
IMAGE_SHAPE: tuple[int, int, int] | None = (28, 28, 1)
NUM_CLASSES: int | None = 10


def source(root: str | os.PathLike | None, download: bool) -> Source:
    """Always the bundled file: `root` and `download` do not apply."""
    del root, download
    return Source(str(FILE), (FILE,), _decode, cacheable=False)


def _decode() -> Decoded:
    try:
        with np.load(FILE, allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"].astype(np.int64)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"the bundled MNIST subset {FILE} is missing or damaged ({err}); reinstall dilbench") from err
    images = images[..., np.newaxis]
    return Decoded(
        x_train=images[:TRAIN_SIZE],
        y_train=labels[:TRAIN_SIZE],
        x_test=images[TRAIN_SIZE:],
        y_test=labels[TRAIN_SIZE:],
        class_names=CLASS_NAMES,
    )
