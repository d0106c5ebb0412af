"""Tune, then confirm: each tuned group's trials and confirmation runs, from its study and the run directories.

A tuned group (plan.py's TunedGroup: a case, plus the grid labels not averaged over) gets `search.trials`
trials, numbered 0..trials-1 in its study (study.py), each an ordinary run directory `<group>-trial<N>` whose
meta.json names the study (its id), the trial and the values. When all its trials are finished (COMPLETE,
PRUNED, or diverged), the best COMPLETE trial's values are re-run on the grid's seeds as ordinary sweep runs,
`<case>-tuned-<grid labels>`, in group `<case>-tuned`: the confirmation runs the tuned claims are judged on.

What each trial needs is decided as for any sweep run (existing.py), from its run directory, read as the sweep
reads runs: through compare's summary index (existing.scan):

    trial finished in the study (COMPLETE, PRUNED, FAIL)       -> skip: finished, never resumed
    trial RUNNING, its run completed or pruned                -> reconcile: tell the study so, then skip
    trial RUNNING, its run locked by a live process           -> busy (counts against the budget; waited for)
    trial RUNNING, its run interrupted, failed, crashed       -> resume it, the same trial (no trial repeated)
    trial RUNNING, no run directory (asked, then killed)      -> start it with the trial's values (none lost)
    fewer trials than the budget                               -> ask the study for a new one

So the budget counts trials, and a trial is never abandoned: the trials of a study are exactly 0..trials-1,
each with one run directory, however often the sweep was killed. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dilbench.errors import UsageError
from dilbench.report.runs_index import RunRecord
from dilbench.runs.lock import RunLock, is_locked
from dilbench.sweep.execute import WAIT, Item, Outcome
from dilbench.sweep.existing import Found, Step, _decide, examine, lock_path, save, scan
from dilbench.sweep.plan import Plan, PlannedRun, TunedGroup
from dilbench.sweep.study import FINISHED, Study, file_lock, journal_path
from dilbench.tables import text_table

REFRESH_SECONDS = 2.0  # while waiting for other processes' trials, how often to read the journals and run directories again


@dataclass
class TrialRun:
    """One trial of a study: its state there and what its run directory needs."""

    number: int
    state: str  # the study's: RUNNING, COMPLETE, PRUNED or FAIL
    params: dict[str, Any]
    value: float | None  # COMPLETE: the metric; PRUNED: its last reported value (NaN: diverged)
    outcome: str  # why a PRUNED trial ended other than by the pruner: `diverged: ...`
    step: Step  # skip | resume | start | busy

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def label(self) -> str:
        """complete | pruned | diverged | running"""
        return "diverged" if self.outcome.startswith("diverged") else self.state.lower()


@dataclass
class GroupState:
    """A tuned group now: its study (None before the first trial), trials, best trial and confirmation runs."""

    tuned: TunedGroup
    study: Study | None
    trials: list[TrialRun]
    budget: int
    direction: str
    confirm: list[Step] = field(default_factory=list)  # decided, once every trial is finished and one completed

    @property
    def finished(self) -> list[TrialRun]:
        return [t for t in self.trials if t.finished]

    @property
    def done(self) -> bool:
        """The tuning budget is spent: every trial asked and finished."""
        return len(self.trials) >= self.budget and all(t.finished for t in self.trials)

    def best(self) -> TrialRun | None:
        complete = [t for t in self.trials if t.state == "COMPLETE" and t.value is not None and math.isfinite(t.value)]
        if not complete:
            return None
        sign = 1 if self.direction == "maximize" else -1
        return max(complete, key=lambda t: (sign * (t.value or 0.0), -t.number))  # ties: the earlier trial

    def counts(self) -> str:
        labels = [t.label for t in self.trials]
        parts = [f"{labels.count(label)} {label}" for label in ("complete", "pruned", "diverged", "running") if label in labels]
        return ", ".join(parts) or "none yet"


def group_states(plan: Plan, create: bool = False, reconcile: bool = False, rerun_changed: bool = False) -> list[GroupState]:
    """Every tuned group's state. `create`: make missing studies (not in a dry run); `reconcile`: tell the studies
    what the run directories of RUNNING trials say (not in a dry run or --status, which write nothing)."""
    if plan.search is None:
        return []
    found = scan(plan.runs_dir)
    states = []
    for tuned in plan.tuned:
        study = Study.open(plan, tuned, create, rerun_changed)
        states.append(read_group(plan, tuned, study, found, reconcile))
    save(found)
    return states


def read_group(plan: Plan, tuned: TunedGroup, study: Study | None, found: Found,
               reconcile: bool) -> GroupState:
    """A tuned group's state from its study and `found`, what existing.scan read of the run directories."""
    assert plan.search is not None
    trials: list[TrialRun] = []
    for frozen in study.trials() if study else []:
        run = plan.trial_run(tuned, frozen.number, dict(frozen.params), study.record() if study else {})
        step = _trial_step(run, frozen.state.name in FINISHED, study, found, plan.runs_dir)
        state, value = frozen.state.name, frozen.value
        if state == "RUNNING" and step.action == "skip" and step.path is not None:  # the run ended; the journal did not hear
            record = _record(found, run.name, step.path)
            status = record.status if record is not None else None
            value = plan.search.value(record.metrics) if record is not None else None
            state = "COMPLETE" if status == "completed" and value is not None else "PRUNED"
            if reconcile and study is not None:
                study.tell(frozen.number, state, value)
        outcome = str(frozen.user_attrs.get("outcome", ""))
        if state == "PRUNED" and value is None and frozen.intermediate_values:
            value = frozen.intermediate_values[max(frozen.intermediate_values)]
        trials.append(TrialRun(frozen.number, state, dict(frozen.params), value, outcome, step))
    group = GroupState(tuned, study, trials, plan.search.trials, plan.search.direction)
    best = group.best()
    if group.done and best is not None and study is not None:
        group.confirm = [_decide(run, [examine(p, run) for p in found.get(run.name, [])], plan.runs_dir)
                         for run in plan.confirm_runs(tuned, best.number, best.params, study.record())]
    return group


