"""`dilbench sweep EXPERIMENT --status`: each run's state from its run directory, and its Slurm job's.

The run directory is the truth about the run (status, epochs done); the Slurm job, if the sweep was
submitted to Slurm, tells whether it is still queued, running or requeued. Reads only: no lock taken,
nothing written, no TensorFlow.
"""

from __future__ import annotations

from collections import Counter

from dilbench.runs.lock import is_locked
from dilbench.runs.rundir import RunDir
from dilbench.sweep.existing import final_accuracy, latest_same, lock_path
from dilbench.sweep.plan import Plan
from dilbench.sweep.slurm_queue import SlurmQueryError, job_states, recorded_jobs
from dilbench.sweep.tuning import group_states, search_lines, with_confirmation
from dilbench.tables import text_table


def status_lines(plan: Plan) -> list[str]:
    """One line per run: its state, epochs done, final accuracy and run directory, then its Slurm job; with a search,
    then each tuned group's trials (their state in the study and what their run directories need)."""
    groups = group_states(plan) if plan.search else []
    plan = with_confirmation(plan, groups)
    jobs = recorded_jobs(plan.runs_dir)
    try:
        states, problem = job_states(jobs[run.name] for run in plan.runs if run.name in jobs), None
    except SlurmQueryError as err:
        states, problem = {}, f"Slurm jobs unknown: {err}"
    rows: list[list[str]] = []
    tally: Counter[str] = Counter()
    for run in plan.runs:
        found = latest_same(plan.runs_dir, run)
        job = states.get(jobs.get(run.name, ""))
        if found is None:
            state, detail = ("queued" if job and job.active else "not started"), ""
        else:
            meta = RunDir(found.path).read_meta() if found.status != "unknown" else {}
            state = found.status  # a dead owner already reads `crashed`, one on another host `stale` (owner.py)
            if state in ("running", "crashed", "stale") and job and job.active:
                state = "running"  # Slurm runs its job
            elif state in ("running", "stale") and not (is_locked(lock_path(plan.runs_dir, run.name))
                                                         or is_locked(RunDir(found.path).lock_file)):
                state = "crashed"  # says running, but no process holds its locks
            records = RunDir(found.path).read_metrics()
            detail = f"{len(records)}/{run.config.train.epochs} epochs"
            if state in ("completed", "pruned") and meta.get("final_eval_acc") is not None:
                detail += f", {final_accuracy(meta)}"
            detail += f"  ({found.path.name})"
        tally[state] += 1
        slurm = f"Slurm job {job}" if job else f"Slurm job {jobs[run.name]}" if run.name in jobs else ""
        rows.append([state, run.name, "  ".join(part for part in (detail, slurm) if part)])
    lines = text_table(rows, indent="  ").splitlines()
    page = plan.results_dir / "RESULTS.md"
    summary = ", ".join(f"{state} {count}" for state, count in tally.most_common())
    search = search_lines(plan, groups) if plan.search else []
    return [plan.heading(len(plan.runs)), *lines, summary, *search,
            f"results page: {page}" + ("" if page.is_file() else " (not written yet)"), *([problem] if problem else [])]
