"""A grid of training images next to augmented versions of them, to check a pipeline by eye.

Used by `dilbench augment preview` and by a run's plots (plots/augmentation.png). Needs matplotlib
and imgaug, never TensorFlow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from dilbench.augment.pipeline import apply, build_augmenter
from dilbench.config import Config
from dilbench.data import Dataset, load_data
from dilbench.errors import UsageError
from dilbench.report.plots import _save


def preview_figure(augmenter: Any, data: Dataset, seed: int, title: str, images: int = 8, versions: int = 6) -> Figure:
    """Rows of `images` training images (chosen by `seed`), each followed by `versions` augmented versions."""
    rng = np.random.default_rng([seed, 0x70726576])  # "prev"
    chosen = np.sort(rng.choice(len(data.x_train), size=min(images, len(data.x_train)), replace=False))
    originals = data.x_train[chosen]
    columns = [originals] + [apply(augmenter, originals, int(rng.integers(2**32))) for _ in range(versions)]
    gray = data.image_shape[-1] == 1
    fig = Figure(figsize=(1.0 * (versions + 1) + 1.2, 1.0 * len(chosen) + 0.6), layout="tight")
    axes = fig.subplots(len(chosen), versions + 1, squeeze=False)
    for row, index in enumerate(chosen):
        for col, batch in enumerate(columns):
            ax = axes[row, col]
            ax.imshow(batch[row, ..., 0] if gray else batch[row], cmap="gray" if gray else None, vmin=0, vmax=255,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(data.class_names[data.y_train[index]], rotation=0, ha="right", va="center", fontsize=9)
    axes[0, 0].set_title("original", fontsize=9)
    for col in range(1, versions + 1):
        axes[0, col].set_title(f"augmented {col}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def save_preview(augmenter: Any, data: Dataset, path: Path, seed: int, title: str, images: int = 8, versions: int = 6) -> None:
    _save(preview_figure(augmenter, data, seed, title, images, versions), path)


def preview_config(config: Config, path: Path, images: int = 8, versions: int = 6) -> None:
    """Load CONFIG's training data and save a preview grid of its augmentation to `path` (a PNG)."""
    if not config.augmentation.ops:
        raise UsageError(f"{config.name}: augmentation.ops is empty; there is nothing to preview")
    data = load_data(config.data, config.seed)
    augmenter = build_augmenter(config.augmentation, data.image_shape[-1])
    path.parent.mkdir(parents=True, exist_ok=True)
    save_preview(augmenter, data, path, config.seed, f"{config.name}: augmentation.ops on {data.name}", images, versions)