def _record(found: dict[str, list[RunRecord]], name: str, path: Path) -> RunRecord | None:
    return next((record for record in found.get(name, []) if record.path == path), None)


def _trial_step(run: PlannedRun, finished: bool, study: Study | None, found: dict[str, list[RunRecord]], runs_dir: Path) -> Step:
    """What a trial's run needs: its run directories are those of its name made for this study (meta.json's study id).
    A finished trial's run is done, whatever it says (a diverged one says `failed`)."""
    mine = [examine(record, run) for record in found.get(run.name, []) if _study_id(record) == (study.id if study else None)]
    if finished:
        return Step(run, "skip", mine[-1].path if mine else None, "finished trial")
    step = _decide(run, [e for e in mine if e.difference is None], runs_dir)
    return step if step.action != "changed" else dataclasses.replace(step, action="start")


def _study_id(record: RunRecord) -> str | None:
    """meta.json's search.study_id (None without a readable meta.json or a search block)."""
    study_id = record.meta_value("search.study_id")
    return study_id if isinstance(study_id, str) else None


def with_confirmation(plan: Plan, states: list[GroupState]) -> Plan:
    """The plan with each finished group's confirmation runs among its runs (for the page, --status, Slurm tasks)."""
    names = {run.name for run in plan.runs}
    extra = [step.run for state in states for step in state.confirm if step.run.name not in names]
    return dataclasses.replace(plan, runs=[*plan.runs, *extra]) if extra else plan


def trial_runs(states: list[GroupState]) -> dict[str, Path]:
    """Every trial's run directory by run name."""
    return {t.step.run.name: t.step.path for s in states for t in s.trials if t.step.path is not None}


def check_confirmation(states: list[GroupState], rerun_changed: bool) -> None:
    """Confirmation runs made with another trial's values (the budget grew and the best moved): as for any run whose
    config changed, an error unless --rerun-changed."""
    changed = [step for state in states for step in state.confirm if step.action == "changed"]
    if changed and not rerun_changed:
        raise UsageError(
            f"{len(changed)} confirmation run(s) exist with other values than their group's best trial now has "
            f"({', '.join(s.run.name for s in changed)}): the study changed since they ran. Move them away, or pass "
            f"--rerun-changed to start new ones beside them")


