"""Who writes a run, and whether that process still lives: what turns a dead `running` into `crashed`.

A writer records itself in meta.json as `owner`: host, pid, the kernel's boot id and the process's
start time in clock ticks since boot (/proc/<pid>/stat). A pid alone is reused; pid + boot + start
time names one process. Readers on the owner's host check it directly; for an owner on another host
they look at the run's lock instead (seen across hosts only where the shared file system propagates
locks, e.g. NFSv4), and call a run whose lock is not held `stale`: it says running, but nothing here
can confirm it. No TensorFlow, no writes: `compare` and `show` use this.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from dilbench.runs.lock import is_locked
from dilbench.runs.rundir import RunDir

LIVE_STATUSES = ("running", "crashed", "stale")  # what a run that says `running` is shown as


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _start_ticks(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot; None if there is no such process (or no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])  # field 22; the name before ')' may hold spaces


def this_process() -> dict[str, Any]:
    """The owner record of the calling process."""
    pid = os.getpid()
    return {"host": platform.node(), "pid": pid, "boot_id": _boot_id(), "start_ticks": _start_ticks(pid)}


def describe(owner: dict[str, Any]) -> str:
    return f"pid {owner.get('pid', '?')} on {owner.get('host', '?')}"


def is_alive(owner: dict[str, Any]) -> bool | None:
    """Whether the owner process still runs: None when it is on another host (cannot be checked here)."""
    if owner.get("host") != platform.node():
        return None
    if owner.get("boot_id") and _boot_id() and owner["boot_id"] != _boot_id():
        return False  # the machine restarted since
    pid = owner.get("pid")
    if not isinstance(pid, int):
        return None
    if Path("/proc").is_dir():
        ticks = _start_ticks(pid)
        return ticks is not None and (owner.get("start_ticks") is None or ticks == owner["start_ticks"])
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_status(meta: dict[str, Any], run_path: Path) -> str:
    """meta.json's status, except that `running` becomes `crashed` when its owner is gone, or `stale`
    when the owner is on another host and the run's lock is not held (liveness cannot be checked).
    A run written before owners were recorded keeps what its meta.json says."""
    status = str(meta.get("status") or "unknown")
    owner = meta.get("owner")
    if status != "running" or not isinstance(owner, dict):
        return status
    alive = is_alive(owner)
    if alive is None:
        return "running" if is_locked(RunDir(run_path).lock_file) else "stale"
    return "running" if alive else "crashed"
