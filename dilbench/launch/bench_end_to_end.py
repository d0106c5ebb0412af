"""`dilbench bench --end-to-end`: a real Trainer epoch on the real data pipeline against the bare compiled step.

One process, alternating: the bare step (a TrainingStep built from the same config, fed in-memory batches
of the real training images, its loss read back every step as the Trainer does) for as many steps as an
epoch has, then one Trainer epoch: its batches (gathered in the loop, or tf.data's pipeline with any
augmentation), progress, evaluation, metrics.jsonl, TensorBoard events and weight histograms, checkpoints
and the curves plot. The Trainer's
first epoch traces its steps and is not measured; `rounds` measured epochs follow, each after its own
bare-step timing, and medians over rounds are reported (of ratios and shares taken per round).

The epoch's training throughput is metrics.jsonl's `images_per_s` (images over `train_seconds`); the
part of the epoch outside training is its wall time, outputs included, minus `train_seconds`.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import tensorflow as tf

from dilbench.config import Config
from dilbench.data import Dataset, load_data
from dilbench.runs.rundir import RunDir
from dilbench.tables import text_table
from dilbench.training.batches import epoch_order, steps_per_epoch
from dilbench.training.listeners import TrainingListener
from dilbench.training.step import TrainingStep

DISTINCT_BATCHES = 8  # the bare step cycles through this many in-memory batches


@dataclass(frozen=True)
class EpochTiming:
    """One measured round: the bare step over an epoch's steps, then one Trainer epoch."""

    bare_seconds: float  # the bare step, `steps` steps
    bare_images_per_s: float
    train_seconds: float  # the epoch's batches (metrics.jsonl)
    epoch_images_per_s: float  # metrics.jsonl images_per_s
    eval_seconds: float
    outputs_seconds: float  # metrics, events and histograms, checkpoints, curves plot
    epoch_seconds: float  # the whole epoch, outputs included

    @property
    def ratio(self) -> float:
        """The epoch's training images/s relative to the bare step's."""
        return self.epoch_images_per_s / self.bare_images_per_s

    @property
    def outside_share(self) -> float:
        """The share of the epoch's wall time not spent on training batches."""
        return (self.epoch_seconds - self.train_seconds) / self.epoch_seconds

    @property
    def eval_share(self) -> float:
        return self.eval_seconds / self.epoch_seconds

    @property
    def outputs_share(self) -> float:
        return self.outputs_seconds / self.epoch_seconds


COLUMNS = ("bare_images_per_s", "epoch_images_per_s", "ratio", "train_seconds", "eval_seconds", "outputs_seconds",
           "epoch_seconds", "outside_share", "eval_share", "outputs_share")


@dataclass(frozen=True)
class EndToEnd:
    steps: int  # batches per epoch
    batch_size: int
    rounds: list[EpochTiming]

    def median(self, column: str) -> float:
        """The median over rounds of one of COLUMNS; ratios and shares are taken per round first, as each
        round's bare step and epoch ran side by side while the machine's load may drift between rounds."""
        return statistics.median(getattr(r, column) for r in self.rounds)


def run_end_to_end(config: Config, rounds: int = 2) -> EndToEnd:
    """Time `rounds` Trainer epochs of `config` on its real data, each after the bare step (module docstring)."""
    from dilbench.report.run_plots import RunPlots
    from dilbench.runs.events import RunEvents
    from dilbench.runs.metrics import MetricsWriter
    from dilbench.training.checkpoints import RunCheckpoints
    from dilbench.training.trainer import Trainer

    data = load_data(config.data, config.seed)
    config = replace(config, train=replace(config.train, epochs=rounds + 1))
    with tempfile.TemporaryDirectory(prefix="dilbench-bench-") as tmp:
        run = RunDir.create(tmp, config.name)
        trainer = Trainer(config, data, where=str(run.path))
        ends: list[float] = []
        trainer.listeners += [MetricsWriter(run), RunCheckpoints(trainer, run), RunEvents(run, config),
                              RunPlots(run.plots, config.name), _Clock(ends)]  # the clock last: outputs are written
        batch = trainer.global_batch
        steps = steps_per_epoch(len(data.x_train), batch, config.augmentation.mode)
        bare, bare_images = _bare_epoch(config, data, batch, steps)
        bare_seconds, starts = [], []
        train_epoch = trainer._train_epoch

        def timed_epoch(epoch: int, updates_before: list[int]):
            if epoch > 0:
                bare_seconds.append(bare())
            starts.append(time.perf_counter())
            return train_epoch(epoch, updates_before)

        trainer._train_epoch = timed_epoch  # type: ignore[method-assign]
        records = trainer.train()
    timings = []
    for record, start, seconds in zip(records[1:], starts[1:], bare_seconds):
        wall = min(t for t in ends if t > start) - start
        timings.append(EpochTiming(
            seconds, bare_images / seconds, record["train_seconds"], record["images_per_s"], record["eval_seconds"],
            wall - record["seconds"], wall,
        ))
    return EndToEnd(steps, batch, timings)


class _Clock(TrainingListener):
    """Notes when each epoch's outputs (metrics, checkpoints, events, plots) are all written."""

    def __init__(self, ends: list[float]):
        self.ends = ends

    def epoch_ended(self, trainer: Any, records: list[dict[str, Any]]) -> None:
        self.ends.append(time.perf_counter())


def _bare_epoch(config: Config, data: Dataset, batch: int, steps: int) -> tuple[Callable[[], float], int]:
    """A function timing `steps` bare steps on in-memory batches of the training images (traced here), and
    the images those steps train on."""
    step = TrainingStep.build(config, data.x_train.shape[1:], len(data.class_names)).train
    order = epoch_order(config.seed, 0, len(data.x_train))
    slices = [order[i:i + batch] for i in range(0, min(len(order), DISTINCT_BATCHES * batch), batch)]
    batches = [(tf.constant(data.x_train[idx]), tf.constant(data.y_train[idx])) for idx in slices]
    for x, y in batches[:2]:
        float(step(x, y)[0])  # trace and warm up

    def bare() -> float:
        start = time.perf_counter()
        for i in range(steps):
            x, y = batches[i % len(batches)]
            float(step(x, y)[0])
        return time.perf_counter() - start

    return bare, sum(len(slices[i % len(slices)]) for i in range(steps))


def format_end_to_end(result: EndToEnd, title: str) -> str:
    header = ("round", "bare img/s", "epoch img/s", "ratio", "train s", "eval s", "outputs s", "epoch s", "outside",
              "eval", "outputs")
    formats = ("{:.1f}", "{:.1f}", "{:.3f}", "{:.2f}", "{:.2f}", "{:.2f}", "{:.2f}", "{:.1%}", "{:.1%}", "{:.1%}")
    rows = [[str(i), *(f.format(getattr(r, c)) for f, c in zip(formats, COLUMNS))] for i, r in enumerate(result.rounds, 1)]
    rows.append(["median", *(f.format(result.median(c)) for f, c in zip(formats, COLUMNS))])
    return "\n".join([
        title,
        f"each round: the bare step over {result.steps} steps of {result.batch_size}, then a Trainer epoch of {result.steps} steps",
        text_table(rows, header, [False] + [True] * len(COLUMNS)),
        f"epoch training img/s vs the bare step: {result.median('ratio'):.3f}x (median over rounds)",
        f"outside training: {result.median('outside_share'):.1%} of the epoch (median over rounds; evaluation "
        f"{result.median('eval_share'):.1%}, metrics + events + checkpoints + plots {result.median('outputs_share'):.1%})",
    ])
