"""`dilbench sweep`: plan the runs, see what earlier sweeps left, run the rest, write the results page.

No TensorFlow here: the runs are child processes, so planning, --dry-run and --report-only stay fast.
"""

from __future__ import annotations

import dataclasses
import logging
import shlex
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from dilbench.errors import UsageError
from dilbench.runs.hooks import Hook, run_hook
from dilbench.sweep.execute import Outcome, SweepInterrupted, run_jobs, thread_env
from dilbench.sweep.existing import Step, decide
from dilbench.sweep.experiment import load_experiment
from dilbench.sweep.plan import Plan, PlannedRun, make_plan
from dilbench.sweep.slurm_search import plan_arrays, scripts, submit_search, wait_for_search
from dilbench.sweep.slurm_submit import SlurmLaunch, queued_as_busy, submit, sweep_script, wait_for
from dilbench.sweep.tuning import GroupState, SearchWork, check_confirmation, group_states, search_lines, with_confirmation
from dilbench.sweep.verdict import VERDICTS
from dilbench.tables import text_table

ORDER = ("start", "resume", "skip", "busy", "changed")


@dataclasses.dataclass(frozen=True, kw_only=True)
class SweepOptions:
    """How to run a sweep: what `dilbench sweep`'s options say, as keyword fields with the CLI's defaults."""

    profile: str | None = None  # the experiment's profile (None: its base setup)
    jobs: int | None = None  # runs at a time here; with `slurm`, the array's limit
    dry_run: bool = False  # say what would run, run nothing
    rerun_changed: bool = False  # start runs anew whose config the experiment file changed since
    report_only: bool = False  # only write the results page from the runs there are
    command: str = "dilbench sweep"  # the command line the results page gives to reproduce it
    output_directory: Path | None = None  # runs and results here instead of beside the experiment (a bundled one)
    slurm: SlurmLaunch | None = None  # submit to Slurm as job arrays instead of running here


def sweep(path: str | Path, options: SweepOptions = SweepOptions(), echo: Callable[[str], None] = print) -> int:
    """Run one sweep; returns the exit code (1 if a run did not complete). Errors before any run raise UsageError.

    Runs and results go beside the experiment file, or under `options.output_directory` (a bundled experiment).
    `options.slurm` submits the runs as Slurm job arrays instead of running them here (`jobs`: their limit).
    `echo` gets each line of progress (the CLI's click.echo)."""
    profile, jobs, dry_run, rerun_changed = options.profile, options.jobs, options.dry_run, options.rerun_changed
    report_only, command, output_directory, slurm = options.report_only, options.command, options.output_directory, options.slurm
    plan = make_plan(load_experiment(path, output_directory), profile)
    steps = decide(plan)
    resources = plan.experiment.spec.slurm.override(slurm.overrides) if slurm else None
    if slurm:
        steps = queued_as_busy(steps, plan.runs_dir)
    states = group_states(plan, rerun_changed=rerun_changed) if plan.search else []  # reads only: nothing made yet
    echo(describe(plan, steps, "would" if dry_run else "report only, not running" if report_only else "will", states))
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
    if plan.search:
        check_confirmation(states, rerun_changed)
    script = (sweep_script(plan, todo, resources, jobs, rerun_changed, command, sweep_hook=bool(slurm and not slurm.wait))
              if resources and todo and not plan.search else None)
    arrays = plan_arrays(plan, todo, states, rerun_changed) if resources and plan.search else None
    if dry_run:
        if script:
            echo(f"would submit this job script:\n{script}")
        if arrays and resources:
            one, two = scripts(plan, arrays, resources, jobs, rerun_changed, command)
            for text, what in ((one, "job script"), (two, "job script for the confirmation runs, after the first")):
                if text:
                    echo(f"would submit this {what}:\n{text}")
        return 0
    outcomes: list[Outcome] = []
    left: list[str] = []
    searching = plan.search is not None and not all(state.done and state.confirm for state in states)
    if not report_only:
        check_data([step.run for step in todo] + [plan.trial_run(t, 0, {}, {}) for t in plan.tuned[:1]] if searching else
                   [step.run for step in todo])
        if arrays is not None and slurm and resources:
            states = group_states(plan, create=True, reconcile=True, rerun_changed=rerun_changed)  # before the tasks race to
            arrays = plan_arrays(plan, todo, states, rerun_changed)
            submitted = submit_search(plan, arrays, resources, jobs, rerun_changed, command, echo, sweep_hook=not slurm.wait)
            status = status_command(plan, output_directory)
            if not submitted:
                echo("nothing to submit")
            elif not slurm.wait:
                echo(f"not waiting: `{status}` shows the runs and trials; the last task to finish writes the results page")
                return 0
            else:
                echo(f"waiting for the jobs (Ctrl-C stops waiting, not the jobs; `{status}` shows them)")
                outcomes = wait_for_search(plan, submitted, status, echo)
        elif script and slurm:
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
            work = SearchWork(plan, steps, rerun_changed, echo) if plan.search else None
            try:
                outcomes = run_jobs(steps, plan.runs_dir, jobs, echo, work, plan.experiment.spec.hooks.train_options())
            except SweepInterrupted:
                sweep_end_hook(plan, "interrupted")
                raise
            left = work.summary() if work else []
            for line in left:
                echo(line)
    write_page(plan, command, echo)
    unfinished = [o for o in outcomes if o.status not in ("completed", "pruned", "diverged", "busy")]  # failed, or interrupted
    if not report_only:
        sweep_end_hook(plan, "failed" if unfinished else "completed")
    if unfinished:
        echo(f"{len(unfinished)} of {len(outcomes)} run(s) did not complete:")
        for outcome in unfinished:
            echo(f"  {outcome.step.run.name}: {outcome.status}: {outcome.message} (log: {outcome.log})")
        return 1
    if not report_only and not dry_run and not slurm and plan.search and left:
        return 1
    return 0


