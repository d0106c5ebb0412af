"""One lock file per run name, held for as long as a process trains that run.

meta.json says `running` both for a live run and for one whose process was killed (kill -9, a lost
machine), and only the second may be resumed. An flock tells them apart without pids: the kernel drops
it when the last process holding it exits. The sweep passes the locked file to its child, so the lock
lives exactly as long as the training process, even if the sweep itself dies. (POSIX only.)
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class RunLock:
    def __init__(self, path: Path):
        self.path = path
        self.fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock without waiting; False if another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def release(self) -> None:
        """Close our copy; the lock stays while a child that inherited it still runs."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def is_locked(path: Path) -> bool:
    """Whether some process holds the lock (checked by trying it; creates nothing)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing also releases the lock if we got it
    return False
