"""The results page of a sweep: RESULTS.md and curves.png in `<experiment>/<results_dir>/<profile>/`.

Every number on the page comes from the run directories through `dilbench compare`'s library (grouped
over seeds by `meta.sweep.group`, which the sweep records in each run's meta.json, so the same table
is one `dilbench compare` command away), or from the experiment file's `published:` section; the
verdicts are computed by verdict.py's rule. Only the experiment's `notes:` file is prose written by
hand, and it holds no measured numbers.
"""

from __future__ import annotations

import dataclasses
import math
import platform
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from dilbench.report import provenance
from dilbench.report.aggregate import GroupCut, Summary, summarize
from dilbench.report.budget import best_until, series, value_at
from dilbench.report.columns import BUILTINS
from dilbench.report.compare import Table, compare
from dilbench.report.formats import number, render
from dilbench.report.runs_index import RunRecord, provenance_column
from dilbench.runs.rundir import RunDir, utc_now, write_atomic
from dilbench.runs.writer import update_meta_if_idle
from dilbench.sweep.experiment import Claim, Published
from dilbench.sweep.plan import Plan, PlannedRun
from dilbench.sweep.verdict import ALPHA, COLUMNS, MAX_SEEDS, RULE, VERDICTS, Family, Judgement, judge_family
from dilbench.tables import markdown_table

if TYPE_CHECKING:
    from dilbench.report.curves import ClaimPanel  # matplotlib: imported only when a page is written
    from dilbench.sweep.tuning import GroupState

GROUP_KEY = "meta.sweep.group"
GROUP_COLUMNS = "epochs,final_eval_acc,best_eval_acc,final_train_acc,wall_time,images_per_s,train_flops"
RUN_COLUMNS = f"name,{GROUP_KEY},seed,status,epochs,final_eval_acc,best_eval_acc,wall_time,run"


TUNED_CLAIMS = ("**Tuned groups.** The experiment's search tunes some groups (see Tuning above): `<case>-tuned` is a "
                "case re-run on the grid's seeds with its best trial's values. Each claim between two tuned groups is judged "
                "again on these confirmation runs (the last two columns): both arms got the same tuning budget, so the claim "
                "is tested at each arm's own best values rather than at one learning rate for all.")
EQUAL_COMPUTE = ("Each claim is judged twice. **At equal epochs**: the groups' final (or best) test accuracy "
                 "after the same number of epochs. **At equal compute**: at a training budget, the FLOPs of the final "
                 "epoch of the claim's cheaper group (the mean of its runs' cumulative `train_flops`, from the "
                 "schedule's cost model), where each run's test accuracy is interpolated linearly between the two "
                 "epochs around the budget (for best_eval_acc: the best up to it). A run whose first epoch already "
                 "cost more than the budget has no value there; n counts the runs that reached it.")


@dataclass(frozen=True)
class Report:
    markdown: Path
    curves: Path
    verdicts: list[str]  # one per claim of the page (the experiment file's that this profile runs), in order: at equal epochs
    compute_verdicts: list[str]  # the same claims at equal training FLOPs
    tuned_verdicts: list[str] = dataclasses.field(default_factory=list)  # the claims between tuned groups, at equal epochs
    tuned_compute_verdicts: list[str] = dataclasses.field(default_factory=list)  # ... at equal FLOPs


@dataclass(frozen=True)
class Judged:
    """A page's claims on each footing, and the one family they are judged in (in this order)."""

    epochs: list[Comparison]
    flops: list[Comparison]
    tuned_epochs: list[Comparison]
    tuned_flops: list[Comparison]
    family: Family

    def parts(self) -> list[list[Judgement]]:
        """The family's judgements split as epochs, flops, tuned epochs, tuned flops."""
        out, at = [], 0
        for part in (self.epochs, self.flops, self.tuned_epochs, self.tuned_flops):
            out.append(self.family.judgements[at:at + len(part)])
            at += len(part)
        return out


