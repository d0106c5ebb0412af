"""One array task of `dilbench sweep --launcher slurm`: train, or resume, one run of the sweep.

    python -m dilbench.sweep.slurm_task EXPERIMENT --run NAME --command C [--profile P] [--output-directory D] [--rerun-changed]

NAME `tune:<group>` is a search's tuning slot: the task asks the group's study for its trial when it starts
(slurm_search.py).

The job script execs this, so this process is the job's batch shell and gets what Slurm sends it:

- SIGUSR1, `--signal=B:USR1@90` seconds before the time limit: SIGTERM to the training child, which
  saves a checkpoint after its current batch and ends `interrupted` (the trainer's rule); then
  `scontrol requeue` puts the job back in the queue, and its next start resumes the run.
- SIGTERM (scancel, preemption, the time limit itself, a requeue): Slurm signals every process of the
  job, the child included, which checkpoints the same way; this process only waits for it. A preempted
  job (`--requeue`) comes back and resumes; a cancelled one is resumed by re-running the sweep.

What to do with the run is decided as the sweep decides it (existing.py), when the task starts: a
completed run is skipped, an interrupted or failed one resumed, a missing one started. The child runs
as in a local sweep (execute.py: holds the run's lock, output in `<runs dir>/logs/<run>.log`), with as
many TensorFlow threads as the CPUs Slurm gave the task. When the run completes and so has every other
run of the sweep, this task writes the results page: the last one to finish does.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import os
import signal
import subprocess
import sys
from pathlib import Path

from dilbench.errors import DilbenchError, UsageError
from dilbench.runs.lock import RunLock
from dilbench.signals import handled
from dilbench.sweep.command import sweep_end_hook, write_page
from dilbench.sweep.execute import Outcome, finish_job, launch_job
from dilbench.sweep.existing import Step, decide
from dilbench.sweep.experiment import load_experiment
from dilbench.sweep.plan import Plan, make_plan
from dilbench.sweep.slurm_queue import slurm_dir
from dilbench.sweep.slurm_search import TUNE
from dilbench.sweep.tuning import claim_trial, group_states, with_confirmation


def echo(message: str) -> None:
    print(message, flush=True)  # into the job's output file, <runs dir>/.sweep/slurm/<array>_<task>.out


def run_task(experiment: Path, output_directory: Path | None, profile: str | None, name: str, rerun_changed: bool,
             command: str, sweep_hook: bool = False) -> int:
    """Train or resume run `name` (or a trial of a tuning slot, `tune:<group>`); the exit code (0 also when the job was
    requeued to continue). With `sweep_hook`, the task that writes the final page runs `hooks.on_sweep_end`."""
    plan = make_plan(load_experiment(experiment, output_directory), profile)
    if name.startswith(TUNE):
        return _tuning_slot(plan, name[len(TUNE):], command, sweep_hook)
    if plan.search is not None:
        plan = with_confirmation(plan, group_states(plan, reconcile=True))
    step = next((s for s in decide(plan) if s.run.name == name), None)
    if step is None:
        tuned = next((t for t in plan.tuned if name in [n for n, _, _ in t.confirm]), None)
        if tuned is not None:
            raise UsageError(f"{name} confirms group {tuned.group}'s best trial, but its tuning is not finished (a trial failed "
                             f"or was cancelled); re-run the sweep to finish it")
        raise UsageError(f"{name} is no longer a run of {experiment}: the experiment file changed after the sweep was submitted")
    if step.action == "changed":
        if not rerun_changed:
            raise UsageError(f"{name}: runs of this name exist with another config ({step.detail}); the experiment file "
                             f"changed after they ran. Move them out of {plan.runs_dir} or submit with --rerun-changed")
        step = dataclasses.replace(step, action="start", detail="new run (config changed)")
    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    echo(f"{name}: {step.action} ({step.detail}); Slurm job {os.environ.get('SLURM_JOB_ID', '?')}, restart {restarts}")
    if step.action == "skip":
        _write_page_if_done(plan, command, sweep_hook)
        return 0
    if step.action == "busy":
        return 0
    return _train(plan, step, None, command, sweep_hook)


def _tuning_slot(plan: Plan, group: str, command: str, sweep_hook: bool) -> int:
    """A tuning slot: the trial its group's study gives now (a dead one resumed first, else a new one), trained here."""
    state = next((s for s in group_states(plan, create=True, reconcile=True) if s.tuned.group == group), None)
    if state is None:
        raise UsageError(f"{group} is no longer a tuned group of {plan.experiment.path}: the experiment file changed after the "
                         f"sweep was submitted")
    restarts = os.environ.get("SLURM_RESTART_COUNT", "0")
    claimed = claim_trial(plan, state)
    if claimed is None:
        echo(f"tuning {group}: nothing to do ({len(state.finished)} of {state.budget} trials finished, the others trained "
             f"elsewhere); Slurm job {os.environ.get('SLURM_JOB_ID', '?')}, restart {restarts}")
        _write_page_if_done(plan, command, sweep_hook)
        return 0
    step, lock = claimed
    echo(f"tuning {group}: {step.action} {step.run.name} ({step.detail}); Slurm job {os.environ.get('SLURM_JOB_ID', '?')}, "
         f"restart {restarts}")
    return _train(plan, step, lock, command, sweep_hook)


