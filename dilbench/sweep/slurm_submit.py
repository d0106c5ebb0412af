"""`dilbench sweep --launcher slurm`: the runs to start or resume as one Slurm job array, a task per run.

Plain `sbatch` and a job script rather than a client library (submitit): the script is a dozen
readable lines, kept in `<runs dir>/.sweep/slurm/`, that a user can read, edit and resubmit by hand;
the nodes need nothing but dilbench; and checkpoint, resume and "what is left to do" already live in
the run directories (submitit's pickled callables and its own checkpointing would duplicate them).

Each task execs `python -m dilbench.sweep.slurm_task` for its run (signals, requeue and the results
page are explained there). `--jobs N` becomes the array's `%N`. The job's working directory is the
submitting one, so relative paths mean the same on the nodes: runs directories, data and the
checkout must be on a file system every node sees.
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dilbench.errors import UsageError
from dilbench.runs.rundir import RunDir, utc_now, write_atomic
from dilbench.sweep.execute import Outcome, SweepInterrupted
from dilbench.sweep.existing import Step, final_accuracy, latest_same
from dilbench.sweep.plan import Plan
from dilbench.sweep.slurm_queue import JobState, SlurmQueryError, job_states, record_jobs, recorded_jobs, slurm_dir
from dilbench.sweep.slurm_resources import SlurmResources

# Slurm's warning before the time limit: SIGUSR1 to the job script (B:) 90 s ahead, which checkpoints
# and requeues the run. An `--signal=...` in the sbatch options comes later in the script and wins.
WARNING = "--signal=B:USR1@90"
POLL_SECONDS = 2.0  # how often a waiting sweep asks squeue


@dataclass(frozen=True)
class SlurmLaunch:
    """`--launcher slurm`: the resources given on the command line (None: not given), on top of the
    experiment file's `slurm:` section, and whether the sweep waits for the jobs."""

    overrides: dict[str, Any] = field(default_factory=dict)
    wait: bool = True


@dataclass(frozen=True)
class Submission:
    array: str  # the array job's id
    script: Path
    steps: list[Step]  # array task i trains steps[i]

    def job(self, index: int) -> str:
        return f"{self.array}_{index}"


def queued_as_busy(steps: list[Step], runs_dir: Path) -> list[Step]:
    """Runs whose Slurm job is still queued or running are left alone (`busy`), never submitted twice."""
    jobs = recorded_jobs(runs_dir)
    states = job_states(jobs[s.run.name] for s in steps if s.action in ("start", "resume") and s.run.name in jobs)
    return [dataclasses.replace(s, action="busy", detail=f"Slurm job {states[jobs[s.run.name]]}")
            if s.action in ("start", "resume") and s.run.name in jobs and jobs[s.run.name] in states
            and states[jobs[s.run.name]].active else s
            for s in steps]


def sweep_script(plan: Plan, steps: list[Step], resources: SlurmResources, jobs: int | None, rerun_changed: bool,
                 command: str, sweep_hook: bool = False) -> str:
    """The job script that trains `steps`, one array task each; with `sweep_hook` (a sweep that does not wait),
    the task that writes the final results page also runs the experiment's `hooks.on_sweep_end`."""
    experiment = plan.experiment
    task = task_command(experiment.path, experiment.output_directory, plan.profile, rerun_changed, command,
                        sweep_hook and bool(experiment.spec.hooks.on_sweep_end))
    return array_script(plan, [step.run.name for step in steps], resources, jobs, task)


def task_command(experiment: Path, output_directory: Path | None, profile: str | None, rerun_changed: bool,
                 command: str, sweep_hook: bool = False) -> list[str]:
    """What every array task runs, before `--run NAME`; with `sweep_hook`, the task that writes the final results
    page also runs the experiment's `hooks.on_sweep_end`."""
    args = [sys.executable, "-m", "dilbench.sweep.slurm_task", str(experiment), "--command", command]
    args += ["--output-directory", str(output_directory)] if output_directory else []
    args += ["--profile", profile] if profile else []
    return args + (["--rerun-changed"] if rerun_changed else []) + (["--sweep-end-hook"] if sweep_hook else [])


