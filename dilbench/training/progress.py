"""Per-epoch progress, a listener: a tqdm bar on a terminal, a few plain lines otherwise (logs, CI)."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

from dilbench.training.listeners import BatchEnd, Trainer, TrainingListener

log = logging.getLogger("dilbench")


class Progress:
    def __init__(self, description: str, total: int, initial: int = 0, quiet: bool = False):
        self.description = description
        self.total = total
        self.done = initial
        self.next_line = initial + max(1, total // 5)
        self.bar = None
        if not quiet and sys.stderr.isatty():
            self.bar = tqdm(total=total, initial=initial, desc=description, unit="batch", leave=False, dynamic_ncols=True)

    def update(self, **stats: float) -> None:
        self.done += 1
        text = " ".join(f"{k.replace('_', '/')}={v:.4g}" for k, v in stats.items())
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        elif self.done >= self.next_line and self.done < self.total:
            log.info("%s %d/%d %s", self.description, self.done, self.total, text)
            self.next_line += max(1, self.total // 5)

    def status(self, text: str) -> None:
        """Say what happens after the last batch (e.g. evaluation), so the bar does not sit there silently."""
        if self.bar is not None:
            self.bar.set_description_str(f"{self.description}: {text}", refresh=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class ProgressDisplay(TrainingListener):
    """Shows each epoch's batches as they train: one Progress per epoch."""

    def __init__(self) -> None:
        self.progress: Progress | None = None

    def epoch_started(self, trainer: Trainer, epoch: int, steps: int, step: int) -> None:
        self.progress = Progress(f"epoch {epoch + 1}/{trainer.config.train.epochs}", steps, initial=step)

    def batch_ended(self, trainer: Trainer, batch: BatchEnd) -> None:
        if self.progress:
            self.progress.update(loss=batch.mean_loss, acc=batch.accuracy, img_s=batch.images_per_s)

    def evaluation_started(self, trainer: Trainer, split: str) -> None:
        if self.progress:
            self.progress.status(f"evaluating on the {split} split")

    def epoch_ended(self, trainer: Trainer, records: list) -> None:
        self._close()

    def run_stopped(self, trainer: Trainer, error: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.progress:
            self.progress.close()
            self.progress = None
