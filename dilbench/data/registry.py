"""The data sets dilbench can load: config name -> reader.

A reader says what the data set is (DESCRIPTION, and its IMAGE_SHAPE and NUM_CLASSES, so `summary` and
`bench` need no data on disk) and where to find it (source(root, download) -> Source, whose `decode`
gives the arrays). A data set, built in or from a plugin, is registered with `register_dataset`
(public as `dilbench.plugins.register_dataset`); the built-in ones are a reader module each.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from dilbench.data import cifar10, imagefolder, mnist, mnist_bundled
from dilbench.data.source import Source
from dilbench.registry import Registry, check_callable, check_description
from dilbench.typed.registry import RegistryError


@dataclass(frozen=True)
class Reader:
    """A registered data set: what the rest of dilbench asks about it (the names a built-in reader module has)."""

    DESCRIPTION: str
    IMAGE_SHAPE: tuple[int, int, int] | None
    NUM_CLASSES: int | None
    source: Callable[[str | os.PathLike | None, bool], Source]


def _check(name: str, reader: Reader) -> None:
    check_description(reader.DESCRIPTION, "data set", name)
    check_callable(reader.source, "data set", name, "source")
    shape, classes = reader.IMAGE_SHAPE, reader.NUM_CLASSES
    if shape is not None and not (isinstance(shape, tuple) and len(shape) == 3
                                  and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        raise RegistryError(f"data set {name!r}: image_shape {shape!r} is not (height, width, channels)",
                            "give three positive ints, or None when it depends on the files")
    if classes is not None and not (isinstance(classes, int) and not isinstance(classes, bool) and classes > 0):
        raise RegistryError(f"data set {name!r}: num_classes {classes!r} is not a positive int",
                            "give the number of classes, or None when it depends on the files")


READERS: Registry[Reader] = Registry("data set", _check)


def register_dataset(name: str, source: Callable[[str | os.PathLike | None, bool], Source], *, description: str,
                     image_shape: tuple[int, int, int] | None = None, num_classes: int | None = None) -> None:
    """Register data set `name`: `source(root, download)` returns a Source (its `decode()` gives the uint8
    NHWC images and int64 labels as a Decoded; `root` is the config's data.root); `description` one line;
    `image_shape` (H, W, C) and `num_classes`, or None when they depend on the files.
    RegistryError if the name is taken or a value is malformed."""
    READERS.add(name, Reader(description, image_shape, num_classes, source), getattr(source, "__module__", None) or "")


for _name, _module in (("mnist", mnist), ("cifar10", cifar10), ("imagefolder", imagefolder), ("mnist_bundled", mnist_bundled)):
    register_dataset(_name, _module.source, description=_module.DESCRIPTION, image_shape=_module.IMAGE_SHAPE,
                     num_classes=_module.NUM_CLASSES)

# name -> one-line description of the built-in data sets (read READERS for the live set, plugins' included).
DATASETS: dict[str, str] = {name: reader.DESCRIPTION for name, reader in READERS.current().items()}
