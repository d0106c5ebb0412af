"""The writer of a run's plots/: listens to the Trainer.

weights_before.png and augmentation.png when a run starts, curves.png after every epoch, and at the end
weights_after.png over weights_before.png's outline, with weights_before.png redrawn on the same bins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dilbench.report.augmentation import save_preview
from dilbench.report.plots import plot_curves, plot_weight_histograms, plural, weight_bins
from dilbench.training.listeners import Trainer, TrainingListener


class RunPlots(TrainingListener):
    def __init__(self, plots: Path, name: str):
        self.plots, self.name = plots, name

    def run_started(self, trainer: Trainer, fresh: bool) -> None:
        if not fresh:
            return
        plot_weight_histograms(self.plots / "weights_before.png", f"{self.name}: weights at initialisation",
                               trainer.initial_weights, "at initialisation")
        if trainer.augmenter:
            save_preview(trainer.augmenter.pipeline, trainer.data, self.plots / "augmentation.png", trainer.config.seed,
                         f"{self.name}: augmentation ({trainer.config.augmentation.mode})")

    def epoch_ended(self, trainer: Trainer, records: list[dict[str, Any]]) -> None:
        plot_curves(records, self.plots / "curves.png", self.name)

    def run_ended(self, trainer: Trainer, records: list[dict[str, Any]]) -> None:
        initial, final, epochs = trainer.initial_weights, trainer.group_weights(), len(records)
        bins = weight_bins(initial, final)
        plot_weight_histograms(self.plots / "weights_before.png", f"{self.name}: weights at initialisation",
                               initial, "at initialisation", bins)
        plot_weight_histograms(self.plots / "weights_after.png", f"{self.name}: weights after {plural(epochs, 'epoch')} "
                               "(outline: at initialisation)", final, f"after {plural(epochs, 'epoch')}", bins,
                               initial, "at initialisation")
