"""`dilbench sweep --launcher slurm` with a search: the trials and confirmation runs as Slurm array tasks.

A trial's values are not known when the job is submitted, so the array holds *tuning slots*: a task whose
entry is `tune:<group>` asks the group's study for its trial when it starts (tuning.claim_trial: under the
study's ask lock, a trial whose run died is resumed first, else a new one is asked if the budget allows, else
the task has nothing to do), trains it as its child, which reports each epoch to the study and is pruned or
completes there, exactly as in a local sweep. A requeued task (the time-limit warning) takes the interrupted
trial again. The journal's file lock is NFS-safe (study.py), which is what makes this work across nodes.

    array 1   the fixed-rate runs to start or resume, confirmation runs of groups already tuned, and one tuning
              slot per trial a group still needs (its budget less finished trials and tuning tasks still queued)
    array 2   `--dependency=afterany:` array 1 (and earlier queued tuning tasks): the confirmation runs of the
              groups still tuning; each task finds its run's values in the finished study when it starts

The last task to finish writes the results page (slurm_task.py), as in any Slurm sweep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from dilbench.sweep.execute import Outcome, SweepInterrupted
from dilbench.sweep.existing import Step, decide
from dilbench.sweep.plan import Plan
from dilbench.sweep.slurm_queue import JobState, SlurmQueryError, job_states, record_jobs, recorded_jobs
from dilbench.sweep.slurm_resources import SlurmResources
from dilbench.sweep.slurm_submit import POLL_SECONDS, array_script, submit_script, task_command, task_outcome
from dilbench.sweep.tuning import GroupState, group_states, with_confirmation

TUNE = "tune:"  # an array entry `tune:<group>`: a tuning slot of that group (no run name has a colon)


@dataclass(frozen=True)
class SearchArrays:
    now: list[str]  # array 1: run names and tuning slots
    later: list[str]  # array 2: confirmation runs of groups still tuning
    after: list[str]  # queued tuning tasks of earlier submissions, which array 2 also waits for


def plan_arrays(plan: Plan, todo: list[Step], states: list[GroupState], rerun_changed: bool = False) -> SearchArrays:
    """What to submit: `todo` (the fixed runs to start or resume), tuning slots, and confirmation runs."""
    jobs = recorded_jobs(plan.runs_dir)
    slots = {key: job for key, job in jobs.items() if key.startswith(TUNE)}
    known = job_states(slots.values())
    queued = {key: job for key, job in slots.items() if job in known and known[job].active}
    active_runs = job_states(jobs[name] for name in jobs if not name.startswith(TUNE))
    now = [step.run.name for step in todo]
    later: list[str] = []
    after: list[str] = []
    for state in states:
        group = state.tuned.group
        if state.done:
            wanted = ("start", "resume", "changed") if rerun_changed else ("start", "resume")
            now += [c.run.name for c in state.confirm if c.action in wanted and not _queued(c.run.name, jobs, active_runs)]
            continue
        mine = [job for key, job in queued.items() if key.split("#")[0] == TUNE + group]
        busy = sum(1 for t in state.trials if not t.finished and t.step.action == "busy")
        need = state.budget - len(state.finished) - max(busy, len(mine))
        now += [TUNE + group] * max(0, need)
        later += [name for name, _, _ in state.tuned.confirm if not _queued(name, jobs, active_runs)]
        after += mine
    return SearchArrays(now, later, sorted(set(after)))


def _queued(name: str, jobs: dict[str, str], states: dict) -> bool:
    return name in jobs and jobs[name] in states and states[jobs[name]].active


def scripts(plan: Plan, arrays: SearchArrays, resources: SlurmResources, jobs: int | None, rerun_changed: bool,
            command: str, first: str = "<array 1>", sweep_hook: bool = False) -> tuple[str | None, str | None]:
    """The two job scripts (None where an array is empty); `first`: array 1's job id, for array 2's dependency;
    `sweep_hook`: the task that writes the final page runs `hooks.on_sweep_end` (a sweep that does not wait)."""
    experiment = plan.experiment
    task = task_command(experiment.path, experiment.output_directory, plan.profile, rerun_changed, command,
                        sweep_hook and bool(experiment.spec.hooks.on_sweep_end))
    one = array_script(plan, arrays.now, resources, jobs, task) if arrays.now else None
    after = ([first] if arrays.now else []) + arrays.after
    two = array_script(plan, arrays.later, resources, jobs, task, after) if arrays.later else None
    return one, two


def submit_search(plan: Plan, arrays: SearchArrays, resources: SlurmResources, jobs: int | None, rerun_changed: bool,
                  command: str, echo: Callable[[str], None], sweep_hook: bool = False) -> list[str]:
    """Submit array 1, then array 2 depending on it; record each entry's array task; the array tasks' job ids."""
    submitted: list[str] = []
    first = None
    one, _ = scripts(plan, arrays, resources, jobs, rerun_changed, command, sweep_hook=sweep_hook)
    if one:
        first, path = submit_script(plan, one)
        entries = {name if not name.startswith(TUNE) else f"{name}#{first}_{i}": f"{first}_{i}" for i, name in enumerate(arrays.now)}
        record_jobs(plan.runs_dir, entries)
        slots = sum(1 for name in arrays.now if name.startswith(TUNE))
        echo(f"submitted job array {first}: {len(arrays.now) - slots} run(s) and {slots} tuning slot(s), one array task each ({path})")
        submitted += entries.values()
    if arrays.later:
        _, two = scripts(plan, arrays, resources, jobs, rerun_changed, command, first or "", sweep_hook)
        assert two is not None
        second, path = submit_script(plan, two, "-confirm")
        record_jobs(plan.runs_dir, {name: f"{second}_{i}" for i, name in enumerate(arrays.later)})
        waits = ", ".join(([first] if first else []) + arrays.after)
        echo(f"submitted job array {second}: {len(arrays.later)} confirmation run(s), after {waits} ({path})")
        submitted += [f"{second}_{i}" for i in range(len(arrays.later))]
    return submitted


def wait_for_search(plan: Plan, submitted: list[str], status_command: str, echo: Callable[[str], None]) -> list[Outcome]:
    """Poll squeue until every submitted task has left it; then each run's outcome from its run directory, and each
    tuned group's tuning. Ctrl-C stops waiting, not the jobs."""
    left = set(submitted)
    failing = False
    try:
        while left:
            try:
                states = job_states(left)
            except SlurmQueryError as err:
                if not failing:
                    echo(f"{err}; asking again every {POLL_SECONDS:g} s")
                failing = True
                time.sleep(POLL_SECONDS)
                continue
            failing = False
            ended = {job for job in left if job not in states or not states[job].active}
            if ended:
                left -= ended
                echo(f"{len(submitted) - len(left)} of {len(submitted)} Slurm task(s) done")
            if left:
                time.sleep(POLL_SECONDS)
    except KeyboardInterrupt:
        raise SweepInterrupted(f"stopped waiting; {len(left)} task(s) keep running in Slurm: `{status_command}` shows them, and "
                               f"re-running the sweep resumes what they leave unfinished") from None
    groups = group_states(plan, reconcile=True)
    full = with_confirmation(plan, groups)
    jobs = recorded_jobs(plan.runs_dir)
    outcomes = []
    for step in decide(full):
        if step.run.name in jobs and jobs[step.run.name] in submitted:
            outcomes.append(task_outcome(step, JobState(jobs[step.run.name], "ended"), plan.runs_dir))
    for state in groups:
        echo(f"tuning {state.tuned.group}: {len(state.finished)} of {state.budget} trials finished ({state.counts()})")
    return outcomes
