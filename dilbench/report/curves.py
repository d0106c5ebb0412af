"""`compare --plot`: the rows of a compare Table as overlaid loss and accuracy curves; and a sweep page's
equal-compute figure, one panel per claim.

One colour per row; the evaluation split (test or validation) solid, train dashed. A group is drawn as
its mean over the runs that reached each epoch, with a band from the min to the max run. The legend is
the config values that tell the rows apart; beyond MAX_LEGEND rows it is left out (it would hide the
curves) and the title says so.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from dilbench.report.budget import AXIS_LABELS, axis_values, value_at
from dilbench.report.columns import is_number
from dilbench.report.compare import Table
from dilbench.report.plots import _save, epoch_axis, plural
from dilbench.report.runs_index import RunRecord

MAX_LEGEND = 20
PANELS = (("loss", "cross-entropy loss"), ("acc", "accuracy"))


def epoch_stats(runs: list[RunRecord], key: str, axis: str = "epoch") -> tuple[list[float], list[float], list[float], list[float]]:
    """Per epoch reached by any run: its x on `axis` (the mean over the runs: FLOPs agree between seeds,
    seconds do not), then mean, min and max of `key` over the runs that have it."""
    by_epoch: dict[int, list[tuple[float, float]]] = {}
    for run in runs:
        for i, (position, record) in enumerate(zip(axis_values(run, axis), run.metrics)):
            if position is not None and is_number(record.get(key)):
                by_epoch.setdefault(record.get("epoch", i + 1), []).append((position, record[key]))
    points = [by_epoch[epoch] for epoch in sorted(by_epoch)]
    return ([sum(x for x, _ in p) / len(p) for p in points], [sum(v for _, v in p) / len(p) for p in points],
            [min(v for _, v in p) for p in points], [max(v for _, v in p) for p in points])


def table_figure(table: Table, axis: str = "epoch", log_x: bool = False) -> Figure:
    """Loss and accuracy against `axis`: epoch, flops or seconds (report/budget.py), on a log scale with
    `log_x`. Every epoch is marked, so a run or group with one finished epoch shows as a point (with a
    min-max bar for a group) rather than vanishing as a line of length zero."""
    from matplotlib import colormaps

    count = len(table.members)
    legend = count <= MAX_LEGEND
    legend_rows = -(-count // 2) if legend else 0
    fig = Figure(figsize=(12, 4.5 + 0.2 * legend_rows), layout="constrained")
    axes = fig.subplots(1, 2)
    colors = colormaps["tab10" if count <= 10 else "turbo"]
    splits = sorted({r.get("eval_split", "test") for runs in table.members for run in runs for r in run.metrics}) or ["test"]
    last_epoch: float = 1
    for index, (runs, label) in enumerate(zip(table.members, table.labels)):
        color = colors(index % 10 if count <= 10 else index / max(1, count - 1))
        for ax, (suffix, _) in zip(axes, PANELS):
            for split, style, face in (("eval", "-", color), ("train", "--", "none")):
                epochs, mean, low, high = epoch_stats(runs, f"{split}_{suffix}", axis)
                if not epochs:
                    continue
                last_epoch = max(last_epoch, epochs[-1])
                ax.plot(epochs, mean, style, marker="o", ms=4, mfc=face, color=color, lw=1.4,
                        label=label if split == "eval" and suffix == "loss" else None)
                if table.grouped and len(runs) > 1:
                    if len(epochs) == 1:
                        ax.errorbar(epochs, mean, yerr=[[mean[0] - low[0]], [high[0] - mean[0]]], color=color, capsize=4, lw=1)
                    else:
                        ax.fill_between(epochs, low, high, color=color, alpha=0.15, lw=0)
    what = plural(count, "group" if table.grouped else "run")
    for ax, (_, name) in zip(axes, PANELS):
        ax.set(xlabel=AXIS_LABELS[axis] + (", log scale" if log_x else ""), ylabel=name,
               title=f"{name}: {'/'.join(splits)} ● solid, train ○ dashed")
        if log_x:
            log_flops_axis(ax)
        elif axis == "epoch":
            epoch_axis(ax, last_epoch)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.grid(alpha=0.3)
    if legend and axes[0].get_legend_handles_labels()[0]:
        fig.legend(loc="outside lower center", ncols=min(2, count), fontsize=8)
    fig.suptitle(what + (" (mean, band: min-max)" if table.grouped else "")
                 + ("" if legend else f" (no legend above {MAX_LEGEND}; narrow with --where, --top or --group-by)"))
    return fig


def plot_table(table: Table, path: Path, axis: str = "epoch", log_x: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(table_figure(table, axis, log_x), path)


# ---- a sweep page's curves_flops.png: one panel per claim ----------------------------------------------
@dataclass(frozen=True)
class Arm:
    """One side of a claim: its label (`c: schedule=unfair_back`) and its completed runs."""

    label: str
    runs: list[RunRecord]


@dataclass(frozen=True)
class ClaimPanel:
    """A claim at equal training FLOPs: its two arms (higher first) and the budget they are compared at."""

    title: str  # `c > a: unfair_back beats standard`
    arms: tuple[Arm, Arm]
    budget: float | None  # None: the runs have no train_flops
    budget_of: str  # the group whose final epoch sets it
    verdict: str  # `supports (adj. p 0.0021)`


ARM_COLORS = ("tab:blue", "tab:orange")
PANEL_COLUMNS = 3


def claims_figure(panels: list[ClaimPanel], key: str = "eval_acc") -> Figure:
    """Test accuracy against cumulative training FLOPs, log scale, one panel per claim with just its two
    arms: the mean over runs with a min-max band, the budget as a dashed vertical line, and each run's
    value at the budget (interpolated between its epochs, what the equal-FLOPs verdict compares) as a dot.
    A log axis, because schedules cost multiples of each other: on a linear one the cheap arms are a knot
    at the left."""
    columns = min(PANEL_COLUMNS, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / columns))
    fig = Figure(figsize=(5.4 * columns, 1.2 + 3.7 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    split = next((r.get("eval_split", "test") for p in panels for arm in p.arms for run in arm.runs for r in run.metrics), "test")
    for ax, panel in zip(axes.flat, panels):
        drawn = False
        for arm, color in zip(panel.arms, ARM_COLORS):
            x, mean, low, high = epoch_stats(arm.runs, key, "flops")
            if not x:
                continue
            drawn = True
            ax.plot(x, mean, "-", marker="o", ms=3.5, color=color, lw=1.4, label=f"{arm.label} (n={len(arm.runs)})")
            if len(arm.runs) > 1:
                ax.fill_between(x, low, high, color=color, alpha=0.18, lw=0)
            if panel.budget is not None:
                at = [v for run in arm.runs if (v := value_at(run, "flops", panel.budget, key)) is not None]
                ax.plot([panel.budget] * len(at), at, "o", ms=5, mfc="white", mec=color, mew=1.4, zorder=4)
        if not drawn:
            ax.text(0.5, 0.5, "no runs with train_flops", transform=ax.transAxes, ha="center", va="center", color="0.4")
        else:
            log_flops_axis(ax)
            ax.legend(loc="best", fontsize=7)
        if panel.budget is not None and drawn:  # labelled above the panel, where no curve runs, and inside its width
            ax.axvline(panel.budget, color="0.25", ls="--", lw=1)
            left, right = (math.log(v) for v in ax.get_xlim())
            where = (math.log(panel.budget) - left) / (right - left) if right > left else 0.5
            ha = "right" if where > 0.7 else "left" if where < 0.3 else "center"
            ax.annotate(f"budget {flops_label(panel.budget)} ({panel.budget_of}'s final epoch)", (panel.budget, 1), xytext=(0, 2),
                        xycoords=("data", "axes fraction"), textcoords="offset points", ha=ha, va="bottom", fontsize=7,
                        color="0.25")
        ax.set_title("\n".join(textwrap.wrap(panel.title, 60)) + f"\nat equal FLOPs: {panel.verdict}", fontsize=8.5, pad=12)
        ax.set(xlabel="training FLOPs (log scale)", ylabel=f"{split} accuracy")
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.grid(alpha=0.3, which="both")
        ax.tick_params(labelsize=7.5)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"Each claim's two arms against training FLOPs (cost model, cumulative; log scale): mean over runs, band "
                 f"min-max;\ndashed: the budget, the cheaper arm's final epoch; dots: each run's {split} accuracy there, "
                 f"which the equal-FLOPs verdict compares")
    return fig


def flops_label(value: float) -> str:
    """`2.7e13`: FLOPs in two significant digits, without the `+`."""
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.removesuffix('.0')}e{int(exponent)}"


def log_flops_axis(ax) -> None:
    """A log x axis labelled at 1, 2 and 5 of each decade (`2e13`), so one decade or two still read: matplotlib's
    default labels either the decades only or every minor tick, which collide."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: flops_label(x)))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_claims(panels: list[ClaimPanel], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(claims_figure(panels), path)
