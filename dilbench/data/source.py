"""What a reader hands to the loader: decoded arrays, and a located copy that can produce them.

Separating *finding* data (cheap: stat a few paths) from *decoding* it (slow: gunzip, unpickle,
60,000 JPEGs) is what lets the cache skip the decode while still noticing a changed source.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True, eq=False)
class Decoded:
    """A whole data set as read from its source: uint8 NHWC images, int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    """A located copy of a data set.

    `description` is the path it is read from (shown to users, and naming its cache file);
    `files` lists every file `decode` reads, so their size and mtime can fingerprint the cache;
    `cacheable` is False for sources that are already a fast .npz (the bundled subset).
    """

    description: str
    files: tuple[Path, ...]
    decode: Callable[[], Decoded]
    cacheable: bool = True
