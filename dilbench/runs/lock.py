"""One writer at a time: an flock on a lock file, held for as long as a process writes what it guards.

meta.json says `running` both for a live run and for one whose process was killed (kill -9, a lost
machine), and only the second may be resumed. An flock tells them apart without trusting pids: the
kernel drops it when the last process holding it exits. Every `dilbench train` holds its run
directory's `.lock`; a sweep also holds one lock per run name (from deciding to start a run until its
child exits, the child inheriting it), so two sweeps never start the same run twice. POSIX only.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path

ACQUIRE_SECONDS = 0.5  # a reader probing the lock holds it for microseconds: retry that long before refusing


class RunLock:
    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self, holder: str = "") -> bool:
        """Take the lock without waiting for another holder; False if another process holds it.

        `holder` (who we are) is written into the file for the message a refused process prints.
        OSError (a read-only or non-writable directory) is left to the caller to explain.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)  # the umask decides, like any other file
        deadline = time.monotonic() + ACQUIRE_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.05)
        self.fd = fd
        if holder:
            with contextlib.suppress(OSError):  # only a note for error messages: a full disk must not stop us here
                os.ftruncate(fd, 0)
                os.pwrite(fd, holder.encode(), 0)
        return True

    def release(self) -> None:
        """Close our copy; the lock stays while a child that inherited it still runs."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def is_locked(path: Path) -> bool:
    """Whether some process holds the lock (checked by trying a shared lock; creates nothing)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also releases the lock if we got it
    return False


def holder_of(path: Path) -> str:
    """What the process holding the lock wrote about itself ('' if nothing readable)."""
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""
