"""The Trainer: one run, from a Config to a complete run directory.

Built under a tf.distribute strategy scope (the default strategy on one device) so other strategies are
a config switch. The epoch's batch order is a pure function of (seed, epoch), and checkpoints hold the
position inside the epoch and its running sums, so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
import math
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from dilbench.augment.pipeline import BatchAugmenter
from dilbench.config import Config
from dilbench.data import Dataset
from dilbench.errors import DilbenchError
from dilbench.report.plots import plot_curves, plot_weight_histograms
from dilbench.runs.rundir import RunDir
from dilbench.training.batches import epoch_batches, epoch_order, eval_batches, steps_per_epoch
from dilbench.training.distributed import distribute_batches
from dilbench.training.progress import Progress
from dilbench.training.runtime import seed_everything
from dilbench.training.step import TrainingStep

log = logging.getLogger("dilbench")


class RunFailed(DilbenchError):
    """Training cannot go on (e.g. a NaN loss); finished epochs and checkpoints are kept."""


class RunInterrupted(DilbenchError):
    """Ctrl-C or SIGTERM: a checkpoint was saved; `dilbench train --resume RUN_DIR` continues."""

    exit_code = 130


@dataclass
class EvalSplit:
    name: str
    x: np.ndarray
    y: np.ndarray


class RunState(tf.Module):
    """Where the run stands, saved in every checkpoint: epoch, step inside it and the epoch's sums."""

    def __init__(self) -> None:
        super().__init__(name="progress")
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False)  # epochs completed
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False)  # batches done in the current epoch
        self.loss_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self.correct = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.seen = tf.Variable(0, dtype=tf.int64, trainable=False)
        self.seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False)
        self.best_acc = tf.Variable(-1.0, dtype=tf.float64, trainable=False)