def claim_trial(plan: Plan, state: GroupState, exclude: set[str] | frozenset[str] = frozenset(),
                ask: bool = True) -> tuple[Step, RunLock] | None:
    """A trial of the group to train now, with its run's sweep lock taken: a RUNNING trial whose run must be resumed
    or started (not in `exclude`), else with `ask` a new trial if the budget allows; None if there is none.

    Under the study's ask lock, after reading the journal and run directories afresh: two processes (a sweep's
    workers, Slurm tasks, two sweeps) never ask past the budget, and whoever holds a trial's sweep lock trains it."""
    study = state.study
    assert study is not None and plan.search is not None
    with file_lock(study.ask_lock):
        fresh = read_group(plan, state.tuned, study, scan(plan.runs_dir), reconcile=True)
        for trial in fresh.trials:
            name = trial.step.run.name
            if trial.state == "RUNNING" and trial.step.action in ("start", "resume") and name not in exclude:
                lock = RunLock(lock_path(plan.runs_dir, name))
                if not is_locked(lock.path) and lock.acquire():
                    return trial.step, lock
        if not ask or len(study.trials()) >= plan.search.trials:
            return None
        number, params = study.ask()
        run = plan.trial_run(state.tuned, number, params, study.record())
        lock = RunLock(lock_path(plan.runs_dir, run.name))
        if not lock.acquire():  # cannot happen unless a process holds a lock of a trial not asked yet
            return None
    return Step(run, "start", None, f"trial {number}: {_values(params)}"), lock


class SearchWork:
    """The jobs of a sweep with a search, as slots free up: trials first (resumed, then newly asked, the group with the
    fewest trials first), then confirmation runs of groups whose tuning is done, then the fixed-rate runs."""

    def __init__(self, plan: Plan, fixed: list[Step], rerun_changed: bool, echo: Callable[[str], None]):
        self.plan = plan
        self.rerun_changed = rerun_changed
        self.echo = echo
        self.fixed = [step for step in fixed if step.action in ("start", "resume")]
        self.launched: set[str] = set()  # runs this sweep launched
        self.active: set[str] = set()  # ... and that have not ended yet
        self.failed: set[str] = set()  # ... that ended without finishing: not launched again by this sweep
        self.states = group_states(plan, create=True, reconcile=True, rerun_changed=rerun_changed)
        check_confirmation(self.states, rerun_changed)
        self.refreshed = time.monotonic()
        self.dirty = False
        self.idle: float | None = None  # when next() last found nothing to start
        self.reported: set[str] = set()  # groups whose `tuning done` line was printed

    def refresh(self, force: bool = False) -> None:
        if not (force or self.dirty or time.monotonic() - self.refreshed > REFRESH_SECONDS):
            return
        found = scan(self.plan.runs_dir)
        self.states = [read_group(self.plan, s.tuned, s.study, found, reconcile=True) for s in self.states]
        self.refreshed, self.dirty = time.monotonic(), False

    def total(self) -> int:
        """Runs launched so far plus those still to come (trials not yet asked or started, confirmation and fixed runs)."""
        trials = sum(max(0, s.budget - len(s.trials)) + sum(1 for t in s.trials if not t.finished and t.step.run.name not in self.launched)
                     for s in self.states)
        confirm = sum(len(s.tuned.confirm) for s in self.states if not s.done) + sum(
            1 for s in self.states for c in s.confirm if c.action in ("start", "resume") and c.run.name not in self.launched)
        return len(self.launched) + trials + confirm + sum(1 for step in self.fixed if step.run.name not in self.launched)

    def ended(self, outcome: Outcome) -> None:
        name = outcome.step.run.name
        self.active.discard(name)
        self.dirty = True
        if outcome.status not in ("completed", "pruned", "busy"):
            self.refresh(force=True)
            trial = self._trial(name)
            if trial is not None and trial.finished:  # a diverged trial: finished, its values were bad
                outcome.status, outcome.message = "diverged", f"trial {trial.number} diverged: {outcome.message}"
            else:
                self.failed.add(name)

    def _trial(self, name: str) -> TrialRun | None:
        return next((t for s in self.states for t in s.trials if t.step.run.name == name), None)

    def _launch(self, step: Step, lock: RunLock | None = None) -> Item:
        self.idle = None
        self.launched.add(step.run.name)
        self.active.add(step.run.name)
        return Item(step, lock)

    def next(self) -> Item | str | None:
        if not self.dirty and self.idle is not None and time.monotonic() - self.idle < REFRESH_SECONDS:
            return WAIT  # nothing changed here since nothing could start: look again in a while
        self.refresh(force=True)
        order = sorted(self.states, key=lambda s: len(s.trials))
        for ask in (False, True):  # trials to resume or start first, then new ones: the group with the fewest trials first
            for state in order:
                if state.done or (ask and len(state.trials) >= state.budget):
                    continue
                claimed = claim_trial(self.plan, state, self.launched | self.failed, ask)
                if claimed is not None:
                    self.dirty = True
                    return self._launch(*claimed)
        for state in self.states:  # confirmation runs
            if state.done and state.tuned.group not in self.reported:
                self.reported.add(state.tuned.group)
                best = state.best()
                self.echo(f"tuning {state.tuned.group}: done, {state.counts()}; " + (
                    f"best trial {best.number} ({_values(best.params)}, {self.plan.search.metric if self.plan.search else ''} "
                    f"{best.value:.4f}): confirming on {len(state.tuned.confirm)} run(s)" if best else
                    "no trial completed, nothing to confirm"))
                check_confirmation([state], self.rerun_changed)
            for step in state.confirm:
                if step.action == "changed" and self.rerun_changed:
                    step = dataclasses.replace(step, action="start", detail="new run (its group's best trial changed)")
                if step.action in ("start", "resume") and step.run.name not in self.launched | self.failed:
                    return self._launch(step)
        for step in self.fixed:
            if step.run.name not in self.launched:
                return self._launch(step)
        self.idle = time.monotonic()
        if self.active or any(not state.done and not self._blocked(state) for state in self.states):
            return WAIT
        return None

    def _blocked(self, state: GroupState) -> bool:
        """Nothing more this sweep can do for the group: its unfinished trials failed here (re-running the sweep resumes them)."""
        return len(state.trials) >= state.budget and all(t.finished or t.step.run.name in self.failed for t in state.trials)

    def summary(self) -> list[str]:
        """The groups that could not finish tuning or confirming in this sweep, and why."""
        lines = []
        for state in self.states:
            left = [t.step.run.name for t in state.trials if not t.finished]
            if not state.done:
                lines.append(f"tuning {state.tuned.group}: {len(state.finished)} of {state.budget} trials finished"
                             + (f"; not finished: {', '.join(left)}" if left else ""))
            elif state.best() is None:
                lines.append(f"tuning {state.tuned.group}: no trial completed (all pruned or diverged): nothing to confirm")
        return lines


