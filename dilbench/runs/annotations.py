"""Tags and a note on a run: `tags.json` and `notes.md` in its directory, apart from meta.json.

The trainer owns meta.json and holds the run's `.lock` for as long as it trains, so annotations take a
lock of their own, `.annotations.lock`, only for the read-modify-write of one file: annotating a run
that trains is safe, and racing taggers take turns instead of losing each other's tags. `dilbench rm`
takes it too before moving a run to the trash, so an annotation lands in the run or fails cleanly,
never in a directory that moved away under it. Files are written atomically (temp file and rename);
temp files an annotator killed mid-write leaves are removed by the next one, under the lock (the
trainer's own clean-up leaves them alone: they may belong to a live annotator).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
from collections.abc import Iterable, Iterator

from dilbench.errors import DilbenchError, UsageError
from dilbench.runs import oserrors
from dilbench.runs.rundir import RunDir, utc_now, write_atomic

TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/@=+-]{0,63}$")  # no commas or spaces: `--where tag=a` and the column split on them
WAIT_SECONDS = 30.0  # another annotator holds the lock for milliseconds; this long means something is stuck


class AnnotationBusy(DilbenchError):
    """Another process held the run's annotation lock for longer than WAIT_SECONDS."""


def check_tag(name: str) -> str:
    if not TAG.match(name):
        raise UsageError(f"tag {name!r}: a tag is 1-64 letters, digits and _ . : / @ = + - (not first), no spaces or commas")
    return name


@contextlib.contextmanager
def annotation_lock(run: RunDir, wait: float = WAIT_SECONDS) -> Iterator[None]:
    """Hold the run's annotation lock (waiting for another holder up to `wait` seconds); removes what killed
    annotators left, and checks the run is still there (not moved to the trash meanwhile)."""
    try:
        fd = os.open(run.annotations_lock, os.O_RDWR | os.O_CREAT, 0o666)
    except FileNotFoundError:
        raise _gone(run) from None
    except OSError as err:
        raise DilbenchError(oserrors.describe(err, "annotating", run.path, "try again once it can be written")
                            or f"{run.path}: {err}") from err
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise AnnotationBusy(f"{run.path}: another process has held its annotation lock for {wait:.0f} s; "
                                         "try again") from None
                time.sleep(0.005)
        if not run.config.is_file():  # moved to the trash (or removed) while we waited
            raise _gone(run)
        for leftover in run.annotation_partials():
            with contextlib.suppress(OSError):
                leftover.unlink()
        yield
    finally:
        os.close(fd)  # releases the lock


def _gone(run: RunDir) -> UsageError:
    return UsageError(f"{run.path}: no longer a run directory (moved to the trash?)")


def edit_tags(run: RunDir, add: Iterable[str] = (), remove: Iterable[str] = ()) -> list[str]:
    """Add and remove tags (a tag both added and removed ends removed); returns the run's tags, sorted."""
    add, remove = [check_tag(t) for t in add], [check_tag(t) for t in remove]
    with annotation_lock(run):
        tags = set(run.read_tags())
        tags = (tags | set(add)) - set(remove)
        write_atomic(run.tags_file, json.dumps({"tags": sorted(tags), "updated": utc_now()}, indent=2) + "\n")
    return sorted(tags)


def set_note(run: RunDir, text: str, append: bool = False) -> str:
    """Replace the run's note with `text` (empty: remove it), or add `text` as a line after it; returns the note."""
    text = text.strip()
    with annotation_lock(run):
        note = run.read_note() or ""
        note = f"{note}\n{text}".strip() if append else text
        if note:
            write_atomic(run.notes_file, note + "\n")
        else:
            run.notes_file.unlink(missing_ok=True)
    return note
