"""load_dataset: locate, decode (or read the cache), then subset and hold out validation images."""

import difflib
import os
from pathlib import Path

import numpy as np

from dilbench.data import cache
from dilbench.data.config import DataConfig
from dilbench.data.dataset import Dataset
from dilbench.data.errors import DataError
from dilbench.data.registry import READERS
from dilbench.data.source import Source
from dilbench.data.split import hold_out, subset


def load_dataset(
    name: str,
    root: str | os.PathLike | None = None,
    *,
    train_subset: int | None = None,
    test_subset: int | None = None,
    validation: float | int = 0,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> Dataset:
    """Load data set `name` (a key of READERS) as in-memory uint8 NHWC arrays.

    root: a file or directory holding the data; when given it is the only place searched and
    nothing is downloaded. Otherwise $DILBENCH_DATA, then Keras's cache (~/.keras/datasets or
    $KERAS_HOME/datasets) are searched, then (if `download`) keras.utils.get_file fetches it.
    train_subset / test_subset: keep that many images, chosen class-balanced by `seed`.
    validation: a fraction in (0, 1) or a count of the (subsetted) training images to hold out
    into x_val / y_val, chosen by `seed`.
    cache_dir: where decoded arrays, and the SHA-256 of the source files, are kept (default $DILBENCH_CACHE
    or ~/.cache/dilbench).
    """
    source = locate_dataset(name, root, download)
    directory = Path(cache_dir).expanduser() if cache_dir is not None else cache.default_cache_dir()
    decoded = cache.load_or_decode(name, source, directory) if source.cacheable else source.decode()

    x_train, y_train = subset(decoded.x_train, decoded.y_train, train_subset, _rng(seed, 0), "train")
    x_test, y_test = subset(decoded.x_test, decoded.y_test, test_subset, _rng(seed, 1), "test")
    x_val, y_val = None, None
    if validation:
        x_train, y_train, x_val, y_val = hold_out(x_train, y_train, validation, _rng(seed, 2))
    return Dataset(
        name=name,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=decoded.class_names,
        source=source.description,
        digest=cache.source_digest(name, source, directory),
        x_val=x_val,  # type: ignore[arg-type]  # None: Dataset holds an empty split
        y_val=y_val,  # type: ignore[arg-type]
    )


def load_data(config: DataConfig, seed: int) -> Dataset:
    """The data set a run config's `data:` section describes, subsets and validation split drawn by `seed`."""
    return load_dataset(config.dataset, config.root, train_subset=config.train_subset, test_subset=config.test_subset,
                        validation=config.validation, seed=seed)


def locate_dataset(name: str, root: str | os.PathLike | None = None, download: bool = True) -> Source:
    """Find (or download) data set `name` without decoding it: cheap, so a sweep checks its data up front."""
    reader = READERS.get(name)
    if reader is None:
        close = difflib.get_close_matches(str(name), READERS, n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise DataError(f"unknown dataset {name!r}; {hint}choose one of {', '.join(READERS)}")
    return reader.source(root, download)


def _rng(seed: int, stream: int) -> np.random.Generator:
    """Independent streams per use, so changing test_subset never changes the training subset."""
    return np.random.default_rng([seed, stream])