def tag_runs(plan: Plan, chosen: dict[str, Path], states: list[GroupState] | None = None) -> None:
    """Record in each run's meta.json which experiment, profile, case and group it belongs to (a search's trials: group
    `<group>-trials`).

    Skipped for runs still training (their trainer owns meta.json until it ends).
    """
    trials = [(t.step.run, t.step.path) for state in states or [] for t in state.trials if t.step.path is not None]
    for run, path in [*((run, chosen.get(run.name)) for run in plan.runs), *trials]:
        if path is None:
            continue
        meta = RunDir(path).read_meta()
        tag = {"experiment": plan.experiment.spec.name, "profile": plan.profile, "case": run.case,
               "group": run.group, "grid": run.grid}
        if meta.get("status") != "running" and meta.get("sweep") != tag:
            update_meta_if_idle(RunDir(path), sweep=tag)  # under the run's lock: one writer at a time


def write_report(plan: Plan, chosen: dict[str, Path], command: str, states: list[GroupState] | None = None) -> Report:
    """Tag the runs, then write the results page and the curves of the plan's groups (and with a search: search.png)."""
    states = states or []
    tag_runs(plan, chosen, states)
    paths = [str(chosen[run.name]) for run in plan.runs if run.name in chosen]
    order = list(dict.fromkeys(run.group for run in plan.runs))
    grouped = _in_order(compare(paths, columns=GROUP_COLUMNS, group_by=GROUP_KEY), order, GROUP_KEY)
    grouped.notes = [note for note in grouped.notes if not note.startswith("warning: group")]  # the page's own warning says it
    runs = _in_order(compare(paths, columns=RUN_COLUMNS), [run.name for run in plan.runs], "name")
    judged = judge_page(plan, grouped)
    members = _completed(grouped)
    _decorate(plan, grouped, runs)
    plan.results_dir.mkdir(parents=True, exist_ok=True)
    curves = plan.results_dir / "curves.png"
    from dilbench.report.curves import plot_claims, plot_table  # matplotlib: only when a page is written

    plot_table(grouped, curves)
    with_flops = any(series(run, "flops", "eval_acc") for members in grouped.members for run in members)
    parts = judged.parts()
    if with_flops and (judged.flops or judged.tuned_flops):
        plot_claims(_panels(grouped, members, judged.flops, parts[1]) + _panels(grouped, members, judged.tuned_flops, parts[3]),
                    plan.results_dir / "curves_flops.png")
    elif with_flops:  # no claims: every group on one log axis
        plot_table(grouped, plan.results_dir / "curves_flops.png", "flops", log_x=True)
    tuning = None
    if plan.search is not None:
        from dilbench.sweep.search_page import Tuning

        tuning = Tuning(plan, states)
        tuning.plot(plan.results_dir / "search.png")
    markdown = plan.results_dir / "RESULTS.md"
    write_atomic(markdown, _page(plan, grouped, runs, judged, command, with_flops, tuning))
    verdicts = [[j.verdict for j in part] for part in parts]
    return Report(markdown, curves, *verdicts)


def _panels(grouped: Table, members: dict[str, list[RunRecord]], flops: list[Comparison],
            judgements: list[Judgement]) -> list[ClaimPanel]:
    """curves_flops.png's panels: each claim's two arms and its budget at equal FLOPs."""
    from dilbench.report.curves import Arm, ClaimPanel

    setups = {str(row["group"]): row["setup"] for row in grouped.rows}
    panels = []
    for comparison, judgement in zip(flops, judgements):
        claim = comparison.claim
        arms = tuple(Arm(f"{group}: {setups.get(group, '?')}", members.get(group, [])) for group in (claim.higher, claim.lower))
        panels.append(ClaimPanel(f"{claim.higher} > {claim.lower}: {claim.says}", (arms[0], arms[1]), comparison.budget,
                                 comparison.cheaper or "", _in_brief(judgement).replace("**", "")))
    return panels


def _in_order(table: Table, order: list[str], column: str) -> Table:
    """Rows in the experiment's order (compare sorts groups by value), unknown ones last."""
    rank = {name: i for i, name in enumerate(order)}
    index = sorted(range(len(table.rows)), key=lambda i: rank.get(str(table.rows[i][column]), len(rank)))
    labels = table.labels  # worked out from the members in their present order
    table.rows = [table.rows[i] for i in index]
    table.members = [table.members[i] for i in index]
    table.labels = [labels[i] for i in index]
    return table