def sweep_end_hook(plan: Plan, status: str) -> None:
    """The experiment's `hooks.on_sweep_end`, if any (runs/hooks.py): its failure is a warning, nothing more."""
    hooks = plan.experiment.spec.hooks
    if not hooks.on_sweep_end:
        return
    env = {"DILBENCH_SWEEP_DIR": str(plan.runs_dir.resolve()), "DILBENCH_RESULTS": str((plan.results_dir / "RESULTS.md").resolve()),
           "DILBENCH_SWEEP_STATUS": status, "DILBENCH_EXPERIMENT": plan.experiment.spec.name}
    run_hook(Hook(hooks.on_sweep_end, hooks.timeout), env, "on_sweep_end", logging.getLogger("dilbench"))


def status(path: str | Path, profile: str | None, echo: Callable[[str], None], output_directory: Path | None = None) -> int:
    """`--status`: each run's state from its run directory and its Slurm job; changes nothing."""
    from dilbench.sweep.status import status_lines

    for line in status_lines(make_plan(load_experiment(path, output_directory), profile)):
        echo(line)
    return 0


def dashboard(path: str | Path, profile: str | None, echo: Callable[[str], None], output_directory: Path | None = None) -> int:
    """`--dashboard`: optuna-dashboard on the profile's search studies until Ctrl-C (exit 0); changes nothing."""
    import threading

    from dilbench.sweep.dashboard import dashboards

    with dashboards(make_plan(load_experiment(path, output_directory), profile)) as boards:
        for board in boards:
            echo(f"{board.group}: {board.url}  (study {board.study})")
        echo("optuna-dashboard is running; a reload shows the sweep's new trials; Ctrl-C to stop")
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            echo("optuna-dashboard stopped")
    return 0


def status_command(plan: Plan, output_directory: Path | None) -> str:
    """The command that shows this sweep's status (a bundled experiment by its name)."""
    experiment = plan.experiment.path.parent.name if output_directory else str(plan.experiment.path)
    return shlex.join(["dilbench", "sweep", experiment, *(["--profile", plan.profile] if plan.profile else []), "--status"])


def write_page(plan: Plan, command: str, echo: Callable[[str], None]) -> None:
    """The results page from the runs the plan finds now (a Slurm sweep's last task calls this too)."""
    states = group_states(plan) if plan.search else []
    plan = with_confirmation(plan, states)
    chosen = {s.run.name: s.path for s in decide(plan) if s.path is not None and s.action != "changed"}
    if not chosen and not any(state.trials for state in states):
        echo("no runs to report yet")
        return
    from dilbench.sweep.report import write_report  # matplotlib and the report library: only now

    report = write_report(plan, chosen, command, states)
    echo(f"wrote {report.markdown} and {report.curves}")
    if report.verdicts:
        tally = Counter(report.verdicts)
        echo("claims: " + ", ".join(f"{verdict} {tally[verdict]}" for verdict in VERDICTS))


def check_data(todo: list[PlannedRun]) -> None:
    """Find every data set the runs to start or resume (`todo`) read, once, before any run starts: a
    missing one would otherwise fail every run with the same long error. Downloads (where allowed) happen here."""
    from dilbench.data import DataError, locate_dataset

    needed: dict[tuple[str, str | None], list[str]] = {}
    for run in todo:
        data = run.config.data
        needed.setdefault((data.dataset, data.root), []).append(run.name)
    for (dataset, root), runs in needed.items():
        try:
            locate_dataset(dataset, root)
        except DataError as err:
            raise DataError(f"{err} (no run started; {len(runs)} run(s) need it)") from None


def describe(plan: Plan, steps: list[Step], verb: str, states: list[GroupState] | None = None) -> str:
    """The plan as one line per run: what will happen to it and why; with a search, its space, budget and studies."""
    rows = [[step.action, step.run.name, step.detail + (f"  ({step.path.name})" if step.path else "")] for step in steps]
    lines = [plan.heading(len(steps)), text_table(rows, indent="  ")]
    counts = Counter(step.action for step in steps)
    summary = [f"{action} {counts[action]}" for action in ORDER if counts[action]]
    if plan.search is not None:
        lines += search_lines(plan, states or [])
        trials = sum(max(0, s.budget - len(s.finished)) for s in states or [])
        confirm = sum(len(s.tuned.confirm) for s in states or [] if not s.done) + sum(
            1 for s in states or [] for c in s.confirm if c.action in ("start", "resume"))
        summary += [f"tune {trials} trial(s)"] if trials else []
        summary += [f"confirm {confirm} run(s)"] if confirm else []
    lines.append(f"{verb}: " + (", ".join(summary) or "nothing"))
    return "\n".join(lines)
