"""`compare --plot`: the rows of a compare Table as overlaid loss and accuracy curves; and a sweep page's
equal-compute figure, one panel per claim.

One colour per row; the evaluation split (test or validation) solid, train dashed. A group is drawn as
its mean over the runs that reached each epoch, with a band from the min to the max run. The legend is
the config values that tell the rows apart; beyond MAX_LEGEND rows it is left out (it would hide the
curves) and the title says so. Beyond MAX_LINES rows (thousands of runs or groups) an even sample of
MAX_LINES rows, in table order, is drawn over a grey band from the min to the max of all their runs,
and the title says how many of how many: a plot of 10,000 runs takes seconds, and shows them all.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from dilbench.report.budget import AXIS_LABELS, axis_values, value_at
from dilbench.report.columns import is_number
from dilbench.report.compare import Table
from dilbench.report.packing import MISSING
from dilbench.report.plots import _save, epoch_axis, plural
from dilbench.report.runs_index import RunRecord

MAX_LEGEND = 20
MAX_LINES = 100
PANELS = (("loss", "cross-entropy loss"), ("acc", "accuracy"))
KEYS = [f"{split}_{suffix}" for suffix, _ in PANELS for split in ("eval", "train")]
Stats = tuple[list[float], list[float], list[float], list[float]]


def epoch_stats(runs: list[RunRecord], key: str, axis: str = "epoch") -> Stats:
    """Per epoch reached by any run: its x on `axis` (the mean over the runs: FLOPs agree between seeds,
    seconds do not), then mean, min and max of `key` over the runs that have it."""
    return all_stats(runs, [key], axis)[key]


def all_stats(runs: list[RunRecord], keys: list[str], axis: str = "epoch") -> dict[str, Stats]:
    """epoch_stats of several keys, each run's epochs and positions looked up once, summed up with NumPy
    (thousands of runs in a second; means may differ from a plain sum in the last bits)."""
    import numpy as np

    epochs: list[Any] = []
    places: list[float] = []
    values: dict[str, list[Any]] = {key: [] for key in keys}
    nan = float("nan")
    for run in runs:
        numbers = run.series("epoch")
        if not set(map(type, numbers)) <= {int, float}:  # missing or odd epoch numbers: the careful way
            numbers = [i + 1 if epoch is MISSING else epoch for i, epoch in enumerate(numbers)]
            if not set(map(type, numbers)) <= {int, float}:
                return _plain_stats(runs, keys, axis)
        epochs += numbers
        if axis == "epoch":  # positions are the epoch numbers (those that are no finite number drop out below)
            places += numbers
        elif axis == "flops" and set(map(type, flops := run.series("train_flops"))) <= {int, float}:
            places += flops
        else:
            places += [nan if x is None else x for x in axis_values(run, axis)]
        for key in keys:
            series = run.series(key)
            values[key] += series if set(map(type, series)) <= {int, float} else [v if is_number(v) else nan for v in series]
    epoch = np.asarray(epochs, dtype=float)
    place = np.asarray(places, dtype=float)
    stats: dict[str, Stats] = {}
    for key in keys:
        value = np.asarray(values[key], dtype=float)
        keep = np.isfinite(value) & np.isfinite(place)
        order = np.argsort(epoch[keep], kind="stable")
        at, x, y = epoch[keep][order], place[keep][order], value[keep][order]
        _, starts, counts = np.unique(at, return_index=True, return_counts=True)
        if not len(starts):
            stats[key] = ([], [], [], [])
            continue
        stats[key] = ((np.add.reduceat(x, starts) / counts).tolist(), (np.add.reduceat(y, starts) / counts).tolist(),
                      np.minimum.reduceat(y, starts).tolist(), np.maximum.reduceat(y, starts).tolist())
    return stats


def _plain_stats(runs: list[RunRecord], keys: list[str], axis: str) -> dict[str, Stats]:
    """all_stats in plain Python, for epoch numbers NumPy cannot sort."""
    by_key: dict[str, dict[Any, list[tuple[float, float]]]] = {key: {} for key in keys}
    for run in runs:
        places = zip(axis_values(run, axis), run.series("epoch"))
        positions = [(i + 1 if epoch is MISSING else epoch, x) for i, (x, epoch) in enumerate(places)]
        for key in keys:
            by_epoch = by_key[key]
            for (epoch, x), value in zip(positions, run.series(key)):
                if x is not None and is_number(value):
                    by_epoch.setdefault(epoch, []).append((x, value))
    stats: dict[str, Stats] = {}
    for key, by_epoch in by_key.items():
        points = [by_epoch[epoch] for epoch in sorted(by_epoch)]
        stats[key] = ([sum(x for x, _ in p) / len(p) for p in points], [sum(v for _, v in p) / len(p) for p in points],
                      [min(v for _, v in p) for p in points], [max(v for _, v in p) for p in points])
    return stats


def sample(count: int, most: int | None = None) -> list[int]:
    """Indices of at most `most` (MAX_LINES) of `count` rows, evenly spaced, first and last included."""
    most = MAX_LINES if most is None else most
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)})


def table_figure(table: Table, axis: str = "epoch", log_x: bool = False) -> Figure:
    """Loss and accuracy against `axis`: epoch, flops or seconds (report/budget.py), on a log scale with
    `log_x`. Every epoch is marked, so a run or group with one finished epoch shows as a point (with a
    min-max bar for a group) rather than vanishing as a line of length zero."""
    from matplotlib import colormaps

    count = len(table.members)
    drawn = sample(count)
    shown = len(drawn)
    legend = shown <= MAX_LEGEND
    labels = table.labels if legend else [None] * count
    legend_rows = -(-shown // 2) if legend else 0
    fig = Figure(figsize=(12, 4.5 + 0.2 * legend_rows), layout="constrained")
    axes = fig.subplots(1, 2)
    colors = colormaps["tab10" if shown <= 10 else "turbo"]
    everyone = [run for index in drawn for run in table.members[index]] if shown == count else \
        [run for runs in table.members for run in runs]
    splits = sorted({"test" if split is MISSING else split for run in everyone for split in run.series("eval_split")}) or ["test"]
    last_epoch: float = 1
    if shown < count:  # all the runs behind the rows not drawn, as one band
        stats = all_stats(everyone, KEYS, axis)
        for ax, (suffix, _) in zip(axes, PANELS):
            for split in ("eval", "train"):
                epochs, _, low, high = stats[f"{split}_{suffix}"]
                if epochs:
                    last_epoch = max(last_epoch, epochs[-1])
                    ax.fill_between(epochs, low, high, color="0.5", alpha=0.12 if split == "eval" else 0.06, lw=0)
    for number, index in enumerate(drawn):
        runs, label = table.members[index], labels[index]
        color = colors(number % 10 if shown <= 10 else number / max(1, shown - 1))
        stats = all_stats(runs, KEYS, axis)
        for ax, (suffix, _) in zip(axes, PANELS):
            for split, style, face in (("eval", "-", color), ("train", "--", "none")):
                epochs, mean, low, high = stats[f"{split}_{suffix}"]
                if not epochs:
                    continue
                last_epoch = max(last_epoch, epochs[-1])
                ax.plot(epochs, mean, style, marker="o" if shown == count else "", ms=4, mfc=face, color=color,  # a sample: lines
                        lw=1.4 if shown == count else 0.8, label=label if split == "eval" and suffix == "loss" else None)
                if table.grouped and len(runs) > 1:
                    if len(epochs) == 1:
                        ax.errorbar(epochs, mean, yerr=[[mean[0] - low[0]], [high[0] - mean[0]]], color=color, capsize=4, lw=1)
                    else:
                        ax.fill_between(epochs, low, high, color=color, alpha=0.15, lw=0)
    what = plural(count, "group" if table.grouped else "run")
    if shown < count:
        runs_count = len(everyone)
        what += f", {shown} drawn (evenly spaced in table order) over a grey band: min-max of all {plural(runs_count, 'run')}"
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
                 + ("" if legend else f"\n(no legend above {MAX_LEGEND}; narrow with --where, --top or --group-by)"
                    if shown < count else f" (no legend above {MAX_LEGEND}; narrow with --where, --top or --group-by)"))
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
