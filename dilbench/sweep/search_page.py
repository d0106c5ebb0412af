"""The results page's Tuning section and search.png: the protocol, each tuned group's budget (trials, epochs,
training FLOPs), the values it chose, its best-so-far curve over trials, and every trial.

Every number comes from the studies (study.py) and the trials' run directories (read as `compare` reads them).
Matplotlib is imported only by `plot`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from dilbench.report.columns import BUILTINS
from dilbench.report.formats import number
from dilbench.report.runs_index import RunRecord, read_runs
from dilbench.sweep.plan import Plan
from dilbench.sweep.tuning import GroupState, TrialRun
from dilbench.tables import markdown_table


def values_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value:.3g}" if isinstance(value, float) else f"{key}={value}" for key, value in params.items())


def flops_text(value: float | None) -> str:
    if value is None:
        return "-"
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa}e{int(exponent)}"


class Tuning:
    """What the page says about the search, from the group states the sweep read."""

    def __init__(self, plan: Plan, states: list[GroupState]):
        assert plan.search is not None
        self.plan = plan
        self.search = plan.search
        self.states = states
        trials = [(t.step.run.name, t.step.path) for s in states for t in s.trials if t.step.path is not None]
        records = read_runs([path for _, path in trials])  # one reader: the trials' directory's index is loaded once
        self.records: dict[str, RunRecord] = {name: record for (name, _), record in zip(trials, records)}
        self.epochs_cap = plan.trial_run(plan.tuned[0], 0, {}, {}).config.train.epochs

    def _record(self, trial: TrialRun) -> RunRecord | None:
        return self.records.get(trial.step.run.name)

    def _epochs(self, trial: TrialRun) -> int:
        record = self._record(trial)
        return len(record.metrics) if record else 0

    def _flops(self, trial: TrialRun) -> float | None:
        record = self._record(trial)
        return BUILTINS["train_flops"][1](record) if record else None

    def _seconds(self, trial: TrialRun) -> float | None:
        record = self._record(trial)
        return BUILTINS["wall_time"][1](record) if record else None

    def protocol(self) -> str:
        search, plan = self.search, self.plan
        groups = ", ".join(f"`{s.tuned.group}`" for s in self.states)
        confirm_seeds = sorted({run.config.seed for s in self.states for run in plan.confirm_runs(s.tuned, 0, {}, {})})
        held = ("on the evaluation split of the run config (search.validation: 0, so the tuning runs saw the split the "
                "claims are judged on)" if not search.validation else
                f"on a validation split of {search.validation:g}{' of' if search.validation < 1 else ''} the training images, held "
                "out of each tuning run (the confirmation runs train on all of them and are judged on the test split)")
        return (f"**Tune, then confirm.** Each tuned group ({groups}) gets the same tuning budget: **{search.trials} trials** of "
                f"{search.describe_method()}, over {search.describe_space()}, each training at most {self.epochs_cap} epoch(s) with "
                f"the group's config, on the tuning seed(s) {', '.join(map(str, search.seeds))} in turn. A trial's metric is "
                f"`{search.metric}` ({search.direction}) {held}. Pruner: {search.describe_pruner()}; a trial that diverges "
                f"(non-finite loss) counts as a finished trial that cost its epochs. The best completed trial's values are then "
                f"re-run on the grid's seeds ({', '.join(map(str, confirm_seeds))}, disjoint from the tuning seeds): these "
                f"confirmation runs are the `<case>-tuned` groups, and the claims between tuned groups are judged on them.")

    def budget_rows(self) -> list[list[str]]:
        rows = []
        for state in self.states:
            finished = state.finished
            epochs = sum(self._epochs(t) for t in state.trials)
            flops = [f for t in state.trials if (f := self._flops(t)) is not None]
            seconds = [s for t in state.trials if (s := self._seconds(t)) is not None]
            best = state.best()
            rows.append([
                state.tuned.group, f"{len(finished)} of {state.budget}" + ("" if state.done else " (tuning not finished)"),
                state.counts(), f"{epochs} of at most {state.budget * self.epochs_cap}",
                flops_text(sum(flops)) if flops else "-", f"{sum(seconds) / 60:.1f} min" if seconds else "-",
                "-" if best is None else f"{best.number}", "-" if best is None else values_text(best.params),
                "-" if best is None or best.value is None else number(best.value),
                f"`{state.tuned.tuned}`" if state.confirm else "-",
            ])
        return rows

    def trial_rows(self) -> list[list[str]]:
        rows = []
        for state in self.states:
            for trial in state.trials:
                record = self._record(trial)
                value = "-" if trial.value is None or not math.isfinite(trial.value) else number(trial.value)
                rows.append([state.tuned.group, str(trial.number), trial.label, str(self._epochs(trial)), value,
                             values_text(trial.params), str(trial.step.run.config.seed), flops_text(self._flops(trial)),
                             trial.step.path.name if trial.step.path else "-",
                             record.status if record else "-"])
        return rows

    def sections(self) -> list[str]:
        flops_note = ("Equal in trials and in each trial's epochs cap; the training FLOPs differ between groups because their "
                      "schedules cost different multiples per epoch (the cost model) and because pruned trials stop early: "
                      "the column says what each group's tuning cost.")
        journals = " ".join(f"`{s.study.path}`" for s in self.states if s.study is not None)
        return [
            "## Tuning", self.protocol(),
            markdown_table(self.budget_rows(), ["group", "trials finished", "of which", "epochs trained", "training FLOPs",
                                                "training time", "best trial", "chosen values", f"best {self.search.metric}",
                                                "confirmed as"]),
            flops_note,
            f"Best {self.search.metric} so far against trials (dots: each trial's value; x: pruned, at its last reported value; "
            f"triangles: diverged):",
            "![best so far over trials](search.png)",
            "### Trials",
            markdown_table(self.trial_rows(), ["group", "trial", "state", "epochs", self.search.metric, "values", "seed",
                                               "training FLOPs", "run", "run status"]),
            f"The trials' studies are Optuna journal files: {journals or '(none yet)'} (`optuna-dashboard <file>` shows one)."
            f" The trials' runs: `dilbench compare {self.plan.runs_dir} --where 'meta.search.role=tune'"
            f" --columns +meta.search.trial,meta.search.params`.",
        ]

    def plot(self, path: Path) -> None:
        from matplotlib.figure import Figure

        from dilbench.report.plots import _save

        fig = Figure(figsize=(8, 4.5), layout="constrained")
        ax = fig.subplots()
        colors = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray"]
        sign = 1 if self.search.direction == "maximize" else -1
        finite = [t.value for s in self.states for t in s.trials if t.value is not None and math.isfinite(t.value)]
        floor = min(finite) if finite else 0.0
        for index, state in enumerate(self.states):
            color = colors[index % len(colors)]
            xs, best, running = [], [], None
            for trial in sorted(state.trials, key=lambda t: t.number):
                value = trial.value
                if trial.label == "complete" and value is not None:
                    ax.plot([trial.number], [value], "o", color=color, ms=5, alpha=0.8)
                    running = value if running is None else (max if sign > 0 else min)(running, value)
                elif trial.label == "pruned" and value is not None and math.isfinite(value):
                    ax.plot([trial.number], [value], "x", color=color, ms=6)
                elif trial.label == "diverged":
                    ax.plot([trial.number], [floor], "v", color=color, ms=6)
                if running is not None:
                    xs.append(trial.number)
                    best.append(running)
            label = f"{state.tuned.group}: {state.counts()}"
            if xs:
                ax.step(xs, best, where="post", color=color, lw=1.6, label=label)
            else:
                ax.plot([], [], color=color, label=label)
        ax.set(xlabel="trial (in the order asked)", ylabel=f"{self.search.metric} (best so far)",
               title=f"Tuning: best {self.search.metric} over {self.search.trials} trials per group ({self.search.method})")
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        path.parent.mkdir(parents=True, exist_ok=True)
        _save(fig, path)
