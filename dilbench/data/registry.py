"""The data sets dilbench can load: config name -> reader module.

A reader module is the registry entry: it says what the data set is (DESCRIPTION, and its IMAGE_SHAPE
and NUM_CLASSES, so `summary` and `bench` need no data on disk) and where to find it
(source(root, download) -> Source). Adding a data set is one new module plus one line here.
"""

from __future__ import annotations

import os
from typing import Protocol

from dilbench.data import cifar10, imagefolder, mnist, mnist_bundled
from dilbench.data.source import Source


class DatasetReader(Protocol):
    """What the rest of dilbench asks about a data set (modules satisfy it with module-level names)."""

    DESCRIPTION: str  # one line, shown to users
    IMAGE_SHAPE: tuple[int, int, int] | None  # (H, W, C); None when it depends on the files (imagefolder)
    NUM_CLASSES: int | None  # None when it depends on the files

    def source(self, root: str | os.PathLike | None, download: bool) -> Source: ...


READERS: dict[str, DatasetReader] = {
    "mnist": mnist,
    "cifar10": cifar10,
    "imagefolder": imagefolder,
    "mnist_bundled": mnist_bundled,
}

# name -> one-line description, for `--help` listings (built at import: read READERS for the live set).
DATASETS: dict[str, str] = {name: reader.DESCRIPTION for name, reader in READERS.items()}