def _decorate(plan: Plan, grouped: Table, runs: Table) -> None:
    """Name the group column `group`, describe each group's setup, and put the published numbers beside ours."""
    setups = {run.group: setup(plan, run) for run in plan.runs}
    published = plan.experiment.spec.published
    extra = [name for name in ("final_eval_acc", "best_eval_acc", "note")
             if any(getattr(p, name) not in (None, "") for p in published.values())]
    for table in (grouped, runs):
        table.columns = ["group" if c == GROUP_KEY else c for c in table.columns]
        for row in table.rows:
            row["group"] = row.pop(GROUP_KEY, None)
    at = grouped.columns.index("group") + 1
    grouped.columns[at:at] = ["setup"]
    for name in extra:  # each published number right after ours; the note last
        at = grouped.columns.index(name) + 1 if name in grouped.columns else len(grouped.columns)
        grouped.columns.insert(at, f"published {name}")
    for row in grouped.rows:
        row["setup"] = setups.get(row["group"])
        entry = published.get(row["group"])
        for name in extra:
            row[f"published {name}"] = getattr(entry, name) if entry and getattr(entry, name) != "" else None
    grouped.labels = [f"{row['group']}: {row['setup']} (n={len(members)})" for row, members in zip(grouped.rows, grouped.members)]


def setup(plan: Plan, run: PlannedRun) -> str:
    """What sets a group apart, from the experiment file: its case's overrides and its non-averaged grid values."""
    spec = plan.experiment.spec
    parts = [f"{key}={_brief(value)}" for key, value in (spec.cases.get(run.case, {}) if run.case else {}).items()]
    parts += [f"{key}={_brief(value)}" for key, value in run.grid.items() if key not in spec.averaged]
    if run.search and run.search.get("role") == "confirm":
        parts += [f"tuned {key}={_brief(value)}" for key, value in (run.search.get("params") or {}).items()]
    return ", ".join(parts) or "-"


def _brief(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("mode", value.get("name", "{...}")))
    if isinstance(value, float):
        return f"{value:g}"
    return "[...]" if isinstance(value, list) else str(value)


@dataclass(frozen=True)
class Comparison:
    """One claim on one footing (equal epochs or equal FLOPs): the values each side has there."""

    claim: Claim
    values: tuple[list[float], list[float]]  # higher, lower: one per run that has a value
    runs: tuple[int, int]  # completed runs per side (at equal FLOPs some may not reach the budget)
    budget: float | None = None  # equal FLOPs: the training FLOPs compared at
    cheaper: str | None = None  # equal FLOPs: the group whose final epoch sets the budget
    problem: str = ""  # at equal FLOPs, why there are too few values for a test (no train_flops, ...)

    def untested(self, judgement: Judgement) -> str:
        """Why the comparison has no test: its own reason, or the verdict module's."""
        return (self.problem or judgement.untested) if judgement.test is None else ""


def _completed(grouped: Table) -> dict[str, list[RunRecord]]:
    return {str(row[GROUP_KEY]): [run for run in runs if run.status == "completed"]
            for row, runs in zip(grouped.rows, grouped.members)}


def _at_epochs(claim: Claim, members: dict[str, list[RunRecord]]) -> Comparison:
    """The claim's metric of each completed run after its epochs."""
    value = BUILTINS[claim.metric][1]
    sides = [members.get(group, []) for group in (claim.higher, claim.lower)]
    higher, lower = ([v for r in side if (v := value(r)) is not None] for side in sides)
    return Comparison(claim, (higher, lower), (len(sides[0]), len(sides[1])))