def _values(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}" for key, value in params.items())


def search_lines(plan: Plan, states: list[GroupState]) -> list[str]:
    """The search's protocol and budget, then each tuned group's study: its trials and its confirmation runs."""
    search = plan.search
    assert search is not None
    epochs = plan.trial_run(plan.tuned[0], 0, {}, {}).config.train.epochs
    held = ("the evaluation split of the run config (no validation split held out: search.validation is 0)" if not search.validation
            else f"a validation split of {search.validation:g}" + (" of" if search.validation < 1 else "")
            + " the training images, held out of each tuning run")
    lines = [f"search: {search.describe_method()}, {search.trials} trial(s) per tuned group",
             f"  space: {search.describe_space().replace('`', '')}",
             f"  metric: {search.metric} ({search.direction}) on {held}",
             f"  pruner: {search.describe_pruner()}",
             f"  tuning seeds: {', '.join(map(str, search.seeds))} (confirmation runs: the grid's)",
             f"  budget per group: {search.trials} trial(s) x at most {epochs} epoch(s) = at most {search.trials * epochs} epochs of "
             f"tuning; training FLOPs are counted from the trials' runs (the cost model needs TensorFlow) and stated on the page"]
    rows = []
    for state in states:
        where = state.study.path if state.study else journal_path(plan.runs_dir, state.tuned.group)
        best = state.best()
        confirm = ", ".join(name for name, _, _ in state.tuned.confirm)
        status = f"{len(state.finished)} of {state.budget} trials finished ({state.counts()})"
        rows.append(["tune", state.tuned.group, f"{status}; study {where}"])
        for trial in state.trials:
            value = "" if trial.value is None else f", {search.metric} {trial.value:.4f}"
            what = "" if trial.step.action == "skip" else f": {trial.step.detail}"
            rows.append(["", f"  trial {trial.number}", f"{trial.label}{value}; {_values(trial.params)}; {trial.step.action} "
                         f"{trial.step.run.name}{what}" + (f"  ({trial.step.path.name})" if trial.step.path else "")])
        then = (f"best trial {best.number} ({_values(best.params)})" if best else "after tuning")
        rows.append(["confirm", state.tuned.tuned, f"{then}: {confirm}"])
        for step in state.confirm:
            rows.append(["", f"  {step.action}", f"{step.run.name}  {step.detail}"])
    return [*lines, text_table(rows, indent="  ")]
