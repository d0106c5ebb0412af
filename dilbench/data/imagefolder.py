"""ImageFolder data sets: train/<class>/<image> and test/<class>/<image>, as a directory or archive.

Archives are read member by member straight from the (compressed) stream, never extracted to disk:
the CIFAR-10 JPEG archive holds 60,000 tiny files, and writing them out would cost more than
decoding them.
"""

import io
import os
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, UnidentifiedImageError

from dilbench.data.errors import DataError
from dilbench.data.locate import locate
from dilbench.data.source import Decoded, Source

DESCRIPTION = (
    "any train/<class>/* + test/<class>/* image tree, as a directory or .tar/.tar.gz/.tgz/.zip "
    "(classes sorted alphabetically; all images one size)"
)
IMAGE_SHAPE: tuple[int, int, int] | None = None  # each image folder has its own size and classes
NUM_CLASSES: int | None = None
SPLITS = ("train", "test")
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".pnm"})
# Modes kept as one channel; everything else (RGB, RGBA, P, CMYK, ...) becomes RGB.
GRAY_MODES = frozenset({"1", "L", "LA"})
ACCEPTS = (
    "a directory holding train/<class>/ and test/<class>/ image folders, or an archive of one "
    f"(any file as data.root, or imagefolder{'/'.join(ARCHIVE_SUFFIXES)} in a searched directory)"
)


def source(root: str | os.PathLike | None, download: bool) -> Source:
    """Locate an ImageFolder (nothing to download: there is no canonical copy)."""
    del download
    return locate("imagefolder", root, find=find, from_file=from_file, accepts=ACCEPTS, keras_cache=False)


def find(directory: Path) -> Source | None:
    """An ImageFolder in `directory`: the directory itself, or an imagefolder.<archive> file in it."""
    if is_tree(directory):
        return tree_source(directory)
    for suffix in ARCHIVE_SUFFIXES:
        archive = directory / f"imagefolder{suffix}"
        if archive.is_file():
            return archive_source(archive)
    return None


def from_file(path: Path) -> Source:
    """A file given as root must be an archive of an ImageFolder tree."""
    if not is_archive(path):
        raise DataError(f"{path} is not an ImageFolder archive; expected {', '.join(ARCHIVE_SUFFIXES)}")
    return archive_source(path)


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(ARCHIVE_SUFFIXES)


def is_tree(directory: Path) -> bool:
    return all((directory / split).is_dir() for split in SPLITS)


def tree_source(directory: Path) -> Source:
    """An ImageFolder directory; every image file is fingerprinted, so adding one re-decodes."""
    files = tuple(
        sorted(
            path
            for split in SPLITS
            for path in (directory / split).rglob("*")
            if _split_and_class(path.relative_to(directory).as_posix()) and path.is_file()
        )
    )

    def members() -> Iterator[tuple[str, bytes]]:
        for path in files:
            try:
                yield path.relative_to(directory).as_posix(), path.read_bytes()
            except OSError as err:
                raise DataError(f"cannot read image {path} ({err.strerror or err})") from err

    return Source(str(directory), files, lambda: decode(str(directory), members()))


def archive_source(path: Path) -> Source:
    return Source(str(path), (path,), lambda: decode(str(path), _archive_members(path)))


def decode(where: str, members: Iterable[tuple[str, bytes]]) -> Decoded:
    """Decode (relative name, file bytes) pairs into arrays; labels index the sorted train classes.

    Members that are not train|test/<class>/<image> (READMEs, .DS_Store, ...) are skipped.
    """
    entries = []
    for name, data in members:
        parsed = _split_and_class(name)
        if parsed is not None:
            split, cls, name = parsed
            entries.append(_Entry(split, cls, name, _decode_image(data, f"{where}/{name}")))
    # Sort so the result does not depend on archive or file-system order.
    entries.sort(key=lambda entry: (SPLITS.index(entry.split), entry.cls, entry.name))
    for split in SPLITS:
        if not any(entry.split == split for entry in entries):
            raise DataError(
                f"no images under {split}/<class>/ in {where}; an ImageFolder needs "
                "train/<class>/<image> and test/<class>/<image> files"
            )
    classes = sorted({entry.cls for entry in entries if entry.split == "train"})
    unknown = sorted({entry.cls for entry in entries if entry.split == "test"} - set(classes))
    if unknown:
        raise DataError(
            f"test classes {', '.join(unknown)} in {where} have no train/ folder; every test "
            "class needs training images (train/<class>/)"
        )
    _check_sizes(where, entries)
    gray = all(entry.pixels.ndim == 2 for entry in entries)
    label = {cls: index for index, cls in enumerate(classes)}
    arrays = {}
    for split in SPLITS:
        chosen = [entry for entry in entries if entry.split == split]
        if gray:
            arrays[f"x_{split}"] = np.stack([entry.pixels for entry in chosen])[..., np.newaxis]
        else:
            arrays[f"x_{split}"] = np.stack([_rgb(entry.pixels) for entry in chosen])
        arrays[f"y_{split}"] = np.array([label[entry.cls] for entry in chosen], dtype=np.int64)
    return Decoded(**arrays, class_names=tuple(classes))


class _Entry(NamedTuple):
    split: str
    cls: str
    name: str
    pixels: np.ndarray


def _split_and_class(name: str) -> tuple[str, str, str] | None:
    """(split, class, normalised name) for .../train|test/<class>/<image>; None for anything else.

    Plain string operations rather than pathlib: this runs once per member of 60,000-image archives.
    """
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if len(parts) < 3 or parts[-3] not in SPLITS or "__MACOSX" in parts or parts[-1].startswith("."):
        return None
    if os.path.splitext(parts[-1])[1].lower() not in IMAGE_SUFFIXES:
        return None
    return parts[-3], parts[-2], "/".join(parts)


def _archive_members(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        if path.name.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                for info in archive.infolist():
                    if not info.is_dir():
                        yield info.filename, archive.read(info)
        else:
            with tarfile.open(path, "r|*") as archive:  # stream mode: one sequential pass
                for member in archive:
                    if member.isfile():
                        yield member.name, archive.extractfile(member).read()  # type: ignore[union-attr]  # a regular file has one
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, OSError) as err:
        raise DataError(f"corrupt or truncated archive {path} ({err}); re-download or re-create it") from err


def _decode_image(data: bytes, where: str) -> np.ndarray:
    """(H, W) uint8 for grayscale images, (H, W, 3) uint8 for everything else."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            mode = "L" if image.mode in GRAY_MODES else "RGB"
            return np.asarray(image if image.mode == mode else image.convert(mode))
    except UnidentifiedImageError as err:  # its message shows an anonymous BytesIO
        raise DataError(f"cannot decode image {where}: not an image format Pillow reads; remove or replace the file") from err
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        raise DataError(f"cannot decode image {where} ({err}); remove or replace the file") from err


def _check_sizes(where: str, entries: list[_Entry]) -> None:
    first_height, first_width = entries[0].pixels.shape[:2]
    for entry in entries:
        height, width = entry.pixels.shape[:2]
        if (height, width) != (first_height, first_width):
            raise DataError(
                f"image {where}/{entry.name} is {width}x{height} but {where}/{entries[0].name} is "
                f"{first_width}x{first_height}; all images of an ImageFolder must have one size (resize them)"
            )


def _rgb(pixels: np.ndarray) -> np.ndarray:
    """Grayscale (H, W) to (H, W, 3), for folders that mix grayscale and colour images."""
    return pixels if pixels.ndim == 3 else np.repeat(pixels[..., np.newaxis], 3, axis=-1)
