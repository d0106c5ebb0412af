"""The sweep's Slurm jobs: which job each run was submitted as, and what Slurm says about it now.

The record is `<runs dir>/.sweep/slurm/jobs.json` (run name -> array task id such as `123_4`, the
latest submission winning). States come from `squeue` (jobs Slurm still holds, finished ones for a
few minutes) and, for older ones, `sacct` where the cluster keeps accounting; a job neither knows
about gets no state, and the run directory alone tells what happened.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dilbench.errors import DilbenchError
from dilbench.runs.rundir import write_atomic

# States in which a job will still run (or runs): its run must not be submitted again.
ACTIVE = frozenset({"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
                    "RESIZING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "STOPPED"})
TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class JobState:
    job: str  # `123_4`: array 123, task 4
    state: str  # Slurm's: PENDING, RUNNING, COMPLETED, CANCELLED, FAILED, TIMEOUT, ...
    reason: str = ""  # why it is pending, e.g. Priority or BeginTime (after a requeue)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    def __str__(self) -> str:
        return f"{self.job} {self.state}" + (f" ({self.reason})" if self.reason and self.reason != "None" else "")


def slurm_dir(runs_dir: Path) -> Path:
    """Where the sweep keeps its job scripts, the jobs' own output and the job record."""
    return runs_dir / ".sweep" / "slurm"


def record_jobs(runs_dir: Path, jobs: dict[str, str]) -> None:
    """Remember which job each run was submitted as (merged into earlier submissions' record)."""
    path = slurm_dir(runs_dir) / "jobs.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, json.dumps({**recorded_jobs(runs_dir), **jobs}, indent=2, sort_keys=True) + "\n")


def recorded_jobs(runs_dir: Path) -> dict[str, str]:
    """Run name -> the array task it was last submitted as; empty if the sweep never used Slurm."""
    try:
        return dict(json.loads((slurm_dir(runs_dir) / "jobs.json").read_text()))
    except (OSError, ValueError, TypeError):
        return {}


class SlurmQueryError(DilbenchError):
    """squeue did not answer (controller down or busy): which jobs still run is unknown, not "none"."""


def job_states(jobs: Iterable[str]) -> dict[str, JobState]:
    """What Slurm knows about these array tasks (`123_4`), by job; jobs it no longer knows are left out.

    Without squeue on PATH, nothing is known (empty); SlurmQueryError if squeue is there but fails."""
    wanted = set(jobs)
    states: dict[str, JobState] = {}
    if not wanted or shutil.which("squeue") is None:
        return states
    # --me and all states: one call for every job of ours, including ones that ended minutes ago
    squeue = ["squeue", "--me", "--array", "--noheader", "--states=all", "--format=%i|%T|%r"]
    lines = _lines(squeue)
    if lines is None:
        raise SlurmQueryError(f"`{' '.join(squeue)}` failed: cannot tell which of the sweep's jobs are still queued or running")
    for line in lines:
        job, state, reason = (line.split("|") + ["", ""])[:3]
        if job in wanted:
            states[job] = JobState(job, state, reason)
    missing = sorted(wanted - set(states))
    if missing and shutil.which("sacct"):  # older jobs, where accounting is on (else sacct fails: nothing to add)
        arrays = sorted({job.split("_")[0] for job in missing})
        sacct = ["sacct", "--noheader", "--parsable2", "--allocations", "--format=JobID,State", "--jobs", ",".join(arrays)]
        for line in _lines(sacct) or []:
            job, state = (line.split("|") + [""])[:2]
            if job in wanted and job not in states:
                states[job] = JobState(job, state.split(" ")[0])  # `CANCELLED by 0` -> CANCELLED
    return states


def _lines(command: list[str]) -> list[str] | None:
    """The command's non-empty output lines; None if it failed."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return [line.strip() for line in result.stdout.splitlines() if line.strip()] if result.returncode == 0 else None
