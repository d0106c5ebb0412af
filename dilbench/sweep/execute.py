"""Run the sweep's jobs as separate `dilbench train` processes, at most N at a time.

Separate processes because TensorFlow cannot be reset inside one (graphs, thread pools, precision
policy), a crash or NaN in one run must not take the others down, and `--jobs 2` then needs nothing
more. Each child writes its console output to `<runs dir>/logs/<run>.log` and holds its run's lock
(see runs/lock.py). Children get their own session, so a terminal Ctrl-C reaches only the sweep, which
forwards it once: every child checkpoints and ends `interrupted`, and re-running the sweep resumes
them. A second Ctrl-C is forwarded again, which stops the children at once (the trainer's rule).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from dilbench.config import dump_config
from dilbench.errors import DilbenchError
from dilbench.runs.lock import RunLock, is_locked
from dilbench.runs.rundir import RunDir, utc_now, write_atomic
from dilbench.signals import handled, raise_interrupt
from dilbench.sweep.existing import Step, final_accuracy, latest_same, lock_path

TRAIN = (sys.executable, "-m", "dilbench")  # the command a job runs `train` with (tests put a fake here)
TRIAL = (sys.executable, "-m", "dilbench.sweep.trial")  # the same for a search's runs (trial.py), which add `--trial SPEC`
POLL_SECONDS = 0.2
WAIT = "wait"  # a Work source's answer: nothing to start now, but there may be once running jobs (here or elsewhere) end


class SweepInterrupted(DilbenchError):
    """Ctrl-C or SIGTERM: the running jobs checkpointed; re-running the sweep resumes them."""

    exit_code = 130


@dataclass
class Outcome:
    step: Step
    status: str  # completed | pruned | failed | interrupted | busy
    path: Path | None  # the run directory, if one exists
    message: str = ""
    seconds: float = 0.0
    log: Path | None = None  # the child's console output


@dataclass
class _Job:
    step: Step
    number: int
    process: subprocess.Popen
    lock: RunLock
    log: IO[str]
    log_path: Path
    started: float


@dataclass(frozen=True)
class Item:
    """A job to launch: its step, and the sweep lock on its run if the work source took it already."""

    step: Step
    lock: RunLock | None = None


class Work(Protocol):
    """Where run_jobs takes its jobs from: a fixed list (ListWork), or a search that asks its studies for trials as
    jobs free up (tuning.py)."""

    def next(self) -> Item | str | None:
        """The next job; WAIT if none now but maybe later; None when nothing more will come."""

    def ended(self, outcome: Outcome) -> None:
        """A job ended (or was found busy)."""

    def total(self) -> int:
        """Jobs in all, for `[k/N]` (a search's is its estimate)."""


class ListWork:
    def __init__(self, steps: list[Step]):
        self.work = deque(step for step in steps if step.action in ("start", "resume"))
        self.count = len(self.work)

    def next(self) -> Item | str | None:
        return Item(self.work.popleft()) if self.work else None

    def ended(self, outcome: Outcome) -> None:
        pass

    def total(self) -> int:
        return self.count


def thread_env(jobs: int, cpus: int | None = None) -> dict[str, str]:
    """The children's environment: with N jobs, each gets cores/N TensorFlow threads (unless set already),
    so N runs do not fight over the cores with N full-size thread pools."""
    env = dict(os.environ)
    if jobs > 1:
        threads = str(max(1, (cpus or os.cpu_count() or 1) // jobs))
        for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
            env.setdefault(var, threads)
    return env


def run_jobs(steps: list[Step], runs_dir: Path, jobs: int, echo: Callable[[str], None], work: Work | None = None,
             train_options: tuple[str, ...] = ()) -> list[Outcome]:
    """Start or resume every step whose action says so (or what `work` gives), each `train` also given
    `train_options`; one Outcome per job, in finishing order."""
    work = work or ListWork(steps)
    launched = 0
    env = thread_env(jobs)
    active: list[_Job] = []
    outcomes: list[Outcome] = []
    with handled({signal.SIGTERM: raise_interrupt}):  # `kill` of the sweep stops it like Ctrl-C: its children checkpoint too
        try:
            while True:
                item: Item | str | None = WAIT
                while len(active) < jobs:
                    item = work.next()
                    if not isinstance(item, Item):
                        break
                    launched += 1
                    job = launch_job(item.step, launched, max(launched, work.total()), runs_dir, env, echo, item.lock,
                                     train_options)
                    if isinstance(job, Outcome):
                        outcomes.append(job)
                        work.ended(job)
                    else:
                        active.append(job)
                for job in [job for job in active if job.process.poll() is not None]:
                    active.remove(job)
                    outcomes.append(finish_job(job, runs_dir, max(launched, work.total()), echo))
                    work.ended(outcomes[-1])
                if not active and item is None:
                    break
                time.sleep(POLL_SECONDS if active or item == WAIT else 0)
        except KeyboardInterrupt:
            _stop(active, echo)
            stopped = [finish_job(job, runs_dir, max(launched, work.total()), echo) for job in active]
            names = ", ".join(outcome.step.run.name for outcome in stopped)
            raise SweepInterrupted(
                f"interrupted{f'; {names} saved a checkpoint' if names else ''}. Run the same command again to resume"
            ) from None
    return outcomes


def launch_job(step: Step, number: int, total: int, runs_dir: Path, env: dict[str, str],
               echo: Callable[[str], None], lock: RunLock | None = None, train_options: tuple[str, ...] = ()) -> _Job | Outcome:
    """Start (or resume) the step's run as a `dilbench train` child (given `train_options`) that holds the run's lock
    (`lock`, if the caller took it already); `busy` if another process holds it. A search's run (trial or
    confirmation) runs as `python -m dilbench.sweep.trial ... --trial SPEC` instead (trial.py), which takes the same
    options. Also used by a Slurm array task."""
    run = step.run
    if lock is None:
        lock = RunLock(lock_path(runs_dir, run.name))
    if lock.fd is None and not lock.acquire():
        echo(f"[{number}/{total}] {run.name}: busy, another process is running it; left alone")
        return Outcome(step, "busy", step.path, "running in another process")
    if step.action == "resume":
        args = ["train", "--resume", str(step.path)]
    else:
        config_file = runs_dir / ".sweep" / "configs" / f"{run.name}.yaml"
        config_file.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(config_file, dump_config(run.config))
        args = ["train", str(config_file), "--runs-dir", str(runs_dir)]
    log_path = runs_dir / "logs" / f"{run.name}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "a")  # noqa: SIM115 - closed in _finish, when the child has ended
    command = [*TRAIN, *args, *train_options]
    if run.search is not None:
        spec = runs_dir / ".sweep" / "trials" / f"{run.name}.json"
        spec.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(spec, json.dumps(run.search, indent=1) + "\n")
        command = [*TRIAL, *args, "--trial", str(spec), *train_options]
    log.write(f"=== {utc_now()} {' '.join(command)}\n")
    log.flush()
    inherited_ignore = signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # started in the background by a script
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                               start_new_session=True, pass_fds=(lock.fd,),  # type: ignore[arg-type]  # held: fd is set
                               preexec_fn=_hear_sigint if inherited_ignore else None)
    what = f"resume ({step.detail})" if step.action == "resume" else "start"
    echo(f"[{number}/{total}] {run.name}: {what}")
    return _Job(step, number, process, lock, log, log_path, time.monotonic())


def _hear_sigint() -> None:
    """In a child, before it runs: Ctrl-C (SIGINT) back to its default. A sweep started in the background by
    a non-interactive shell inherits SIGINT ignored, and so would its children: the SIGINT the sweep forwards
    to stop them (_stop) would be lost and the sweep would wait for whole runs."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def finish_job(job: _Job, runs_dir: Path, total: int, echo: Callable[[str], None]) -> Outcome:
    """What the ended child left: the run directory's status, or the log's last line if it made none."""
    code = job.process.wait()
    job.log.close()
    job.lock.release()
    seconds = time.monotonic() - job.started
    found = latest_same(runs_dir, job.step.run)
    meta = RunDir(found.path).read_meta() if found and found.status != "unknown" else {}
    status = meta.get("status", "failed")
    if status == "running" and found is not None and is_locked(RunDir(found.path).lock_file):  # refused: another process writes that run
        status, message = "busy", "running in another process"
    elif status == "running":  # killed too hard to record anything
        status, message = "failed", f"the process ended (exit code {code}) while the run said `running`"
    elif status in ("completed", "pruned"):
        message = final_accuracy(meta) if meta.get("final_eval_acc") is not None else "no epoch finished"
    else:
        message = meta.get("error") or _last_line(job.log_path) or f"exit code {code}"
    outcome = Outcome(job.step, status, found.path if found else None, message, seconds, job.log_path)
    tail = "" if status in ("completed", "pruned") else f" (log: {job.log_path})"
    echo(f"[{job.number}/{total}] {job.step.run.name}: {status} in {_duration(seconds)}, {message}{tail}")
    return outcome


def _stop(active: list[_Job], echo: Callable[[str], None]) -> None:
    """Forward Ctrl-C to the running children and wait; each further Ctrl-C is forwarded again."""
    if active:
        echo(f"stopping: {len(active)} running job(s) save a checkpoint first (Ctrl-C again to stop them at once)")
    while True:
        for job in active:
            if job.process.poll() is None:
                job.process.send_signal(signal.SIGINT)
        try:
            for job in active:
                job.process.wait()
            return
        except KeyboardInterrupt:
            echo("stopping at once")


def _last_line(path: Path) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1] if lines else ""


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