def _train(plan: Plan, step: Step, lock: RunLock | None, command: str, sweep_hook: bool) -> int:
    job = launch_job(step, 1, 1, plan.runs_dir, task_env(), echo, lock, plan.experiment.spec.hooks.train_options())
    if isinstance(job, Outcome):  # another process got the run's lock first
        return 0
    signals = SlurmSignals(job.process)
    with signals.handled():
        job.process.wait()
    outcome = finish_job(job, plan.runs_dir, 1, echo)
    diverged = step.run.search is not None and step.run.search.get("role") == "tune" and _trial_finished(plan, step)
    if outcome.status in ("completed", "pruned") or diverged:
        _write_page_if_done(plan, command, sweep_hook)
        return 0
    if signals.warned:
        _requeue()
        return 0
    return 130 if outcome.status == "interrupted" else 1


def task_env() -> dict[str, str]:
    """The child's environment: TensorFlow and OpenMP threads = the CPUs Slurm gave this task (unless set),
    not the node's cores, which other jobs share."""
    env = dict(os.environ)
    cpus = os.environ.get("SLURM_CPUS_PER_TASK") or os.environ.get("SLURM_CPUS_ON_NODE")
    if cpus:
        for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
            env.setdefault(var, cpus)
    return env


class SlurmSignals:
    """While the child trains: SIGUSR1 (Slurm's time-limit warning) asks it to checkpoint and stop and
    marks the job for requeue; SIGTERM is left to the child, which Slurm signals itself."""

    def __init__(self, child: subprocess.Popen):
        self.child = child
        self.warned = False

    def handled(self) -> contextlib.AbstractContextManager[None]:
        return handled({signal.SIGUSR1: self.warning, signal.SIGTERM: self.terminate})

    def warning(self, signum: int, frame: object) -> None:
        if not self.warned and self.child.poll() is None:
            echo("Slurm's time-limit warning: asking the run to save a checkpoint and stop, then requeueing the job")
            self.child.send_signal(signal.SIGTERM)
        self.warned = True

    def terminate(self, signum: int, frame: object) -> None:
        echo("SIGTERM: waiting for the run to save a checkpoint and stop")


def _requeue() -> None:
    """Put this job back in the queue; Slurm then stops this process (SIGTERM, ignored: nothing is left to do)."""
    job = os.environ.get("SLURM_JOB_ID")
    if not job:
        raise DilbenchError("SLURM_JOB_ID is not set: not inside a Slurm job, so it cannot be requeued")
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    result = subprocess.run(["scontrol", "requeue", job], capture_output=True, text=True)
    if result.returncode != 0:
        raise DilbenchError(f"scontrol requeue {job} failed ({result.stderr.strip()}); re-run the sweep to resume the run")
    echo(f"requeued job {job}: its next start resumes the run")


def _write_page_if_done(plan: Plan, command: str, sweep_hook: bool = False) -> None:
    """The results page, if every run of the sweep has completed; under a lock, so tasks ending together
    take turns and the last one sees every run completed. With `sweep_hook` (a sweep submitted with
    --no-wait), that task also runs the experiment's `hooks.on_sweep_end`."""
    lock = slurm_dir(plan.runs_dir) / "report.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        states = group_states(plan, reconcile=True) if plan.search else []
        full = with_confirmation(plan, states)
        left = [step.run.name for step in decide(full) if step.action != "skip"]
        left += [f"tuning of {state.tuned.group}" for state in states if not state.done]
        if left:
            echo(f"results page: waiting for {len(left)} more run(s) to complete")
            return
        write_page(plan, command, echo)
        if sweep_hook:
            sweep_end_hook(plan, "completed")


def _trial_finished(plan: Plan, step: Step) -> bool:
    """Whether a tuning run that did not complete is a finished trial all the same (it diverged)."""
    search = step.run.search or {}
    state = next((s for s in group_states(plan) if s.tuned.group == search.get("group")), None)
    trial = next((t for t in state.trials if t.number == search.get("trial")), None) if state else None
    return trial is not None and trial.finished


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dilbench.sweep.slurm_task", description=__doc__.split("\n\n")[0])
    parser.add_argument("experiment", type=Path)
    parser.add_argument("--run", required=True, help="the run (config name) this task trains")
    parser.add_argument("--command", required=True, help="the sweep command, for the results page")
    parser.add_argument("--profile")
    parser.add_argument("--output-directory", type=Path)
    parser.add_argument("--rerun-changed", action="store_true")
    parser.add_argument("--sweep-end-hook", action="store_true", help="the last run to complete runs hooks.on_sweep_end")
    args = parser.parse_args(argv)
    try:
        return run_task(args.experiment, args.output_directory, args.profile, args.run, args.rerun_changed, args.command,
                        args.sweep_end_hook)
    except DilbenchError as err:
        print(f"Error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
