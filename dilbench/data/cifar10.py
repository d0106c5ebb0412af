"""CIFAR-10 from the official python archive (pickled batches) or an ImageFolder of its ten classes."""

import io
import os
import pickle
import tarfile
import zlib
from dataclasses import replace
from pathlib import Path, PurePosixPath

import numpy as np

from dilbench.data import imagefolder
from dilbench.data.errors import DataError
from dilbench.data.locate import keras_download, locate
from dilbench.data.source import Decoded, Source

DESCRIPTION = (
    "CIFAR-10, 50,000 train / 10,000 test, 32x32x3 (official cifar-10-python.tar.gz, its extracted "
    "cifar-10-batches-py/, or an ImageFolder of the ten classes such as cifar10-jpeg.tar.gz)"
)
# The CIFAR-10 label order, which is also the alphabetical order ImageFolder labels follow.
CLASS_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
IMAGE_SHAPE: tuple[int, int, int] | None = (32, 32, 3)
NUM_CLASSES: int | None = 10
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
BATCH_DIR = "cifar-10-batches-py"
# Where an extracted copy sits: the archive's own folder, and Keras 3's extraction folder.
BATCH_DIRS = (BATCH_DIR, f"{BATCH_DIR}-target/{BATCH_DIR}")
TRAIN_BATCHES = tuple(f"data_batch_{index}" for index in range(1, 6))
TEST_BATCH = "test_batch"
IMAGEFOLDER_NAMES = tuple(stem + suffix for stem in ("cifar10-jpeg", "cifar10") for suffix in imagefolder.ARCHIVE_SUFFIXES)
ACCEPTS = (
    f"{ARCHIVE_NAME}, its extracted {BATCH_DIR}/, or an ImageFolder of the ten classes: a directory "
    f"with train/<class>/ and test/<class>/, or an archive cifar10-jpeg or cifar10 {'/'.join(imagefolder.ARCHIVE_SUFFIXES)}"
)


def source(root: str | os.PathLike | None, download: bool) -> Source:
    """Locate CIFAR-10 (see dilbench.data.locate for the search order)."""
    return locate("cifar10", root, find=find, from_file=from_file, accepts=ACCEPTS, fetch=_fetch, download=download)


def find(directory: Path) -> Source | None:
    """CIFAR-10 in `directory`, preferring the original pickled batches over an ImageFolder copy."""
    if (directory / ARCHIVE_NAME).is_file():
        return pickled_archive_source(directory / ARCHIVE_NAME)
    for batch_dir in BATCH_DIRS:
        if (directory / batch_dir).is_dir():
            return pickled_dir_source(directory / batch_dir)
    for name in IMAGEFOLDER_NAMES:
        if (directory / name).is_file():
            return _as_cifar(imagefolder.archive_source(directory / name))
    if imagefolder.is_tree(directory):
        return _as_cifar(imagefolder.tree_source(directory))
    return None


def from_file(path: Path) -> Source:
    """A file given as root: the official archive (under any name) or an ImageFolder archive."""
    if not imagefolder.is_archive(path):
        raise DataError(f"{path} is not a CIFAR-10 file; expected {ACCEPTS}")
    if not path.name.lower().endswith(".zip") and _is_pickled_archive(path):
        return pickled_archive_source(path)
    return _as_cifar(imagefolder.archive_source(path))


def pickled_archive_source(path: Path) -> Source:
    return Source(str(path), (path,), lambda: _decode_batches(str(path), _archive_batches(path)))


def pickled_dir_source(directory: Path) -> Source:
    paths = [directory / name for name in (*TRAIN_BATCHES, TEST_BATCH)]
    files = tuple(path for path in paths if path.is_file())
    return Source(str(directory), files, lambda: _decode_batches(str(directory), {p.name: p.read_bytes() for p in files}))


