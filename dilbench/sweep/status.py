"""`dilbench sweep EXPERIMENT --status`: each run's state from its run directory, and its Slurm job's.

With each run its peak memory (metrics.jsonl's peak_rss_bytes, and gpu_peak_bytes on GPUs), and from the
largest the `--mem` to ask Slurm for.

The run directory is the truth about the run (status, epochs done); the Slurm job, if the sweep was
submitted to Slurm, tells whether it is still queued, running or requeued. Reads only: no lock taken,
nothing written, no TensorFlow.
"""

from __future__ import annotations

import math
from collections import Counter

from dilbench.runs.lock import is_locked
from dilbench.runs.rundir import RunDir
from dilbench.sweep.existing import final_accuracy, latest_same, lock_path, save, scan
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
    peak_rss: list[int] = []
    tally: Counter[str] = Counter()
    runs = scan(plan.runs_dir)  # once for all: every run directory's config, status and epochs from compare's index
    for run in plan.runs:
        found = latest_same(plan.runs_dir, run, runs)
        job = states.get(jobs.get(run.name, ""))
        if found is None or found.record is None:
            state, detail = ("queued" if job and job.active else "not started"), ""
        else:
            meta = found.record.meta if found.status != "unknown" else {}
            state = found.status  # a dead owner already reads `crashed`, one on another host `stale` (owner.py)
            if state in ("running", "crashed", "stale") and job and job.active:
                state = "running"  # Slurm runs its job
            elif state in ("running", "stale") and not (is_locked(lock_path(plan.runs_dir, run.name))
                                                         or is_locked(RunDir(found.path).lock_file)):
                state = "crashed"  # says running, but no process holds its locks
            detail = f"{found.record.reduced('epochs')}/{run.config.train.epochs} epochs"
            if state in ("completed", "pruned") and meta.get("final_eval_acc") is not None:
                detail += f", {final_accuracy(meta)}"
            peaks = {key: value for key in ("peak_rss_bytes", "gpu_peak_bytes")
                     if (value := found.record.reduced(f"max:{key}")) is not None}
            if peaks:
                peak_rss.append(peaks.get("peak_rss_bytes", 0))
                detail += ", peak " + ", ".join(f"{_gib(value)} {'GPU' if key.startswith('gpu') else 'RSS'}"
                                                for key, value in peaks.items())
            detail += f"  ({found.path.name})"
        tally[state] += 1
        slurm = f"Slurm job {job}" if job else f"Slurm job {jobs[run.name]}" if run.name in jobs else ""
        rows.append([state, run.name, "  ".join(part for part in (detail, slurm) if part)])
    save(runs)
    lines = text_table(rows, indent="  ").splitlines()
    page = plan.results_dir / "RESULTS.md"
    summary = ", ".join(f"{state} {count}" for state, count in tally.most_common())
    search = search_lines(plan, groups) if plan.search else []
    return [plan.heading(len(plan.runs)), *lines, summary, *search, *memory_advice(peak_rss, plan.experiment.spec.slurm.mem),
            f"results page: {page}" + ("" if page.is_file() else " (not written yet)"), *([problem] if problem else [])]


HEADROOM = 1.25  # on top of the largest peak seen: other runs of the sweep may peak higher, and Slurm kills at the limit


def suggest_mem(peak: float) -> str:
    """Slurm's --mem for a run whose resident memory peaked at `peak` bytes: HEADROOM on top, rounded up
    (whole GiB from 1 GiB up, else hundreds of MiB)."""
    needed = peak * HEADROOM
    if needed >= 2**30:
        return f"{math.ceil(needed / 2**30)}G"
    return f"{max(1, math.ceil(needed / (100 * 2**20))) * 100}M"


def memory_advice(peaks: list[int], asked: str | int | None) -> list[str]:
    """The --mem to ask for, from the peaks the runs recorded (nothing when none did)."""
    if not any(peaks):
        return []
    largest = max(peaks)
    note = f"; the experiment file asks for {asked}" if asked else ""
    return [f"suggested Slurm --mem: {suggest_mem(largest)} (largest peak RSS {_gib(largest)} of {len(peaks)} run(s), "
            f"+{HEADROOM - 1:.0%} headroom{note})"]


def _gib(count: float) -> str:
    return f"{count / 2**30:.2f} GiB" if count >= 2**30 else f"{count / 2**20:.0f} MiB"
