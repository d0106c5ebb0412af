"""`dilbench sweep`: plan the runs, see what earlier sweeps left, run the rest, write the results page.

No TensorFlow here: the runs are child processes, so planning, --dry-run and --report-only stay fast.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from dilbench.errors import UsageError
from dilbench.sweep.execute import Outcome, run_jobs, thread_env
from dilbench.sweep.existing import Step, decide
from dilbench.sweep.experiment import load_experiment
from dilbench.sweep.plan import Plan, make_plan
from dilbench.sweep.slurm_submit import SlurmLaunch, queued_as_busy, submit, sweep_script, wait_for
from dilbench.sweep.verdict import VERDICTS
from dilbench.tables import text_table

ORDER = ("start", "resume", "skip", "busy", "changed")


def sweep(path: str | Path, profile: str | None, jobs: int | None, dry_run: bool, rerun_changed: bool, report_only: bool,
          command: str, echo: Callable[[str], None], output_directory: Path | None = None, slurm: SlurmLaunch | None = None) -> int:
    """Run one sweep; returns the exit code (1 if a run did not complete). Errors before any run raise UsageError.

    Runs and results go beside the experiment file, or under `output_directory` (a bundled experiment).
    `slurm` submits the runs as a Slurm job array instead of running them here (`jobs`: its limit)."""
    plan = make_plan(load_experiment(path, output_directory), profile)
    steps = decide(plan)
    resources = plan.experiment.spec.slurm.override(slurm.overrides) if slurm else None
    if slurm:
        steps = queued_as_busy(steps, plan.runs_dir)
    echo(describe(plan, steps, "would" if dry_run else "report only, not running" if report_only else "will"))
    changed = [step for step in steps if step.action == "changed"]
    if changed and not (rerun_changed or report_only):
        raise UsageError(
            f"{len(changed)} run(s) exist with another config than the experiment file now gives "
            f"({', '.join(s.run.name for s in changed)}): the file changed since they ran. Move those run directories out of "
            f"{plan.runs_dir}, or pass --rerun-changed to start new runs beside them (the page then reports only the new ones)"
        )
    if rerun_changed:
        steps = [dataclasses.replace(s, action="start", detail="new run (config changed)") if s.action == "changed" else s
                 for s in steps]
    todo = [step for step in steps if step.action in ("start", "resume")]
    script = sweep_script(plan, todo, resources, jobs, rerun_changed, command) if resources and todo else None
    if dry_run:
        if script:
            echo(f"would submit this job script:\n{script}")
        return 0
    outcomes: list[Outcome] = []
    if not report_only:
        check_data(todo)
        if script and slurm:
            submission = submit(plan, todo, script, echo)
            status = status_command(plan, output_directory)
            if not slurm.wait:
                echo(f"not waiting: `{status}` shows the runs; the last run to complete writes the results page")
                return 0
            echo(f"waiting for the jobs (Ctrl-C stops waiting, not the jobs; `{status}` shows them)")
            outcomes = wait_for(submission, plan, status, echo)
        elif not slurm:
            jobs = jobs or 1
            if jobs > 1:
                threads = thread_env(jobs).get("TF_NUM_INTRAOP_THREADS", "?")
                echo(f"{jobs} jobs at a time, {threads} TensorFlow thread(s) each")
            outcomes = run_jobs(steps, plan.runs_dir, jobs, echo)
    write_page(plan, command, echo)
    unfinished = [o for o in outcomes if o.status not in ("completed", "pruned", "busy")]  # failed, or interrupted from outside
    if unfinished:
        echo(f"{len(unfinished)} of {len(outcomes)} run(s) did not complete:")
        for outcome in unfinished:
            echo(f"  {outcome.step.run.name}: {outcome.status}: {outcome.message} (log: {outcome.log})")
        return 1
    return 0


def status(path: str | Path, profile: str | None, echo: Callable[[str], None], output_directory: Path | None = None) -> int:
    """`--status`: each run's state from its run directory and its Slurm job; changes nothing."""
    from dilbench.sweep.status import status_lines

    for line in status_lines(make_plan(load_experiment(path, output_directory), profile)):
        echo(line)
    return 0


def status_command(plan: Plan, output_directory: Path | None) -> str:
    """The command that shows this sweep's status (a bundled experiment by its name)."""
    experiment = plan.experiment.path.parent.name if output_directory else str(plan.experiment.path)
    return shlex.join(["dilbench", "sweep", experiment, *(["--profile", plan.profile] if plan.profile else []), "--status"])


def write_page(plan: Plan, command: str, echo: Callable[[str], None]) -> None:
    """The results page from the runs the plan finds now (a Slurm sweep's last task calls this too)."""
    chosen = {s.run.name: s.path for s in decide(plan) if s.path is not None and s.action != "changed"}
    if not chosen:
        echo("no runs to report yet")
        return
    from dilbench.sweep.report import write_report  # matplotlib and the report library: only now

    report = write_report(plan, chosen, command)
    echo(f"wrote {report.markdown} and {report.curves}")
    if report.verdicts:
        tally = Counter(report.verdicts)
        echo("claims: " + ", ".join(f"{verdict} {tally[verdict]}" for verdict in VERDICTS))


def check_data(todo: list[Step]) -> None:
    """Find every data set the runs to start or resume (`todo`) read, once, before any run starts: a
    missing one would otherwise fail every run with the same long error. Downloads (where allowed) happen here."""
    from dilbench.data import DataError, locate_dataset

    needed: dict[tuple[str, str | None], list[str]] = {}
    for step in todo:
        data = step.run.config.data
        needed.setdefault((data.dataset, data.root), []).append(step.run.name)
    for (dataset, root), runs in needed.items():
        try:
            locate_dataset(dataset, root)
        except DataError as err:
            raise DataError(f"{err} (no run started; {len(runs)} run(s) need it)") from None


def describe(plan: Plan, steps: list[Step], verb: str) -> str:
    """The plan as one line per run: what will happen to it and why."""
    rows = [[step.action, step.run.name, step.detail + (f"  ({step.path.name})" if step.path else "")] for step in steps]
    lines = [plan.heading(len(steps)), text_table(rows, indent="  ")]
    counts = Counter(step.action for step in steps)
    lines.append(f"{verb}: " + ", ".join(f"{action} {counts[action]}" for action in ORDER if counts[action]))
    return "\n".join(lines)