def _is_pickled_archive(path: Path) -> bool:
    """Peek at the first member: the official archive starts with cifar-10-batches-py/."""
    try:
        with tarfile.open(path, "r|*") as archive:
            first = archive.next()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise DataError(f"corrupt or truncated archive {path} ({err}); re-download it") from err
    if first is None:
        raise DataError(f"empty archive {path}; re-download it")
    member = PurePosixPath(first.name)
    return BATCH_DIR in member.parts or member.name in (*TRAIN_BATCHES, TEST_BATCH)


def _archive_batches(path: Path) -> dict[str, bytes]:
    wanted = {*TRAIN_BATCHES, TEST_BATCH}
    blobs = {}
    try:
        with tarfile.open(path, "r|*") as archive:
            for member in archive:
                name = PurePosixPath(member.name).name
                if member.isfile() and name in wanted:
                    blobs[name] = archive.extractfile(member).read()  # type: ignore[union-attr]  # a regular file has one
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise DataError(f"corrupt or truncated archive {path} ({err}); re-download it") from err
    return blobs


def _decode_batches(where: str, blobs: dict[str, bytes]) -> Decoded:
    missing = [name for name in (*TRAIN_BATCHES, TEST_BATCH) if name not in blobs]
    if missing:
        raise DataError(f"incomplete CIFAR-10 in {where}: missing {', '.join(missing)}; re-download {ARCHIVE_NAME}")
    train = [_read_batch(blobs[name], f"{where}/{name}") for name in TRAIN_BATCHES]
    x_test, y_test = _read_batch(blobs[TEST_BATCH], f"{where}/{TEST_BATCH}")
    return Decoded(
        x_train=np.concatenate([images for images, _ in train]),
        y_train=np.concatenate([labels for _, labels in train]),
        x_test=np.ascontiguousarray(x_test),
        y_test=y_test,
        class_names=CLASS_NAMES,
    )


def _read_batch(blob: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch: {b"data": (N, 3072) uint8 as R,G,B planes, b"labels": [N ints]}."""
    try:
        batch = _BatchUnpickler(io.BytesIO(blob), encoding="bytes").load()
        data, labels = np.asarray(batch[b"data"]), np.asarray(batch[b"labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise DataError(f"corrupt CIFAR-10 batch {where} ({err!r}); re-download {ARCHIVE_NAME}") from err
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (len(data),):
        raise DataError(
            f"corrupt CIFAR-10 batch {where}: data is {data.dtype}{data.shape} with {labels.size} labels, "
            f"expected uint8 (N, 3072) with N labels; re-download {ARCHIVE_NAME}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
        raise DataError(f"corrupt CIFAR-10 batch {where}: labels outside 0-9; re-download {ARCHIVE_NAME}")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


class _BatchUnpickler(pickle.Unpickler):
    """Loads only what CIFAR batches hold (NumPy arrays): a pickle can otherwise run any code."""

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),  # pickled by NumPy 1 (the official files)
            ("numpy._core.multiarray", "_reconstruct"),  # pickled by NumPy 2
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),  # Python 3 bytes in protocol 2
        }
    )

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}, which a CIFAR batch never holds")
        return super().find_class(module, name)


def _as_cifar(folder: Source) -> Source:
    """An ImageFolder source that must hold exactly the CIFAR-10 classes and 32x32 RGB images."""

    def decode() -> Decoded:
        decoded = folder.decode()
        if decoded.class_names != CLASS_NAMES:
            raise DataError(
                f"{folder.description} is not a CIFAR-10 ImageFolder: its classes are "
                f"{' '.join(decoded.class_names)}, expected exactly {' '.join(CLASS_NAMES)}; "
                "use dataset imagefolder for other classes"
            )
        if decoded.x_train.shape[1:] != IMAGE_SHAPE:
            raise DataError(
                f"{folder.description} is not a CIFAR-10 ImageFolder: its images are "
                f"{decoded.x_train.shape[1:]}, expected 32x32 RGB (32, 32, 3)"
            )
        return decoded

    return replace(folder, decode=decode)


def _fetch() -> Path:
    return keras_download(ARCHIVE_NAME, URL, SHA256)
