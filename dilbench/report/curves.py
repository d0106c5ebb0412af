"""`compare --plot`: the rows of a compare Table as overlaid loss and accuracy curves.

One colour per row; the evaluation split (test or validation) solid, train dashed. A group is drawn as
its mean over the runs that reached each epoch, with a band from the min to the max run. The legend is
the config values that tell the rows apart; beyond MAX_LEGEND rows it is left out (it would hide the
curves) and the title says so.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from dilbench.report.budget import AXIS_LABELS, axis_values
from dilbench.report.columns import is_number
from dilbench.report.compare import Table
from dilbench.report.packing import MISSING
from dilbench.report.plots import _save, epoch_axis, plural
from dilbench.report.runs_index import RunRecord

MAX_LEGEND = 20
PANELS = (("loss", "cross-entropy loss"), ("acc", "accuracy"))


def epoch_stats(runs: list[RunRecord], key: str, axis: str = "epoch") -> tuple[list[float], list[float], list[float], list[float]]:
    """Per epoch reached by any run: its x on `axis` (the mean over the runs: FLOPs agree between seeds,
    seconds do not), then mean, min and max of `key` over the runs that have it."""
    by_epoch: dict[int, list[tuple[float, float]]] = {}
    for run in runs:
        for i, (position, epoch, value) in enumerate(zip(axis_values(run, axis), run.series("epoch"), run.series(key))):
            if position is not None and is_number(value):
                by_epoch.setdefault(i + 1 if epoch is MISSING else epoch, []).append((position, value))
    points = [by_epoch[epoch] for epoch in sorted(by_epoch)]
    return ([sum(x for x, _ in p) / len(p) for p in points], [sum(v for _, v in p) / len(p) for p in points],
            [min(v for _, v in p) for p in points], [max(v for _, v in p) for p in points])


def table_figure(table: Table, axis: str = "epoch") -> Figure:
    """Loss and accuracy against `axis`: epoch, flops or seconds (report/budget.py). Every epoch is
    marked, so a run or group with one finished epoch shows as a point (with a min-max bar for a group)
    rather than vanishing as a line of length zero."""
    from matplotlib import colormaps

    count = len(table.members)
    legend = count <= MAX_LEGEND
    legend_rows = -(-count // 2) if legend else 0
    fig = Figure(figsize=(12, 4.5 + 0.2 * legend_rows), layout="constrained")
    axes = fig.subplots(1, 2)
    colors = colormaps["tab10" if count <= 10 else "turbo"]
    splits = sorted({"test" if split is MISSING else split for runs in table.members for run in runs
                     for split in run.series("eval_split")}) or ["test"]
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
        ax.set(xlabel=AXIS_LABELS[axis], ylabel=name, title=f"{name}: {'/'.join(splits)} ● solid, train ○ dashed")
        if axis == "epoch":
            epoch_axis(ax, last_epoch)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.grid(alpha=0.3)
    if legend and axes[0].get_legend_handles_labels()[0]:
        fig.legend(loc="outside lower center", ncols=min(2, count), fontsize=8)
    fig.suptitle(what + (" (mean, band: min-max)" if table.grouped else "")
                 + ("" if legend else f" (no legend above {MAX_LEGEND}; narrow with --where, --top or --group-by)"))
    return fig


def plot_table(table: Table, path: Path, axis: str = "epoch") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(table_figure(table, axis), path)
