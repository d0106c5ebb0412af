"""The writer of metrics.jsonl: listens to the Trainer and rewrites the file atomically at every epoch end."""

from __future__ import annotations

from typing import Any

from dilbench.runs.rundir import RunDir
from dilbench.training.listeners import Trainer, TrainingListener


class MetricsWriter(TrainingListener):
    def __init__(self, run: RunDir):
        self.run = run

    def epoch_ended(self, trainer: Trainer, records: list[dict[str, Any]]) -> None:
        self.run.write_metrics(records)