def _at_flops(claim: Claim, members: dict[str, list[RunRecord]]) -> Comparison:
    """The claim's metric of each completed run at the budget (EQUAL_COMPUTE)."""
    groups = (claim.higher, claim.lower)
    sides = [members.get(group, []) for group in groups]
    runs = (len(sides[0]), len(sides[1]))
    finals = [[points[-1][0] for r in side if (points := series(r, "flops", "eval_acc"))] for side in sides]
    if not all(sides):
        return Comparison(claim, ([], []), runs, problem="no completed runs of " + " or ".join(g for g, s in zip(groups, sides) if not s))
    if not all(finals):
        return Comparison(claim, ([], []), runs, problem="no train_flops")
    means = [statistics.fmean(values) for values in finals]
    cheaper = 0 if means[0] <= means[1] else 1
    measure = value_at if claim.metric == "final_eval_acc" else best_until
    higher, lower = ([v for r in side if (v := measure(r, "flops", means[cheaper])) is not None] for side in sides)
    short = [group for group, values, side in zip(groups, (higher, lower), sides) if len(values) < 2 <= len(side)]
    problem = f"fewer than 2 runs of {' and '.join(short)} reach the budget" if short else ""
    return Comparison(claim, (higher, lower), runs, means[cheaper], groups[cheaper], problem)


def judge_page(plan: Plan, grouped: Table) -> Judged:
    """Every claim at equal epochs and at equal FLOPs, and with a search the same claims between the tuned groups,
    judged as one family (verdict.py): the family's judgements are the epochs' in claim order, then the FLOPs', then
    the tuned claims' at equal epochs and at equal FLOPs."""
    members = _completed(grouped)
    claims = plan.claims
    tuned = [twin for _, twin in plan.tuned_claims()]
    epochs = [_at_epochs(claim, members) for claim in claims]
    flops = [_at_flops(claim, members) for claim in claims]
    tuned_epochs = [_at_epochs(claim, members) for claim in tuned]
    tuned_flops = [_at_flops(claim, members) for claim in tuned]
    family = judge_family([c.values for c in epochs + flops + tuned_epochs + tuned_flops])
    return Judged(epochs, flops, tuned_epochs, tuned_flops, family)


def _claim_rows(comparisons: list[Comparison], judgements: list[Judgement], published: dict[str, Published],
                at_flops: bool) -> list[list[str]]:
    """One table row per claim: what was compared, the test and the verdict."""
    rows = []
    for comparison, judgement in zip(comparisons, judgements):
        claim = comparison.claim
        if at_flops:
            reference = (f"{comparison.budget:.3g} ({comparison.cheaper}'s final epoch)" if comparison.budget is not None
                         else f"- ({comparison.problem})")
            measured = "-" if comparison.budget is None else " vs ".join(
                _measured(summarize(v), len(v), of) for v, of in zip(comparison.values, comparison.runs))
        else:
            known = [getattr(published.get(group), claim.metric, None) for group in (claim.higher, claim.lower)]
            reference = " vs ".join(f"{v:g}" for v in known) if None not in known else "-"
            measured = " vs ".join(_measured(summarize(v), len(v)) for v in comparison.values)
        test = judgement.test
        rows.append([
            claim.says, f"{claim.higher} > {claim.lower}", claim.metric, reference, measured,
            _difference(judgement, comparison.untested(judgement)),
            "-" if test is None else p_value(test.p), "-" if judgement.adjusted_p is None else p_value(judgement.adjusted_p),
            f"**{judgement.verdict}**", _seeds(judgement),
        ])
    return rows


def _difference(judgement: Judgement, untested: str) -> str:
    """`+0.0597 [+0.0190, +0.1004]`; without a test, the difference alone and why."""
    test = judgement.test
    if test is not None:
        return f"{test.difference:+.4f} [{test.low:+.4f}, {test.high:+.4f}]"
    if judgement.difference is None:
        return f"- (no test: {untested})"
    return f"{judgement.difference:+.4f} (no test: {untested})"


def p_value(p: float) -> str:
    """Two significant digits, without an exponent down to 0.001: 0.19, 0.019, 0.0052, 1.0, 2.3e-05."""
    if p >= 0.001:
        return f"{p:.{max(1, 1 - math.floor(math.log10(p)))}f}"
    return f"{p:.1e}"


def _seeds(judgement: Judgement) -> str:
    if judgement.test is None:
        return "-"
    return f">{MAX_SEEDS}" if judgement.seeds_needed is None else str(judgement.seeds_needed)