class Trainer:
    def __init__(self, config: Config, run: RunDir, data: Dataset, strategy: tf.distribute.Strategy | None = None):
        self.config = config
        self.run = run
        self.data = data
        self.stop_requested = False
        seed_everything(config.seed, config.deterministic)
        self.eval_split = (
            EvalSplit("validation", self.data.x_val, self.data.y_val)
            if config.train.eval == "validation" else EvalSplit("test", self.data.x_test, self.data.y_test)
        )
        # built once: from_tensor_slices copies the arrays into the pipeline, which per epoch costs seconds
        self.eval_data = eval_batches(self.eval_split.x, self.eval_split.y, config.train.eval_batch_size)
        augmentation = config.augmentation
        self.augmenter = BatchAugmenter(augmentation, data.image_shape[-1], config.seed) if augmentation.mode != "none" else None
        self.strategy = strategy or tf.distribute.get_strategy()
        self.progress = RunState()  # host-side bookkeeping, outside the strategy: plain variables
        self.step = TrainingStep.build(config, data.x_train.shape[1:], len(data.class_names), self.strategy)
        replicas = self.strategy.num_replicas_in_sync
        self.global_batch = config.train.batch_size * (replicas if config.train.batch_size_is == "per_replica" else 1)
        if self.global_batch < replicas:
            raise DilbenchError(f"a global batch of {self.global_batch} cannot feed {replicas} replicas; "
                                "raise train.batch_size or set train.batch_size_is: per_replica")
        run.update_meta(distribute={
            "strategy": config.train.distribute, "replicas": replicas, "global_batch_size": self.global_batch,
            "per_replica_batch_size": self.global_batch / replicas,
        })
        self.model, self.optimizers = self.step.model, self.step.optimizers
        self.checkpoint = tf.train.Checkpoint(
            weights=[v.value for v in self.model.variables], optimizers=self.optimizers,
            loss_scale=self.step.loss_scale, progress=self.progress,
        )
        self.latest = tf.train.CheckpointManager(self.checkpoint, run.checkpoints / "latest", max_to_keep=1)
        self.best = tf.train.CheckpointManager(self.checkpoint, run.checkpoints / "best", max_to_keep=1)
        self.writer = tf.summary.create_file_writer(str(run.events))

    # ---- public -------------------------------------------------------------------------------------
    def restore(self, directory: Path) -> None:
        """Continue from the latest checkpoint in `directory` (the run's state at its last epoch end or
        interruption; a multi-worker non-chief worker reads the chief's)."""
        latest = tf.train.latest_checkpoint(str(directory))
        if not latest:
            return
        self.checkpoint.read(latest).assert_existing_objects_matched()
        log.info("resumed from %s at epoch %d, step %d", latest, int(self.progress.epoch) + 1, int(self.progress.step))

    def train(self) -> list[dict[str, Any]]:
        """Train up to the configured epochs; returns all epoch records (also in metrics.jsonl)."""
        records = self.run.read_metrics()[: int(self.progress.epoch)]
        if int(self.progress.epoch) == 0 and int(self.progress.step) == 0:
            self._plot_weights("weights_before.png", "weights at initialisation")
            if self.augmenter:
                self._plot_augmentation()
        with self._signals():
            for epoch in range(int(self.progress.epoch), self.config.train.epochs):
                record = self._train_epoch(epoch, records[-1]["updates_total"] if records else [0] * len(self.optimizers))
                records.append(record)
                self.run.write_metrics(records)
                self._write_events(record)
                self.progress.epoch.assign(epoch + 1)
                self.progress.step.assign(0)
                self.latest.save()
                if record["test_acc"] > float(self.progress.best_acc):
                    self.progress.best_acc.assign(record["test_acc"])
                    self.best.save()
                plot_curves(records, self.run.plots / "curves.png", self.config.name)
                log.info(
                    "epoch %d/%d  train loss %.4f acc %.4f  %s loss %.4f acc %.4f  %.1fs (train %.1fs, eval %.1fs)  %.0f img/s",
                    epoch + 1, self.config.train.epochs, record["train_loss"], record["train_acc"],
                    self.eval_split.name, record["test_loss"], record["test_acc"], record["seconds"],
                    record["train_seconds"], record["eval_seconds"], record["images_per_s"],
                )
                if self.stop_requested and epoch + 1 < self.config.train.epochs:
                    raise self._interrupted(f"the end of epoch {epoch + 1}")
        self._plot_weights("weights_after.png", f"weights after {self.config.train.epochs} epochs")
        return records

    def request_stop(self) -> None:
        """Stop after the current batch with a checkpoint (what Ctrl-C and SIGTERM do)."""
        self.stop_requested = True

    def _interrupted(self, where: str) -> RunInterrupted:
        return RunInterrupted(
            f"interrupted at {where}; checkpoint saved. Continue with: dilbench train --resume {self.run.path}"
        )

    def weights_digest(self) -> str:
        """SHA-256 of every model variable's bytes: equal digests mean bit-equal weights."""
        digest = hashlib.sha256()
        for variable in self.model.variables:
            digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
        return digest.hexdigest()

    # ---- one epoch ----------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int, updates_before: list[int]) -> dict[str, Any]:
        cfg, p = self.config, self.progress
        n = len(self.data.x_train)
        order = epoch_order(cfg.seed, epoch, n)
        start_step = int(p.step)
        if start_step == 0:
            for var, value in ((p.loss_sum, 0.0), (p.correct, 0), (p.seen, 0), (p.seconds, 0.0)):
                var.assign(value)
        num_steps = steps_per_epoch(n, self.global_batch, cfg.augmentation.mode)
        bar = Progress(f"epoch {epoch + 1}/{cfg.train.epochs}", num_steps, initial=start_step)
        started = time.perf_counter()
        seconds_before = float(p.seconds)
        batches = None
        try:
            batches = iter(distribute_batches(self.strategy, epoch_batches(
                self.data.x_train, self.data.y_train, order, self.global_batch, start_step, self.augmenter, epoch)))
            for step, (x, y) in enumerate(batches, start=start_step):
                if cfg.train.lr_schedule == "cosine":
                    done = (epoch * num_steps + step) / (cfg.train.epochs * num_steps)
                    self.step.lr_scale.assign(0.5 * (1.0 + math.cos(math.pi * done)))
                loss, correct, batch = self.step.train(x, y)
                loss, batch = float(loss), int(batch)
                if not math.isfinite(loss):
                    raise RunFailed(
                        f"loss became {loss} at epoch {epoch + 1}, step {step + 1}; lower optimizer.lr"
                        + (" or use precision: float32" if cfg.precision != "float32" else "")
                        + f"; epochs 1-{epoch} are kept in {self.run.path}"
                    )
                p.loss_sum.assign_add(loss * batch)
                p.correct.assign_add(int(correct))
                p.seen.assign_add(batch)
                p.step.assign(step + 1)
                bar.update(loss=float(p.loss_sum) / int(p.seen), acc=int(p.correct) / int(p.seen),
                           img_s=int(p.seen) / max(1e-9, seconds_before + time.perf_counter() - started))
                if self.stop_requested and step + 1 < num_steps:
                    p.seconds.assign(seconds_before + time.perf_counter() - started)
                    self.latest.save()
                    raise self._interrupted(f"epoch {epoch + 1}, step {step + 1}")
            batches = None  # the pipeline's shutdown is part of training time (prompt: see batches.py)
            p.seconds.assign(seconds_before + time.perf_counter() - started)
            bar.status(f"evaluating on the {self.eval_split.name} split")
            eval_started = time.perf_counter()
            test_loss, test_acc = self.evaluate()
            eval_seconds = time.perf_counter() - eval_started
        finally:
            batches = None  # stop tf.data's Python workers now: kept alive by a traceback, they hang interpreter exit
            bar.close()
        train_seconds = float(p.seconds)  # this epoch's batches, summed over the sessions of a resumed run
        return {
            "epoch": epoch + 1,
            "train_loss": float(p.loss_sum) / int(p.seen),
            "train_acc": int(p.correct) / int(p.seen),
            "test_loss": test_loss,
            "test_acc": test_acc,
            "eval_split": self.eval_split.name,
            "seconds": train_seconds + eval_seconds,  # the epoch's total; writing its outputs comes after
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
            "images_per_s": int(p.seen) / train_seconds if train_seconds else 0.0,  # paired mode sees 2n images per epoch
            "updates": [int(o.updates.numpy()) - u for o, u in zip(self.optimizers, updates_before)],
            "updates_total": [int(o.updates.numpy()) for o in self.optimizers],
        }

    def evaluate(self) -> tuple[float, float]:
        """Mean loss and accuracy on the evaluation split (BN in inference mode)."""
        split = self.eval_split
        loss_sum, correct = 0.0, 0
        for x, y in self.eval_data:
            batch_loss, batch_correct = self.step.evaluate(x, y)
            loss_sum += float(batch_loss)
            correct += int(batch_correct)
        return loss_sum / len(split.y), correct / len(split.y)

    # ---- outputs ------------------------------------------------------------------------------------
    def _group_weights(self) -> dict[str, np.ndarray]:
        return {
            f"group{i + 1}": np.concatenate([v.numpy().ravel() for v in self.model.group_variables(i)])
            for i in range(self.model.num_groups)
        }

    def _plot_weights(self, filename: str, title: str) -> None:
        plot_weight_histograms(self._group_weights(), self.run.plots / filename, f"{self.config.name}: {title}")

    def _plot_augmentation(self) -> None:
        """plots/augmentation.png: training images next to augmented versions, to check the pipeline by eye."""
        from dilbench.augment.preview import save_preview

        save_preview(self.augmenter.pipeline, self.data, self.run.plots / "augmentation.png", self.config.seed,
                     f"{self.config.name}: augmentation ({self.config.augmentation.mode})")

    def _write_events(self, record: dict[str, Any]) -> None:
        step = record["epoch"]
        with self.writer.as_default():
            for tag, key in (("train/loss", "train_loss"), ("train/acc", "train_acc"), ("test/loss", "test_loss"),
                             ("test/acc", "test_acc"), ("perf/images_per_s", "images_per_s")):
                tf.summary.scalar(tag, record[key], step=step)
            for name, values in self._group_weights().items():
                tf.summary.histogram(f"weights/{name}", values, step=step)
            for i, count in enumerate(record["updates"]):
                tf.summary.scalar(f"updates/group{i + 1}", count, step=step)
        self.writer.flush()

    def _signals(self):
        """Ctrl-C / SIGTERM ask for a clean stop at the next batch; a second Ctrl-C stops at once."""
        trainer = self

        class Handler:
            def __enter__(self):
                if threading.current_thread() is not threading.main_thread():
                    self.previous = {}  # signal handlers can only be set from the main thread
                    return
                self.previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
                for sig in self.previous:
                    signal.signal(sig, self.handle)

            def handle(self, signum, frame):
                if trainer.stop_requested:
                    raise KeyboardInterrupt
                print(f"\n{signal.Signals(signum).name}: stopping after this batch (again to stop now)", file=sys.stderr)
                trainer.request_stop()

            def __exit__(self, *exc):
                for sig, handler in self.previous.items():
                    signal.signal(sig, handler)

        return Handler()

