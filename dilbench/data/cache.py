"""Decode once: decoded arrays are kept as an uncompressed .npz so later loads take a fraction of a second.

The cache file's name hashes the format version, the data set and where it was read from; inside,
a fingerprint of every source file's path, size and mtime says whether the source has changed
since. A changed source is therefore re-decoded and overwrites its own cache file rather than
leaving a stale one behind. A cache file that cannot be read is treated as absent.

Beside each .npz, `<same name>.sha256.json` keeps the SHA-256 of every source file under the same
fingerprint (`source_digest`): a run records which copy of the data it read without hashing
CIFAR-10's 160 MB again on every run, only after the source changed.
"""

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from dilbench.data.source import Decoded, Source

# Bump when the decoded layout (dtypes, shapes, label order) changes, to orphan old cache files.
FORMAT_VERSION = 1
CACHE_ENV = "DILBENCH_CACHE"
ARRAYS = ("x_train", "y_train", "x_test", "y_test")


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "dilbench").expanduser()


def load_or_decode(dataset: str, source: Source, cache_dir: Path) -> Decoded:
    """The decoded data of `source`, from the cache when its fingerprint still matches."""
    path = cache_path(dataset, source, cache_dir)
    fingerprint = _fingerprint(source)
    cached = _read(path, fingerprint)
    if cached is not None:
        return cached
    decoded = source.decode()
    _write(path, fingerprint, decoded)
    return decoded


def cache_path(dataset: str, source: Source, cache_dir: Path) -> Path:
    key = json.dumps([FORMAT_VERSION, dataset, os.path.abspath(source.description)])
    return cache_dir / f"{dataset}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"


def _fingerprint(source: Source) -> str:
    stats = []
    for path in source.files:
        stat = path.stat()
        stats.append([os.path.abspath(path), stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(json.dumps([FORMAT_VERSION, stats]).encode()).hexdigest()


def _read(path: Path, fingerprint: str) -> Decoded | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["fingerprint"]) != fingerprint:
                return None
            arrays = {name: npz[name] for name in ARRAYS}
            class_names = tuple(str(name) for name in npz["class_names"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    return Decoded(**arrays, class_names=class_names)


def _write(path: Path, fingerprint: str, decoded: Decoded) -> None:
    """Write atomically (temp file + rename), so a killed process never leaves a half-written cache."""
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
        with os.fdopen(fd, "wb") as stream:
            np.savez(
                stream,
                fingerprint=np.array(fingerprint),
                class_names=np.array(decoded.class_names),
                **{name: getattr(decoded, name) for name in ARRAYS},
            )
        os.chmod(temp, 0o644)  # mkstemp makes it private; a cache may be shared (DILBENCH_CACHE)
        os.replace(temp, path)
    except OSError as err:
        if temp is not None and os.path.exists(temp):
            os.unlink(temp)
        warnings.warn(f"could not write the data cache {path} ({err}); data will be decoded again next time", stacklevel=2)


LISTED_FILES = 16  # a digest names each file up to this many (MNIST's 4 IDX files); an ImageFolder tree only counts them


def source_digest(dataset: str, source: Source, cache_dir: Path) -> dict[str, Any]:
    """Which copy of the data `source` is: its path, total size and SHA-256, from the digest cache when the
    fingerprint (every file's path, size and mtime) still matches, else hashed now and cached.

    One file: its own SHA-256 (what `sha256sum FILE` prints). Several (MNIST's IDX files, an ImageFolder
    tree, extracted CIFAR-10 batches): the SHA-256 of `sha256sum`'s lines for them, `<sha256>  <path
    relative to the source>` sorted by path, so equal digests mean the same bytes under the same names.
    """
    path = cache_path(dataset, source, cache_dir).with_suffix(".sha256.json")
    fingerprint = _fingerprint(source)
    try:
        cached = json.loads(path.read_text())
        if cached.get("fingerprint") == fingerprint and isinstance(cached.get("digest"), dict):
            return cached["digest"]
    except (OSError, ValueError, AttributeError):
        pass
    digest = _digest(dataset, source)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as stream:
                json.dump({"fingerprint": fingerprint, "digest": digest}, stream)
            os.chmod(temp, 0o644)
            os.replace(temp, path)
        except BaseException:
            os.unlink(temp)
            raise
    except OSError:
        pass  # an unwritable cache only costs hashing again next time (the decoded-array cache warns already)
    return digest


def _digest(dataset: str, source: Source) -> dict[str, Any]:
    root = Path(source.description)
    files: list[dict[str, Any]] = []
    for file in source.files:
        name = file.relative_to(root).as_posix() if file != root and root in file.parents else file.name
        files.append({"name": name, "size": file.stat().st_size, "sha256": file_sha256(file)})
    files.sort(key=lambda f: str(f["name"]))
    if len(files) == 1:
        total = files[0]["sha256"]
    else:
        total = hashlib.sha256("".join(f"{f['sha256']}  {f['name']}\n" for f in files).encode()).hexdigest()
    digest: dict[str, Any] = {"dataset": dataset, "path": os.path.abspath(source.description),
                              "size": sum(f["size"] for f in files), "sha256": total, "file_count": len(files)}
    if 1 < len(files) <= LISTED_FILES:
        digest["files"] = files
    return digest


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