def _in_brief(judgement: Judgement) -> str:
    """A verdict for the side-by-side table: `**supports** (adj. p 0.0021)`."""
    if judgement.adjusted_p is None:
        return f"**{judgement.verdict}** (no test)"
    return f"**{judgement.verdict}** (adj. p {p_value(judgement.adjusted_p)})"


def _family_text(judged: Judged) -> str:
    """This page's family: its size, the claims left out and why, the ones counted once, and Holm's thresholds."""
    epochs, flops, family = judged.epochs, judged.flops, judged.family
    count, m = len(epochs), family.size
    places = ([("equal epochs", c) for c in epochs] + [("equal FLOPs", c) for c in flops]
              + [("equal epochs, tuned", c) for c in judged.tuned_epochs] + [("equal FLOPs, tuned", c) for c in judged.tuned_flops])
    made = [j.test is not None and j.repeats is None for j in family.judgements]
    text = (f"**This page's family**: m = {m} test{'' if m == 1 else 's'}: {sum(made[:count])} of the {count} claims at "
            f"equal epochs and {sum(made[count:2 * count])} at equal FLOPs")
    if judged.tuned_epochs:
        tuned = len(judged.tuned_epochs)
        text += (f", and {sum(made[2 * count:2 * count + tuned])} of the {tuned} claims between tuned groups at equal epochs and "
                 f"{sum(made[2 * count + tuned:])} at equal FLOPs (tuned and fixed-rate claims are one family: the conservative "
                 f"reading, as a reader takes in both tables at once)")
    text += "."
    untested: dict[str, list[str]] = {}
    for (where, comparison), judgement in zip(places, family.judgements):
        if judgement.test is None:
            untested.setdefault(comparison.claim.says, []).append(f"at {where}: {comparison.untested(judgement)}")
    if untested:
        text += " Not tested: " + "; ".join(f"\"{says}\" ({', '.join(wheres)})" for says, wheres in untested.items()) + "."
    repeated = [f"\"{comparison.claim.says}\" at {where}" + ("" if places[j.repeats][1].claim == comparison.claim else
                                                              f" (as \"{places[j.repeats][1].claim.says}\")")
                + f" compares the values it compares at {places[j.repeats][0]}"
                for (where, comparison), j in zip(places, family.judgements) if j.repeats is not None and j.test is not None]
    if repeated:
        text += (" Counted once, being the same test on the same values (at equal FLOPs, groups that cost the same per "
                 "epoch meet at both final epochs): " + "; ".join(repeated) + ".")
    if m:
        text += (f" Holm compares the smallest raw p with {ALPHA:g}/{m} = {ALPHA / m:.3g}, the next with {ALPHA:g}/{max(1, m - 1)}, "
                 f"and so on, stopping at the first that is not below its threshold; seeds needed are for the level "
                 f"{ALPHA:g}/{m} = {family.seeds_alpha:.3g}.")
    return text


def _measured(summary: Summary | None, n: int, of: int | None = None) -> str:
    count = f"n={n}" if of is None or of == n else f"n={n} of {of}"
    if summary is None:
        return f"- ({count})" if of else "-"
    return f"{number(summary.mean)}{'' if summary.std is None else f' ± {number(summary.std, like=summary.mean)}'} ({count})"


