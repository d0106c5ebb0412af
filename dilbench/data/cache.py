"""Decode once: decoded arrays are kept as an uncompressed .npz so later loads take a fraction of a second.

The cache file's name hashes the format version, the data set and where it was read from; inside,
a fingerprint of every source file's path, size and mtime says whether the source has changed
since. A changed source is therefore re-decoded and overwrites its own cache file rather than
leaving a stale one behind. A cache file that cannot be read is treated as absent.
"""

import hashlib
import json
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

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
