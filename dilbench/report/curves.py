"""`compare --plot`: the rows of a compare Table as overlaid loss and accuracy curves.

One colour per row; the evaluation split (test or validation) solid, train dashed. A group is drawn as
its mean over the runs that reached each epoch, with a band from the min to the max run. The legend is
the config values that tell the rows apart; beyond MAX_LEGEND rows it is left out (it would hide the
curves) and the title says so.
"""

from __future__ import annotations

from pathlib import Path

from dilbench.report.budget import AXIS_LABELS, axis_values
from dilbench.report.columns import is_number
from dilbench.report.compare import Table
from dilbench.report.plots import _pyplot, _save
from dilbench.report.runs_index import RunRecord

MAX_LEGEND = 20
PANELS = (("loss", "loss"), ("acc", "accuracy"))


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


def plot_table(table: Table, path: Path, axis: str = "epoch") -> None:
    """Loss and accuracy of the table's rows against `axis`: epoch, flops or seconds (report/budget.py)."""
    plt = _pyplot()
    legend = len(table.members) <= MAX_LEGEND
    legend_rows = -(-len(table.members) // 2) if legend else 0
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5 + 0.2 * legend_rows), layout="constrained")
    colors = plt.get_cmap("tab10" if len(table.members) <= 10 else "turbo")
    splits = sorted({r.get("eval_split", "test") for runs in table.members for run in runs for r in run.metrics}) or ["test"]
    for index, (runs, label) in enumerate(zip(table.members, table.labels)):
        color = colors(index % 10 if len(table.members) <= 10 else index / max(1, len(table.members) - 1))
        for ax, (suffix, _) in zip(axes, PANELS):
            for split, style in (("test", "-"), ("train", "--")):
                epochs, mean, low, high = epoch_stats(runs, f"{split}_{suffix}", axis)
                if not epochs:
                    continue
                ax.plot(epochs, mean, style, color=color, lw=1.4, label=label if split == "test" and suffix == "loss" else None)
                if table.grouped and len(runs) > 1:
                    ax.fill_between(epochs, low, high, color=color, alpha=0.15, lw=0)
    what = f"{len(table.members)} {'groups' if table.grouped else 'runs'}"
    for ax, (_, name) in zip(axes, PANELS):
        ax.set(xlabel=AXIS_LABELS[axis], ylabel=name, title=f"{name}: {'/'.join(splits)} solid, train dashed")
        if axis == "epoch":
            ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
    if legend and axes[0].get_legend_handles_labels()[0]:
        fig.legend(loc="outside lower center", ncols=min(2, len(table.members)), fontsize=8)
    fig.suptitle(what + (" (mean, band: min-max)" if table.grouped else "")
                 + ("" if legend else f" (no legend above {MAX_LEGEND}; narrow with --where, --top or --group-by)"))
    path.parent.mkdir(parents=True, exist_ok=True)
    _save(fig, path)
    plt.close(fig)
