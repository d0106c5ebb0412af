"""Where data sets are looked for, in a fixed order, and the one error that lists it all.

Order: the `root` argument (a file, or a directory and its <dataset>/ subdirectory), else
$DILBENCH_DATA (and its <dataset>/ subdirectory), then Keras's cache ($KERAS_HOME or ~/.keras,
subdirectory datasets/), then a download through Keras. An explicit `root` is authoritative: when
the data is not there we say so instead of silently reading some other copy (a typo in a path
should fail loudly), and we never download.
"""

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from dilbench.data.errors import DataNotFoundError
from dilbench.data.source import Source

DATA_ENV = "DILBENCH_DATA"


def keras_datasets_dir() -> Path:
    """The directory keras.utils.get_file downloads data sets into (mirrors Keras's own rule)."""
    if "KERAS_HOME" in os.environ:
        base = Path(os.environ["KERAS_HOME"]).expanduser()
    else:
        home = Path.home()
        base = (home if os.access(home, os.W_OK) else Path("/tmp")) / ".keras"
    return base / "datasets"


def keras_download(filename: str, url: str, sha256: str) -> Path:
    """Fetch `url` into Keras's cache with keras.utils.get_file.

    Keras prints its progress on stdout, which carries only the run directory: it goes to stderr here.
    Importing Keras imports TensorFlow, whose start-up chatter is silenced like everywhere else.
    """
    from dilbench.tfquiet import stderr_silenced

    with stderr_silenced():
        from keras.utils import get_file
    with contextlib.redirect_stdout(sys.stderr):
        return Path(get_file(filename, origin=url, file_hash=sha256))


def locate(
    dataset: str,
    root: str | os.PathLike | None,
    *,
    find: Callable[[Path], Source | None],
    from_file: Callable[[Path], Source],
    accepts: str,
    fetch: Callable[[], Path] | None = None,
    download: bool = True,
    keras_cache: bool = True,
) -> Source:
    """Return the first copy of `dataset` found, or raise DataNotFoundError listing every place.

    `find(dir)` recognises the data inside a directory, `from_file(path)` opens a file given
    directly as root, and `fetch()` downloads it (returning the downloaded file).
    """
    looked: list[str] = []
    if root is not None:
        path = Path(root).expanduser().absolute()
        if path.is_file():
            return from_file(path)
        if not path.exists():
            raise DataNotFoundError(
                f"{dataset} data root {path} does not exist; set data.root or ${DATA_ENV} "
                f"to a file or directory holding {accepts}"
            )
        for directory in (path, path / dataset):
            found = _find_in(directory, find, looked)
            if found is not None:
                return found
        raise _not_found(dataset, looked, accepts, "")

    env = os.environ.get(DATA_ENV)
    if env:
        base = Path(env).expanduser().absolute()
        directories = [base, base / dataset]
    else:
        directories = []
        looked.append(f"${DATA_ENV} (not set)")
    if keras_cache:
        directories.append(keras_datasets_dir())
    for directory in directories:
        found = _find_in(directory, find, looked)
        if found is not None:
            return found

    note = ""
    if fetch is not None and download:
        try:
            return from_file(fetch())
        except Exception as err:  # noqa: BLE001 - any download failure means "not found here"
            note = f"; the download failed ({_one_line(err)})"
    raise _not_found(dataset, looked, accepts, note)


def _find_in(directory: Path, find: Callable[[Path], Source | None], looked: list[str]) -> Source | None:
    looked.append(str(directory))
    return find(directory) if directory.is_dir() else None


def _not_found(dataset: str, looked: list[str], accepts: str, note: str) -> DataNotFoundError:
    return DataNotFoundError(
        f"{dataset} data not found; looked in: {', '.join(looked)}; accepted: {accepts}{note}; "
        f"set data.root or ${DATA_ENV} to a directory holding them"
    )


def _one_line(err: Exception) -> str:
    return " ".join(str(err).split()) or type(err).__name__
