"""MNIST from the four canonical IDX files (gzipped or not) or Keras's mnist.npz."""

import gzip
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from dilbench.data.errors import DataError
from dilbench.data.locate import keras_download, locate
from dilbench.data.source import Decoded, Source

DESCRIPTION = "MNIST handwritten digits, 60,000 train / 10,000 test, 28x28x1 (IDX files or mnist.npz)"
IMAGE_SHAPE: tuple[int, int, int] | None = (28, 28, 1)
NUM_CLASSES: int | None = 10
CLASS_NAMES = tuple(str(digit) for digit in range(10))
URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
NPZ_NAME = "mnist.npz"
# Field of Decoded -> IDX file stem; each is accepted as stem.gz or stem.
IDX_STEMS = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
ACCEPTS = f"{', '.join(stem + '.gz' for stem in IDX_STEMS.values())} (or uncompressed), or {NPZ_NAME}"


def source(root: str | os.PathLike | None, download: bool) -> Source:
    """Locate MNIST (see dilbench.data.locate for the search order)."""
    return locate("mnist", root, find=find, from_file=from_file, accepts=ACCEPTS, fetch=_fetch, download=download)


def find(directory: Path) -> Source | None:
    """MNIST in `directory`: the four IDX files if any are there, else mnist.npz."""
    idx = {field: _idx_file(directory, stem) for field, stem in IDX_STEMS.items()}
    present = {field: path for field, path in idx.items() if path is not None}
    if len(present) == len(IDX_STEMS):
        files = tuple(present.values())
        return Source(str(directory), files, lambda: read_idx_set(present))
    if present:
        missing = [IDX_STEMS[field] + "[.gz]" for field in IDX_STEMS if field not in present]
        raise DataError(
            f"incomplete MNIST in {directory}: missing {', '.join(missing)}; put all four IDX files there (or re-download them)"
        )
    npz = directory / NPZ_NAME
    return from_file(npz) if npz.is_file() else None


def from_file(path: Path) -> Source:
    """A file given as root: an .npz, or one IDX file whose three siblings sit next to it."""
    if path.suffix == ".npz":
        return Source(str(path), (path,), lambda: read_npz(path))
    if path.name.removesuffix(".gz") in IDX_STEMS.values():
        found = find(path.parent)
        if found is not None:
            return found
    raise DataError(f"{path} is not an MNIST file; expected {ACCEPTS}")


def read_idx_set(paths: dict[str, Path]) -> Decoded:
    """Read the four IDX files and check that images and labels agree."""
    arrays = {field: read_idx(path, IMAGES_MAGIC if field.startswith("x") else LABELS_MAGIC) for field, path in paths.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if len(images) != len(labels):
            raise DataError(
                f"MNIST files disagree: {paths[f'x_{split}']} holds {len(images)} images but "
                f"{paths[f'y_{split}']} holds {len(labels)} labels; re-download them"
            )
        _check_labels(labels, paths[f"y_{split}"])
    return _decoded(arrays)


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Read one IDX file of unsigned bytes: (count, rows, cols) images or (count,) labels."""
    raw = _read_bytes(path)
    header_size = 16 if magic == IMAGES_MAGIC else 8
    if len(raw) < header_size:
        raise DataError(f"corrupt MNIST file {path}: {len(raw)} bytes is too short for an IDX header; re-download it")
    found_magic, count = struct.unpack(">II", raw[:8])
    if found_magic != magic:
        kind = "images" if magic == IMAGES_MAGIC else "labels"
        raise DataError(
            f"corrupt MNIST file {path}: magic number {found_magic}, expected {magic} ({kind}); "
            "re-download it, or check it is the right file for its name"
        )
    shape: tuple[int, ...]
    if magic == IMAGES_MAGIC:
        rows, cols = struct.unpack(">II", raw[8:16])
        shape, what = (count, rows, cols), f"{count} images of {rows}x{cols}"
    else:
        shape, what = (count,), f"{count} labels"
    payload = len(raw) - header_size
    if payload != int(np.prod(shape)):
        unit = "pixels" if magic == IMAGES_MAGIC else "labels"
        raise DataError(
            f"corrupt MNIST file {path}: header says {what} but the file holds {payload} bytes of {unit}; re-download it"
        )
    return np.frombuffer(raw, np.uint8, offset=header_size).reshape(shape).copy()


def read_npz(path: Path) -> Decoded:
    """Read Keras's mnist.npz (x_train, y_train, x_test, y_test; images without channel axis)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in IDX_STEMS}
    except KeyError as err:
        raise DataError(
            f"{path} is not an MNIST .npz: it lacks {err}; it needs arrays x_train, y_train, "
            "x_test, y_test (as keras.datasets.mnist writes them)"
        ) from err
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DataError(f"corrupt MNIST file {path} ({err}); re-download it") from err
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.dtype != np.uint8 or images.ndim != 3 or labels.shape != (len(images),):
            raise DataError(
                f"unexpected MNIST arrays in {path}: x_{split} is {images.dtype}{images.shape} and "
                f"y_{split} {labels.dtype}{labels.shape}, expected uint8 (N, rows, cols) and (N,); "
                "re-download it"
            )
        _check_labels(labels, path)
    return _decoded(arrays)


def _decoded(arrays: dict[str, np.ndarray]) -> Decoded:
    """Add the channel axis (MNIST files store (N, 28, 28)) and widen labels to int64."""
    return Decoded(
        x_train=arrays["x_train"][..., np.newaxis],
        y_train=arrays["y_train"].astype(np.int64),
        x_test=arrays["x_test"][..., np.newaxis],
        y_test=arrays["y_test"].astype(np.int64),
        class_names=CLASS_NAMES,
    )


def _idx_file(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (directory / name).is_file():
            return directory / name
    return None


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as stream:
                return stream.read()
        return path.read_bytes()
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DataError(f"corrupt or truncated gzip file {path} ({err}); re-download it") from err
    except OSError as err:
        raise DataError(f"cannot read MNIST file {path} ({err.strerror or err})") from err


def _check_labels(labels: np.ndarray, path: Path) -> None:
    bad = labels[(labels < 0) | (labels >= len(CLASS_NAMES))]
    if bad.size:
        raise DataError(f"corrupt MNIST labels in {path}: found label {int(bad[0])}, digits are 0-9; re-download it")


def _fetch() -> Path:
    return keras_download(NPZ_NAME, URL, SHA256)