def array_script(plan: Plan, names: list[str], resources: SlurmResources, jobs: int | None, task: list[str],
                 after: Sequence[str] = ()) -> str:
    """The sbatch script: one array task per run name (or a search's tuning slot, `tune:<group>`), each training (or
    resuming) its run; `after`: jobs it waits for (afterany), e.g. a search's confirmation runs waiting for its tuning."""
    name = "-".join(["dilbench", plan.experiment.spec.name] + ([plan.profile] if plan.profile else []))
    options = [
        f"--job-name={name}",
        f"--array=0-{len(names) - 1}" + (f"%{jobs}" if jobs else ""),
        *([f"--dependency=afterany:{':'.join(after)}"] if after else []),
        "--ntasks=1",
        f"--chdir={Path.cwd()}",
        f"--output={slurm_dir(plan.runs_dir) / '%A_%a.out'}",
        "--open-mode=append",  # a requeued task adds to its output
        "--requeue",  # preempted or warned tasks go back to the queue and resume
        WARNING,
        *resources.directives(),
    ]
    runs = " ".join(shlex.quote(name) for name in names)
    return "\n".join([
        "#!/bin/bash",
        *(f"#SBATCH {option}" for option in options),
        f"# Written by dilbench at {utc_now()}: array task i trains RUNS[i] of {plan.experiment.path}"
        + (f", profile {plan.profile}" if plan.profile else "") + ".",
        "# Runs directories, data and dilbench itself must be on a file system every node sees.",
        f"RUNS=({runs})",
        f'exec {shlex.join(task)} --run "${{RUNS[$SLURM_ARRAY_TASK_ID]}}"',
        "",
    ])


def submit(plan: Plan, steps: list[Step], script: str, echo: Callable[[str], None]) -> Submission:
    """Write the script beside the runs, submit it with sbatch and record each run's array task."""
    array, path = submit_script(plan, script)
    submission = Submission(array, path, steps)
    record_jobs(plan.runs_dir, {step.run.name: submission.job(i) for i, step in enumerate(steps)})
    echo(f"submitted job array {array}: {len(steps)} run(s), one array task each ({path})")
    return submission


def submit_script(plan: Plan, script: str, suffix: str = "") -> tuple[str, Path]:
    """Write the script beside the runs and submit it with sbatch: the array's job id, and the script's path."""
    if shutil.which("sbatch") is None:
        raise UsageError("--launcher slurm needs Slurm's sbatch on PATH (run on a cluster's login node), or use --launcher local")
    directory = slurm_dir(plan.runs_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"sweep-{utc_now().replace(':', '').replace('+0000', 'Z')}{suffix}.sh"
    write_atomic(path, script)
    result = subprocess.run(["sbatch", "--parsable", str(path)], capture_output=True, text=True)
    if result.returncode != 0:
        raise UsageError(f"sbatch refused the sweep's job array ({(result.stderr or result.stdout).strip()}); nothing was "
                         f"submitted. The script is {path}")
    return result.stdout.strip().split(";")[0], path  # `123` or `123;cluster`


def wait_for(submission: Submission, plan: Plan, status_command: str, echo: Callable[[str], None]) -> list[Outcome]:
    """Poll squeue until every task of the array has left it (a requeued task waits again); one Outcome per run.

    Ctrl-C stops waiting, not the jobs."""
    left = dict(enumerate(submission.steps))
    outcomes: list[Outcome] = []
    failing = False  # squeue failing now: say so once, and keep asking
    try:
        while left:
            try:
                states = job_states(submission.job(i) for i in left)
            except SlurmQueryError as err:
                if not failing:
                    echo(f"{err}; asking again every {POLL_SECONDS:g} s")
                failing = True
                time.sleep(POLL_SECONDS)
                continue
            failing = False
            for i, step in list(left.items()):
                state = states.get(submission.job(i))
                if state is None or not state.active:
                    outcomes.append(task_outcome(step, state or JobState(submission.job(i), "ended"), plan.runs_dir))
                    del left[i]
                    outcome = outcomes[-1]
                    echo(f"[{len(outcomes)}/{len(submission.steps)}] {step.run.name}: {outcome.status}, {outcome.message}")
            if left:
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        raise SweepInterrupted(
            f"stopped waiting; {len(left)} run(s) keep running in Slurm: `{status_command}` shows them, "
            f"`scancel {submission.array}` cancels them (each saves a checkpoint), and re-running the sweep resumes them"
        ) from None
    return outcomes


def task_outcome(step: Step, state: JobState, runs_dir: Path) -> Outcome:
    """What an ended array task left: its run directory's status, or the job's own output if it made none."""
    found = latest_same(runs_dir, step.run)
    meta = RunDir(found.path).read_meta() if found and found.status != "unknown" else {}
    status = meta.get("status", "failed")
    if status in ("completed", "pruned"):
        message = final_accuracy(meta) if meta.get("final_eval_acc") is not None else "no epoch finished"
    elif status == "running":
        status, message = "failed", "the job ended while the run said `running`"
    else:
        message = meta.get("error") or "the job made no run directory"
    return Outcome(step, status, found.path if found else None, f"{message} (Slurm job {state})",
                   log=runs_dir / "logs" / f"{step.run.name}.log")
