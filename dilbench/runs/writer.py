"""The one process that writes a run directory, and what it guarantees about the directory it leaves.

- One writer: it holds the run's `.lock` (an flock the kernel drops when the process dies, kill -9
  included) for as long as it writes; a second `dilbench train` on the same run is refused with one
  line naming the owner. The owner (host, pid, boot, start time) goes into meta.json, so readers can
  tell a live run from a dead one (owner.py).
- A failure is always recorded: a reserve file keeps room on the disk, so a full disk still ends with
  meta.json saying `failed` and why; what a failed or killed write left (temp files, TensorFlow's
  `ckpt-N_temp/`) is removed when the run fails and when the next writer starts.
- File-system failures become one line with the path and the fix (oserrors.py), never a traceback.
No TensorFlow here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from dilbench.errors import DilbenchError
from dilbench.runs import oserrors
from dilbench.runs.lock import RunLock, holder_of
from dilbench.runs.owner import describe as describe_owner
from dilbench.runs.owner import this_process
from dilbench.runs.rundir import RunDir, utc_now

RESERVE_BYTES = 256 * 1024  # meta.json and a log line need a few KiB; the rest covers file-system overhead

log = logging.getLogger("dilbench")


class RunBusy(DilbenchError):
    """Another live process writes this run; nothing was changed (exit code 1: try again once it ends)."""


class RunDirError(DilbenchError):
    """A file-system failure on a run directory (full, read-only, not writable), explained in one line."""


class RunLogHandler(logging.FileHandler):
    """log.txt. A line that cannot be written (a full disk) is dropped quietly: the console still shows
    it, and logging's own handler would print a traceback for every line."""

    def handleError(self, record: logging.LogRecord) -> None:
        pass


class RunWriter:
    def __init__(self, run: RunDir, lock: RunLock, owner: dict[str, Any]):
        self.run = run
        self.lock = lock
        self.owner = owner

    # ---- becoming the writer --------------------------------------------------------------------------
    @classmethod
    def create(cls, runs_dir: str | Path, name: str) -> RunWriter:
        """A new run directory, locked by us; removed again if it cannot even be set up."""
        try:
            run = RunDir.create(runs_dir, name)
        except OSError as err:
            raise _error(err, "creating a run directory in", Path(runs_dir), "train again") from err
        try:
            return cls.claim(run, retry="train again")
        except BaseException:
            shutil.rmtree(run.path, ignore_errors=True)  # nothing in it yet worth keeping
            raise

    @classmethod
    def claim(cls, run: RunDir, retry: str | None = None) -> RunWriter:
        """Become the writer of an existing run, or raise RunBusy naming the process that is."""
        retry = retry or f"dilbench train --resume {run.path}"
        owner = this_process()
        lock = RunLock(run.lock_file)
        try:
            got = lock.acquire(json.dumps({**owner, "since": utc_now()}))
        except OSError as err:
            raise _error(err, "writing", run.path, retry) from err
        if not got:
            raise RunBusy(f"{run.path} is being written by {holder(run)}; a second writer would corrupt it. "
                          "Wait for that process to end (or stop it), then try again")
        writer = cls(run, lock, owner)
        try:
            removed = writer.remove_partial_files()
            if removed:
                log.info("removed %d partial file(s) a killed write left: %s", len(removed), ", ".join(p.name for p in removed))
            writer._keep_reserve()
        except OSError as err:
            writer.close()
            raise _error(err, "preparing", run.path, retry) from err
        return writer

    def close(self) -> None:
        """Give up the reserve and the lock (the kernel drops the lock anyway when the process ends)."""
        with contextlib.suppress(OSError):
            self.run.reserve_file.unlink(missing_ok=True)
        self.lock.release()

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- writing --------------------------------------------------------------------------------------
    def log_handler(self) -> logging.Handler:
        handler = RunLogHandler(self.run.log_file, delay=True)  # opened at the first line, its errors quiet too
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        return handler

    def record(self, **changes: Any) -> dict[str, Any]:
        """Update meta.json (this class is its only writer) and return it; on a full disk, free the reserve
        and partial files and try once more."""
        try:
            return self.run.update_meta(**changes)
        except OSError as err:
            if not oserrors.is_no_space(err):
                raise
            self.remove_partial_files()
            with contextlib.suppress(OSError):
                self.run.reserve_file.unlink(missing_ok=True)
            return self.run.update_meta(**changes)

    def fail(self, err: BaseException, retry: str) -> BaseException:
        """Record the run as `failed` because of `err`; returns what to raise: a one-line error for a
        file-system failure, else `err` itself (a DilbenchError is one line already)."""
        explained = explain(err, self.run.path, retry)
        message = str(explained) if explained else str(err) if isinstance(err, DilbenchError) else f"{type(err).__name__}: {err}"
        self.remove_partial_files()
        try:
            self.record(status="failed", error=message, ended=utc_now())
        except OSError as again:  # nothing more can be written: readers will show the run as crashed
            log.warning("could not record the failure in %s: %s", self.run.meta_file, again)
        log.error("run failed: %s", message)
        return explained or err

    def remove_partial_files(self) -> list[Path]:
        removed = []
        for path in self.run.partial_files():
            with contextlib.suppress(OSError):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                removed.append(path)
        return removed

    def _keep_reserve(self) -> None:
        try:
            with open(self.run.reserve_file, "wb") as handle:
                handle.write(os.urandom(RESERVE_BYTES))  # real bytes: zeros may be stored sparse or compressed
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:
            self.run.reserve_file.unlink(missing_ok=True)
            raise


def holder(run: RunDir) -> str:
    text = holder_of(run.lock_file)
    try:
        owner = json.loads(text)
        return f"{describe_owner(owner)} (since {owner.get('since', '?')})"
    except (ValueError, AttributeError):
        return "another process"


def explain(err: BaseException, where: Path, retry: str) -> RunDirError | None:
    """A file-system failure while writing `where` as a one-line error; None for any other error."""
    message = oserrors.describe(err, "writing", where, retry)
    return RunDirError(message) if message else None


def _error(err: OSError, doing: str, where: Path, retry: str) -> DilbenchError:
    message = oserrors.describe(err, doing, where, retry)
    return RunDirError(message or f"{doing} {where}: {err.strerror or err}")


def update_meta_if_idle(run: RunDir, **changes: Any) -> bool:
    """Update meta.json of a run no process is writing, holding its lock meanwhile; False (nothing
    written) while another process writes it or its directory cannot be written."""
    lock = RunLock(run.lock_file)
    try:
        if not lock.acquire(json.dumps({**this_process(), "since": utc_now()})):
            return False
        run.update_meta(**changes)
        return True
    except OSError:
        return False
    finally:
        lock.release()
