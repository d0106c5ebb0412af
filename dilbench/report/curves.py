"""`compare --plot`: the rows of a compare Table as overlaid loss and accuracy curves.

One colour per row; the evaluation split (test or validation) solid, train dashed. A group is drawn as
its mean over the runs that reached each epoch, with a band from the min to the max run. The legend is
the config values that tell the rows apart; beyond MAX_LEGEND rows it is left out (it would hide the
curves) and the title says so. Beyond MAX_LINES rows (thousands of runs or groups) an even sample of
MAX_LINES rows, in table order, is drawn over a grey band from the min to the max of all their runs,
and the title says how many of how many: a plot of 10,000 runs takes seconds, and shows them all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from dilbench.report.budget import AXIS_LABELS, axis_values
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


def table_figure(table: Table, axis: str = "epoch") -> Figure:
    """Loss and accuracy against `axis`: epoch, flops or seconds (report/budget.py). Every epoch is
    marked, so a run or group with one finished epoch shows as a point (with a min-max bar for a group)
    rather than vanishing as a line of length zero."""
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
        ax.set(xlabel=AXIS_LABELS[axis], ylabel=name, title=f"{name}: {'/'.join(splits)} ● solid, train ○ dashed")
        if axis == "epoch":
            epoch_axis(ax, last_epoch)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.grid(alpha=0.3)
    if legend and axes[0].get_legend_handles_labels()[0]:
        fig.legend(loc="outside lower center", ncols=min(2, count), fontsize=8)
    fig.suptitle(what + (" (mean, band: min-max)" if table.grouped else "")
                 + ("" if legend else f"\n(no legend above {MAX_LEGEND}; narrow with --where, --top or --group-by)"
                    if shown < count else f" (no legend above {MAX_LEGEND}; narrow with --where, --top or --group-by)"))
    return fig


def plot_table(table: Table, path: Path, axis: str = "epoch") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(table_figure(table, axis), path)