def _page(plan: Plan, grouped: Table, runs: Table, judged: Judged, command: str, with_flops: bool, tuning: Any = None) -> str:
    experiment, spec = plan.experiment, plan.experiment.spec
    title = f"# {spec.name}" + (f": profile `{plan.profile}`" if plan.profile else "")
    reproduce = f"dilbench sweep {experiment.path}" + (f" --profile {plan.profile}" if plan.profile else "")
    parts = [title, spec.about.strip(),
             "*Generated by `dilbench sweep`; do not edit. Every number below is computed from the run directories "
             "or copied from the experiment file's `published:` section.*",
             _provenance(grouped, reproduce, command, plan), _mixing_warning(grouped), _profile_warning(plan, grouped)]
    parts += ["## Setup", _setup_section(plan)]
    if tuning is not None:
        parts += tuning.sections()
    claims = plan.claims
    if claims:
        epochs, flops = judged.epochs, judged.flops
        judgements = judged.parts()
        header = ["claim", "groups", "metric", "published", "measured (mean ± std)", "difference [95% CI]", "raw p", "adjusted p",
                  "verdict", "seeds needed"]
        tuned_pairs = dict(plan.tuned_claims())
        tuned_index = {claim: i for i, claim in enumerate(tuned_pairs)}
        side_by_side = [[claim.says, f"{claim.higher} > {claim.lower}", _in_brief(a), _in_brief(b)]
                        + ([_in_brief(judgements[2][tuned_index[claim]]), _in_brief(judgements[3][tuned_index[claim]])]
                           if claim in tuned_index else ["-", "-"]) * bool(tuned_pairs)
                        for claim, a, b in zip(claims, judgements[0], judgements[1])]
        columns = ["claim", "groups", "at equal epochs", "at equal FLOPs"]
        columns += ["tuned, at equal epochs", "tuned, at equal FLOPs"] if tuned_pairs else []
        parts += ["## Claims", EQUAL_COMPUTE, RULE, _family_text(judged), COLUMNS]
        if tuned_pairs:
            parts += [TUNED_CLAIMS]
        parts += [markdown_table(side_by_side, columns),
                  "### At equal epochs", _tally(claims, [j.verdict for j in judgements[0]]),
                  markdown_table(_claim_rows(epochs, judgements[0], spec.published, at_flops=False), header),
                  "### At equal compute (training FLOPs)", _tally(claims, [j.verdict for j in judgements[1]]),
                  markdown_table(_claim_rows(flops, judgements[1], spec.published, at_flops=True),
                                 [*header[:3], "budget (FLOPs)", *header[4:]])]
        if tuned_pairs:
            twins = list(tuned_pairs.values())
            parts += ["### Tuned groups at equal epochs", _tally(twins, [j.verdict for j in judgements[2]]),
                      markdown_table(_claim_rows(judged.tuned_epochs, judgements[2], {}, at_flops=False), header),
                      "### Tuned groups at equal compute (training FLOPs)", _tally(twins, [j.verdict for j in judgements[3]]),
                      markdown_table(_claim_rows(judged.tuned_flops, judgements[3], {}, at_flops=True),
                                     [*header[:3], "budget (FLOPs)", *header[4:]])]
        left_out = plan.left_out_claims()
        if left_out:
            parts += [f"Not on this page (a group the profile does not run): {'; '.join(c.says for c in left_out)}."]
    parts += ["## Results, grouped over " + (", ".join(spec.averaged) or "nothing"), render(grouped, "markdown").rstrip(),
              f"The same table: `dilbench compare {plan.runs_dir} --group-by {GROUP_KEY} --columns {GROUP_COLUMNS} "
              f"--format markdown`. Curves: mean over the group's runs, band from min to max, against epochs."
              + ("" if not with_flops else " Below them, training FLOPs on a log scale: " + (
                  "one panel per claim with its two arms, the budget of its equal-FLOPs verdict (dashed) and each run's "
                  "value there (dots)." if claims else "every group (`--x flops`).")),
              "![curves](curves.png)" + ("\n\n![curves against training FLOPs](curves_flops.png)" if with_flops else ""),
              "## Runs", render(runs, "markdown").rstrip()]
    if spec.notes:
        parts += [experiment.resolve(spec.notes).read_text().strip()]
    return "\n\n".join(part for part in parts if part) + "\n"


def _profile_warning(plan: Plan, grouped: Table) -> str:
    """Say plainly when the profile cuts training short: its accuracies are early training, not the setup's."""
    overrides = (plan.experiment.spec.profiles.get(plan.profile) or {}) if plan.profile else {}
    cuts = [f"`{key}: {overrides[key]}`" for key in ("data.train_subset", "train.epochs") if key in overrides]
    if not cuts:
        return ""
    devices = {str(d) for members in grouped.members for run in members for d in run.meta.get("devices") or []}
    where = "this CPU" if devices and all(d.startswith("CPU") for d in devices) else "this machine"
    return (f"**Profile `{plan.profile}` is early training on {where}, not the base setup.** It trains with "
            f"{' and '.join(cuts)} to fit the machine above, so accuracies sit far below fully trained ones and the "
            f"published column is for orientation only. What it can test is each claim's ordering in that early "
            f"regime, against the seed noise.")


