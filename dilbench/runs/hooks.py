"""Hooks: a shell command run when a run (`train --on-end CMD`, an experiment's `hooks.on_run_end`) or a sweep
(`hooks.on_sweep_end`) ends, with what ended in its environment.

The command goes to the shell as written (`sh -c CMD`, so pipes, `&&` and `$DILBENCH_RUN_DIR` work: it is
the user's own command line, like a Makefile recipe), in its own process group, with the caller's
environment plus the variables below, stdin closed and its output (stdout and stderr) logged line by line.
It runs after the run has recorded its final status and released its lock, so a hook may read, tag,
prune or copy the run. A hook that fails, cannot start or outlives its timeout (then its whole process
group is killed) costs one warning; it never changes the run's status or the command's exit code.

    run end     DILBENCH_RUN_DIR (absolute), DILBENCH_RUN_STATUS (completed|failed|interrupted), DILBENCH_RUN_NAME
    sweep end   DILBENCH_SWEEP_DIR (the runs directory), DILBENCH_RESULTS (the results page), DILBENCH_SWEEP_STATUS
                (completed: every run completed; failed: some did not; interrupted), DILBENCH_EXPERIMENT
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
from dataclasses import dataclass

DEFAULT_TIMEOUT = 60.0  # seconds
KILL_GRACE = 5.0  # after SIGTERM, before SIGKILL


@dataclass(frozen=True)
class Hook:
    command: str
    timeout: float = DEFAULT_TIMEOUT


def run_hook(hook: Hook, env: dict[str, str], what: str, log: logging.Logger) -> bool:
    """Run `hook` with `env` added to the environment; True if it exited 0 in time. Never raises."""
    try:
        process = subprocess.Popen(hook.command, shell=True, env={**os.environ, **env}, stdin=subprocess.DEVNULL,  # noqa: S602
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, text=True,
                                   errors="replace")
    except OSError as err:
        log.warning("%s hook could not start (%s): %s", what, err.strerror or err, hook.command)
        return False
    problem = None
    try:
        output, _ = process.communicate(timeout=hook.timeout)
    except subprocess.TimeoutExpired:
        output = _stop(process)
        problem = f"was stopped after its timeout of {hook.timeout:g} s"
    except KeyboardInterrupt:
        output = _stop(process)
        problem = "was stopped by Ctrl-C"
    for line in (output or "").splitlines():
        log.info("%s hook: %s", what, line)
    if problem is None and process.returncode:
        problem = f"exited with code {process.returncode}"
    if problem:
        log.warning("%s hook %s (the status stays as it is): %s", what, problem, hook.command)
        return False
    return True


def _stop(process: subprocess.Popen) -> str:
    """End the hook's whole process group (the shell and what it started): SIGTERM, then SIGKILL; its output so far."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            output, _ = process.communicate(timeout=KILL_GRACE)
            return output or ""
        except subprocess.TimeoutExpired:
            continue
    if process.stdout:  # something that left the group still holds the pipe: stop reading it
        process.stdout.close()
    return ""
