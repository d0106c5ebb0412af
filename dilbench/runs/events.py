"""TensorBoard event files of a run, laid out the way Keras users know them.

```
events/          the run's hyperparameters (HParams plugin) and its resolved config.yaml (text)
events/train/    epoch_loss, epoch_accuracy, images_per_s, updates/<group>, weights/<group> histograms,
                 system/peak_rss_mib, system/cpu_util (system/gpu_peak_mib with a GPU)
events/eval/     epoch_loss, epoch_accuracy on the evaluation split (test or validation)
```
Train and eval are sibling runs with the same tags, so TensorBoard draws them on one chart (as Keras's
`train`/`validation`). The HParams dashboard takes a run's metrics from the scalars of the runs below the
one holding its hyperparameters, so `eval/epoch_accuracy` is a metric column with no extra summary.

Weight histograms are TensorBoard's own (`tf.summary.histogram`: 30 equal buckets from the minimum to the
maximum, as [left edge, right edge, count] rows, the histogram plugin's metadata), with the buckets made
by `histogram_buckets`: TensorBoard's arithmetic in NumPy, counted by a bincount where TensorBoard sums a
float64 one-hot matrix of every value by 30 buckets (0.2-0.5 s an epoch for quickstart's 803,000 head
weights; about 10 ms now for all groups).

Only the hyperparameters (`hparams`) are written, not an experiment config (`hparams_config`): every run
writing its own config would leave TensorBoard to pick one of them for a whole sweep, and a config
carries no `differs` flags, so the dashboard would show five arbitrary columns of ~40. Without one,
TensorBoard builds the experiment from all runs: the union of their keys, each key's type and domain,
and the keys that differ between runs listed (and shown) first.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import tensorflow as tf
from tensorboard.plugins.histogram.metadata import create_summary_metadata

from dilbench.config import Config, dump_config
from dilbench.runs.rundir import RunDir
from dilbench.training.listeners import Trainer, TrainingListener
from dilbench.typed.validate import to_plain

HISTOGRAM_BUCKETS = 30  # tf.summary.histogram's default
HISTOGRAM_METADATA = create_summary_metadata(display_name=None, description=None)  # what tf.summary.histogram writes


def histogram_buckets(values: np.ndarray) -> np.ndarray:
    """`tf.summary.histogram`'s [HISTOGRAM_BUCKETS, 3] float64 rows (left edge, right edge, count) for `values`,
    bit for bit (tests check): TensorBoard's `_buckets` (histogram plugin's summary_v2) in NumPy, the same
    float64 operations one at a time, counted by bincount where TensorBoard sums a one-hot matrix. (Compiled
    as one tf.function, grappler fuses linspace's multiply and add, and the edges move in the last bit.)
    Values all equal fill the last bucket; no values, all zeros."""
    count = HISTOGRAM_BUCKETS
    data = np.asarray(values, np.float64).ravel()
    if data.size == 0:
        return np.zeros((count, 3))
    low, high = data.min(), data.max()
    span = high - low
    if span == 0:
        edges = np.full(count, high)
        return np.stack([edges, edges, np.eye(count)[-1] * data.size], axis=1)
    width = span / count
    counts = np.bincount(np.minimum(np.floor((data - low) / width).astype(np.int64), count - 1), minlength=count)
    edges = np.concatenate([[low], low + width * np.arange(1, count, dtype=np.float64), [high]])  # tf.linspace's
    return np.stack([edges[:-1], edges[1:], counts.astype(np.float64)], axis=1)


SCALARS = {  # TensorBoard run -> (tag, metrics.jsonl key)
    "train": (("epoch_loss", "train_loss"), ("epoch_accuracy", "train_acc"), ("images_per_s", "images_per_s")),
    "eval": (("epoch_loss", "eval_loss"), ("epoch_accuracy", "eval_acc")),
}

SYSTEM = (  # TensorBoard tag in events/train, metrics.jsonl key, scale: what the run cost the machine (training/resources.py)
    ("system/peak_rss_mib", "peak_rss_bytes", 2**-20), ("system/cpu_util", "cpu_util", 1.0),
    ("system/gpu_peak_mib", "gpu_peak_bytes", 2**-20),
)


def hparam_values(config: Config) -> dict[str, bool | int | float | str]:
    """The resolved config as flat `section.key` -> value, in types the HParams plugin takes.

    Lists and mappings (dilations, augmentation ops) become JSON text; null becomes the string "null"."""
    flat: dict[str, Any] = {}

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict) and value:
            for child, item in value.items():
                walk(item, f"{key}.{child}" if key else child)
        elif value is None:
            flat[key] = "null"
        elif isinstance(value, (bool, int, float, str)):
            flat[key] = value
        else:
            flat[key] = json.dumps(value)

    walk(to_plain(config), "")
    return flat


class RunEvents(TrainingListener):
    """The writer of events/: run info when training starts (or resumes), one epoch at every epoch end."""

    def __init__(self, run: RunDir, config: Config):
        self.run, self.config = run, config
        self.train = tf.summary.create_file_writer(str(run.events / "train"))
        self.eval = tf.summary.create_file_writer(str(run.events / "eval"))

    def run_started(self, trainer: Trainer, fresh: bool) -> None:
        self._write_run_info(self.run, self.config)

    def epoch_ended(self, trainer: Trainer, records: list[dict[str, Any]]) -> None:
        self.write_epoch(records[-1], trainer.group_weights(), trainer.model.group_names)

    @staticmethod
    def _write_run_info(run: RunDir, config: Config) -> None:
        """Hyperparameters and config text, rewritten at every start and resume: TensorBoard keeps the
        first hyperparameters it reads in a run, so an extended run's new train.epochs needs a fresh file."""
        from tensorboard.plugins.hparams import api as hp

        for old in run.events.glob("events.out.tfevents.*"):
            old.unlink()
        writer = tf.summary.create_file_writer(str(run.events))
        with writer.as_default():
            hp.hparams(hparam_values(config), trial_id=run.path.name)
            tf.summary.text("config", f"```yaml\n{dump_config(config)}```", step=0)
        writer.close()

    def write_epoch(self, record: dict[str, Any], weights: dict[str, np.ndarray], group_names: list[str]) -> None:
        """One epoch's record (as in metrics.jsonl) and the weights of each layer group (and the head)."""
        step = record["epoch"]
        for name, writer in (("train", self.train), ("eval", self.eval)):
            with writer.as_default():
                for tag, key in SCALARS[name]:
                    tf.summary.scalar(tag, record[key], step=step)
        with self.train.as_default():
            for tag, key, scale in SYSTEM:
                if record.get(key) is not None:
                    tf.summary.scalar(tag, record[key] * scale, step=step)
            for group, count in zip(group_names, record["updates"]):
                tf.summary.scalar(f"updates/{group}", count, step=step)
            for group, values in weights.items():
                tf.summary.write(f"weights/{group}", histogram_buckets(values), step=step, metadata=HISTOGRAM_METADATA)
        self.train.flush()
        self.eval.flush()