def _mixing_warning(grouped: Table) -> str:
    """Say when a group's runs are not alike in what they read or ran (report/provenance.py), or the groups
    compared on this page read different data."""
    cut = GroupCut(grouped.members)
    everyone = provenance_column(cut.everyone)
    lines = [f"- **Group `{row['group']}`**: {problem}." for row, summaries in zip(grouped.rows, cut.split(everyone))
             for problem in provenance.mixed(summaries)]
    if not any("data files" in line for line in lines):
        lines += [f"- **Across groups**: {problem}." for problem in provenance.mixed(everyone) if "data files" in problem]
    if not lines:
        return ""
    return ("**Warning: runs on this page differ in what they read or ran from.** A mean over such runs, or a claim "
            "between them, mixes more than the seed. `dilbench show RUN` prints each run's provenance.\n\n" + "\n".join(lines))


def _tally(claims: list[Claim], verdicts: list[str]) -> str:
    """The verdicts in words: which claims these runs support, contradict, or cannot decide."""
    lines = []
    for verdict in VERDICTS:
        says = [claim.says for claim, given in zip(claims, verdicts) if given == verdict]
        lines.append(f"- **{verdict}** ({len(says)} of {len(verdicts)}): {'; '.join(says) if says else 'none'}")
    return "\n".join(lines)


def _provenance(grouped: Table, reproduce: str, command: str, plan: Plan) -> str:
    records = [run for members in grouped.members for run in members]
    metas = [run.meta for run in records]
    created = sorted(m["created"] for m in metas if m.get("created"))
    ended = sorted(m["ended"] for m in metas if m.get("ended"))
    hosts = sorted({m["host"] for m in metas if m.get("host")})
    versions: dict[str, Any] = next((m["versions"] for m in metas if m.get("versions")), {})
    commits = sorted({f"{m['git']['commit'][:10]}{' (dirty)' if m['git'].get('dirty') else ''}"
                      for m in metas if (m.get("git") or {}).get("commit")})
    wall = sum(v for v in (BUILTINS["wall_time"][1](run) for run in records) if v is not None)
    lines = [
        f"- Command: `{reproduce}` (re-running it skips finished runs and rewrites this page); this page was "
        f"written by `{command}` at {utc_now()}.",
        f"- Runs: {len(records)} of {len(plan.runs)} planned, in `{plan.runs_dir}`; made from "
        f"{created[0] if created else '?'} to {ended[-1] if ended else '?'}; training time {wall / 60:.1f} min summed over runs.",
        "- Machine: " + "; ".join(part for part in [
            f"{', '.join(hosts) or '?'}{_cpu() if platform.node() in hosts else ''}",
            ", ".join(f"{name} {version}" for name, version in versions.items()),
            f"git {', '.join(commits)}" if commits else "",
        ] if part) + ".",
    ]
    return "\n".join(lines)


def _cpu() -> str:
    """`(Intel Xeon ..., 2 cores)` of this machine, from /proc/cpuinfo where there is one."""
    try:
        models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")]
    except OSError:
        models = []
    return f" ({models[0] if models else platform.processor() or platform.machine()}, {len(models) or '?'} cores)"


def _setup_section(plan: Plan) -> str:
    spec = plan.experiment.spec
    lines = [f"Base config `{plan.experiment.resolve(spec.base)}`; on top of it, in this order (later wins): the case, "
             f"the grid values, the profile. Runs are named `<case>-<grid labels>`."]
    if spec.cases:
        lines += ["", markdown_table([[name, _flow(over)] for name, over in spec.cases.items()], ["case", "overrides"])]
    if spec.grid:
        lines += ["", "Grid: " + "; ".join(f"`{key}`: {', '.join(label for label, _, _ in spec.axis(key))}" for key in spec.grid)]
    if plan.profile:
        lines += ["", f"Profile `{plan.profile}`: `{_flow(spec.profiles[plan.profile]) or '{}'}`"]
    return "\n".join(lines)


def _flow(values: dict[str, Any]) -> str:
    return yaml.safe_dump(values, default_flow_style=True, sort_keys=False, width=10**6).strip()

