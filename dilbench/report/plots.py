"""Run plots with matplotlib (Agg backend, no display, no TensorFlow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    """Save via a temp file and rename, like every other run file."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)


def plot_curves(records: list[dict[str, Any]], path: Path, title: str) -> None:
    """Loss and accuracy against epoch, train and evaluation split side by side."""
    plt = _pyplot()
    epochs = [r["epoch"] for r in records]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for key, style in (("train", "-o"), ("test", "-s")):
        ax_loss.plot(epochs, [r[f"{key}_loss"] for r in records], style, label=key)
        ax_acc.plot(epochs, [r[f"{key}_acc"] for r in records], style, label=key)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def plot_weight_histograms(weights: dict[str, np.ndarray], path: Path, title: str) -> None:
    """One histogram per layer group of all its weights."""
    plt = _pyplot()
    cols = min(4, len(weights))
    rows = -(-len(weights) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows), squeeze=False)
    for ax, (name, values) in zip(axes.flat, weights.items()):
        ax.hist(values, bins=60, color="tab:blue")
        ax.set_title(f"{name} (n={values.size:,}, sd={values.std():.3g})", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(weights):]:
        ax.axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
