"""Run plots with matplotlib (no display, no TensorFlow).

The `*_figure` functions build a `matplotlib.figure.Figure` directly, without pyplot: no global state or
backend to pick, nothing to close, and tests can inspect what a plot shows; `_save` writes one as PNG.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullFormatter

WEIGHT_BINS = 100


def _save(fig, path: Path) -> None:
    """Save via a temp file and rename, like every other run file.

    A figure with a layout engine is laid out here, once, and saved without it: savefig would draw it twice,
    once (not rendered) to lay it out and once to render, about a third of the time of saving curves.png.
    The PNG is the same, byte for byte (tests check)."""
    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
        fig.set_layout_engine(None)
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)


def plural(count: int, noun: str) -> str:
    """'1 epoch', '2 epochs'."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def epoch_axis(ax, last_epoch: float) -> None:
    """Whole epochs on the x axis, with room around the first and last point (one epoch is a dot in the middle)."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlim(0.5, max(1, last_epoch) + 0.5)


# ---- curves.png ---------------------------------------------------------------------------------------
def curves_figure(records: list[dict[str, Any]], title: str) -> Figure:
    """Loss and accuracy against epoch: train and the evaluation split on the same axes, every epoch marked."""
    epochs = [r["epoch"] for r in records]
    split = records[-1].get("eval_split", "test") if records else "test"
    fig = Figure(figsize=(10, 4), layout="constrained")
    ax_loss, ax_acc = fig.subplots(1, 2)
    for key, label, style in (("train", "train", "-o"), ("eval", split, "-s")):
        ax_loss.plot(epochs, [r[f"{key}_loss"] for r in records], style, label=label)
        ax_acc.plot(epochs, [r[f"{key}_acc"] for r in records], style, label=label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        epoch_axis(ax, max(epochs, default=1))
        ax.ticklabel_format(axis="y", useOffset=False)  # 2.30258, not 84 with an offset of 1e-6+2.3025
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"{title}: {plural(len(records), 'epoch')}")
    return fig


def plot_curves(records: list[dict[str, Any]], path: Path, title: str) -> None:
    _save(curves_figure(records, title), path)


# ---- weights_before.png, weights_after.png ------------------------------------------------------------
def weight_bins(*snapshots: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per layer group, equal bins spanning its weights in every snapshot (before and after share them, so
    their histograms compare bar for bar): 2 sqrt(n) of them, 20 to WEIGHT_BINS, so 80 weights are not noise."""
    bins = {}
    for name in snapshots[0]:
        count = int(np.clip(2 * math.sqrt(snapshots[0][name].size), 20, WEIGHT_BINS))
        low = min(float(s[name].min()) for s in snapshots if s[name].size)
        high = max(float(s[name].max()) for s in snapshots if s[name].size)
        if high <= low:
            low, high = low - 0.5, high + 0.5
        bins[name] = np.linspace(low, high, count + 1)
    return bins


def weights_figure(weights: dict[str, np.ndarray], bins: dict[str, np.ndarray], title: str, label: str,
                   reference: dict[str, np.ndarray] | None = None, reference_label: str = "") -> Figure:
    """One panel per layer group: a histogram of all its weights on a log count axis (so a few large
    weights, like the identity taps at 1.0 of the context module, stay visible next to thousands near
    0), and `reference` (the weights at initialisation) as an outline on the same bins."""
    count = len(weights)
    cols = min(count, max(2, math.ceil(math.sqrt(1.5 * count))))
    rows = math.ceil(count / cols)
    fig = Figure(figsize=(1.0 + 2.8 * cols, 1.2 + 2.2 * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, (name, values) in zip(axes.flat, weights.items()):
        ax.hist(values, bins=bins[name], color="tab:blue", alpha=0.75, label=label)
        if reference is not None:
            ax.hist(reference[name], bins=bins[name], histtype="step", color="black", lw=0.9, label=reference_label)
        ax.set_yscale("log")
        ax.set_ylim(0.7, max(10.0, ax.get_ylim()[1]))  # at least one decade: labels 1 and 10, never 2x10^0
        ax.yaxis.set_minor_formatter(NullFormatter())
        spread = f"sd {values.std():.3g}" + (f" (init {reference[name].std():.3g})" if reference is not None else "")
        ax.set_title(f"{name}\n{values.size:,} weights, {spread}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(4))
    for ax in list(axes.flat)[count:]:
        ax.axis("off")
    fig.supxlabel("weight value", fontsize=9)
    fig.supylabel("number of weights (log scale)", fontsize=9)
    fig.suptitle(title)
    if reference is not None:
        fig.legend(*axes.flat[0].get_legend_handles_labels(), loc="outside upper right", fontsize=8, ncols=2)
    return fig


def plot_weight_histograms(path: Path, title: str, weights: dict[str, np.ndarray], label: str,
                           bins: dict[str, np.ndarray] | None = None, reference: dict[str, np.ndarray] | None = None,
                           reference_label: str = "") -> None:
    fig = weights_figure(weights, bins or weight_bins(weights), title, label, reference, reference_label)
    _save(fig, path)
