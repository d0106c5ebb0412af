"""The Trainer: trains one run and emits its events, per batch and per epoch; it writes no file and shows
nothing itself (listeners.py: the progress display, the non-finite policy, checkpoints and every writer).

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
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from dilbench.augment.pipeline import BatchAugmenter
from dilbench.config import Config
from dilbench.data import Dataset
from dilbench.errors import DilbenchError
from dilbench.signals import handled
from dilbench.training.batches import epoch_batches, epoch_order, eval_pieces, memory_batches, steps_per_epoch
from dilbench.training.distributed import ReplicaCheck, distribute_batches
from dilbench.training.finite import FiniteCheck, NonFiniteLoss, state_variables
from dilbench.training.listeners import BatchEnd, Record, RunFailed, RunInterrupted, TrainingListener
from dilbench.training.progress import ProgressDisplay
from dilbench.training.resources import ResourceSampler
from dilbench.training.runtime import seed_everything
from dilbench.training.step import TrainingStep

log = logging.getLogger("dilbench")
EVAL_PIECE = 128  # at most this many images of an evaluation batch in one piece (Trainer._eval_batches)
EVAL_SIDE_BY_SIDE = 2  # pieces per call


@dataclass
class EvalSplit:
    name: str
    x: np.ndarray
    y: np.ndarray


@dataclass
class _Position:
    """Where the current epoch stands, in Python during its batches (Trainer.save_position writes it to `state`)."""

    loss_sum: float
    correct: int
    seen: int
    done: int  # batches done
    seconds_before: float  # training seconds of this epoch in earlier sessions (a resumed run)
    started: float  # perf_counter when this session's part of the epoch began

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started


@dataclass
class EvalBatch:
    """One batch of `runtime.eval_batch_size` evaluation images: its labels, and its images as the calls that
    run its layer groups, each on one piece or two side by side (Trainer._eval_batches)."""

    calls: list[tuple[tf.Tensor, ...]]
    y: tf.Tensor


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
    def __init__(self, config: Config, data: Dataset, strategy: tf.distribute.Strategy | None = None,
                 listeners: Sequence[TrainingListener] = (), where: str = "the run directory"):
        """`listeners` write the run's outputs (in order, after the progress display and the non-finite policy,
        which every run has); `where` names the run in messages."""
        self.config = config
        self.data = data
        self.listeners: list[TrainingListener] = [ProgressDisplay(), NonFiniteLoss(), *listeners]
        self.where = where
        self.stop_requested = False
        self.position = _Position(0.0, 0, 0, 0, 0.0, time.perf_counter())  # of the current epoch (_train_epoch)
        seed_everything(config.seed, config.runtime.deterministic)
        self.eval_split = (
            EvalSplit("validation", self.data.x_val, self.data.y_val)
            if config.train.eval == "validation" else EvalSplit("test", self.data.x_test, self.data.y_test)
        )
        augmentation = config.augmentation
        self.augmenter = BatchAugmenter(augmentation, data.image_shape[-1], config.seed) if augmentation.mode != "none" else None
        self.strategy = strategy or tf.distribute.get_strategy()
        self.state = RunState()  # host-side bookkeeping, outside the strategy: plain variables
        self.step = TrainingStep.build(config, data.x_train.shape[1:], len(data.class_names), self.strategy)
        replicas = self.strategy.num_replicas_in_sync
        self.global_batch = config.train.batch_size * (replicas if config.train.batch_size_is == "per_replica" else 1)
        if self.global_batch < replicas:
            raise DilbenchError(f"a global batch of {self.global_batch} cannot feed {replicas} replicas; "
                                "raise train.batch_size or set train.batch_size_is: per_replica")
        self.distribute_info = {  # for meta.json
            "strategy": config.runtime.distribute, "replicas": replicas, "global_batch_size": self.global_batch,
            "per_replica_batch_size": self.global_batch / replicas,
        }
        self.model, self.optimizers = self.step.model, self.step.optimizers
        self.checkpoint = tf.train.Checkpoint(
            weights=[v.value for v in self.model.variables], optimizers=self.optimizers,
            loss_scale=self.step.loss_scale, progress=self.state,  # key `progress`: what checkpoints of 0.1 hold
        )
        self.finite = FiniteCheck(self.model, self.optimizers)
        self.replicas = ReplicaCheck(state_variables(self.model, self.optimizers))
        self.eval_batches = self._eval_batches()  # the evaluation split in memory, as evaluate() feeds it (built once)
        self.initial_weights = self.group_weights()  # before any restore: the after plot draws them as reference
        gpus = [f"GPU:{device.name.rsplit(':', 1)[-1]}" for device in tf.config.list_logical_devices("GPU")]
        self.resources = ResourceSampler(gpus)  # each epoch's peak memory and CPU utilisation (resources.py)

    # ---- public -------------------------------------------------------------------------------------
    def train(self, recorded: Sequence[Record] = ()) -> list[Record]:
        """Train up to the configured epochs, after the epochs `recorded` so far (a resume restores the
        state first: checkpoints.py); returns every epoch's record."""
        records = list(recorded)[: int(self.state.epoch)]
        fresh = int(self.state.epoch) == 0 and int(self.state.step) == 0
        self._emit("run_started", fresh)
        with handled({signal.SIGINT: self._on_signal, signal.SIGTERM: self._on_signal}):
            try:
                for epoch in range(int(self.state.epoch), self.config.train.epochs):
                    self._train_and_record_epoch(epoch, records)
            except BaseException as err:
                self._emit("run_stopped", err)
                raise
        self._emit("run_ended", records)
        return records

    def _train_and_record_epoch(self, epoch: int, records: list[Record]) -> None:
        record = self._train_epoch(epoch, records[-1]["updates_total"] if records else [0] * len(self.optimizers))
        records.append(record)
        self.state.epoch.assign(epoch + 1)
        self.state.step.assign(0)
        self._emit("epoch_ended", records)
        log.info(
            "epoch %d/%d  train loss %.4f acc %.4f  %s loss %.4f acc %.4f  %.1fs (train %.1fs, eval %.1fs)  %.0f img/s",
            epoch + 1, self.config.train.epochs, record["train_loss"], record["train_acc"],
            self.eval_split.name, record["eval_loss"], record["eval_acc"], record["seconds"],
            record["train_seconds"], record["eval_seconds"], record["images_per_s"],
        )
        if self.stop_requested and epoch + 1 < self.config.train.epochs:
            raise self._interrupted(f"the end of epoch {epoch + 1}")

    def _emit(self, event: str, *args: Any) -> None:
        for listener in self.listeners:
            getattr(listener, event)(self, *args)

    def request_stop(self) -> None:
        """Stop after the current batch with a checkpoint (what Ctrl-C and SIGTERM do)."""
        self.stop_requested = True

    def _interrupted(self, where: str) -> RunInterrupted:
        return RunInterrupted(
            f"interrupted at {where}; checkpoint saved. Continue with: dilbench train --resume {self.where}"
        )

    def weights_digest(self) -> str:
        """SHA-256 of every model variable's bytes: equal digests mean bit-equal weights."""
        digest = hashlib.sha256()
        for variable in self.model.variables:
            digest.update(np.ascontiguousarray(variable.numpy()).tobytes())
        return digest.hexdigest()

    # ---- one epoch ----------------------------------------------------------------------------------
    def _train_epoch(self, epoch: int, updates_before: list[int]) -> dict[str, Any]:
        cfg, p = self.config, self.state
        n = len(self.data.x_train)
        order = epoch_order(cfg.seed, epoch, n)
        start_step = int(p.step)
        if start_step == 0:
            for var, value in ((p.loss_sum, 0.0), (p.correct, 0), (p.seen, 0), (p.seconds, 0.0)):
                var.assign(value)
        num_steps = steps_per_epoch(n, self.global_batch, cfg.augmentation.mode)
        self.resources.epoch_started()
        # the epoch's sums and position, kept in Python during the batches (variable ops for them cost 0.2 ms of CPU a
        # batch, 0.5% of a quickstart step) and written to `state` by save_position, at the epoch's end and before any
        # checkpoint inside it (the same float64 additions as assign_add made, so the same values)
        self.position = _Position(float(p.loss_sum), int(p.correct), int(p.seen), start_step, float(p.seconds), time.perf_counter())
        position = self.position
        self._emit("epoch_started", epoch, num_steps, start_step)
        batches = None
        try:
            batches = iter(self._epoch_batches(order, start_step, epoch))
            for step, (x, y) in enumerate(batches, start=start_step):
                self.step.set_progress((epoch * num_steps + step) / (cfg.train.epochs * num_steps))
                loss, batch_correct, batch = self.step.train(x, y)
                loss, batch = float(loss), int(batch)
                position.loss_sum += loss * batch
                position.correct += int(batch_correct)
                position.seen += batch
                position.done = step + 1
                self._emit("batch_ended", BatchEnd(epoch, step + 1, num_steps, loss, position.loss_sum / position.seen,
                                                   position.correct / position.seen, position.seen / max(1e-9, position.seconds())))
                if self.stop_requested and step + 1 < num_steps:
                    self.save_position(f"epoch {epoch + 1}, step {step + 1}")
                    self._emit("interrupted")
                    raise self._interrupted(f"epoch {epoch + 1}, step {step + 1}")
            batches = None  # the pipeline's shutdown is part of training time (prompt: see batches.py)
            self.save_position(f"epoch {epoch + 1}")
            self._emit("evaluation_started", self.eval_split.name)
            eval_started = time.perf_counter()
            eval_loss, eval_acc = self.evaluate()
            eval_seconds = time.perf_counter() - eval_started
        finally:
            batches = None  # stop tf.data's Python workers now: kept alive by a traceback, they hang interpreter exit
        if not math.isfinite(eval_loss):
            raise self.failed(epoch, f"the {self.eval_split.name} loss became {eval_loss} after epoch {epoch + 1} (weights finite)")
        train_seconds = float(p.seconds)  # this epoch's batches, summed over the sessions of a resumed run
        return {
            "epoch": epoch + 1,
            "train_loss": float(p.loss_sum) / int(p.seen),
            "train_acc": int(p.correct) / int(p.seen),
            "eval_loss": eval_loss,
            "eval_acc": eval_acc,
            "eval_split": self.eval_split.name,
            "seconds": train_seconds + eval_seconds,  # the epoch's total; writing its outputs comes after
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
            "images_per_s": int(p.seen) / train_seconds if train_seconds else 0.0,  # paired mode sees 2n images per epoch
            "updates": [int(o.updates.numpy()) - u for o, u in zip(self.optimizers, updates_before)],
            "updates_total": [int(o.updates.numpy()) for o in self.optimizers],
            "train_flops": self.step.training_flops(n, self.global_batch, epoch + 1),  # cumulative, from the cost model
            **self.resources.epoch_ended(),  # peak_rss_bytes, cpu_seconds, cpu_util (gpu_peak_bytes with a GPU)
        }

    def _epoch_batches(self, order: np.ndarray, start_step: int, epoch: int):
        """The epoch's batches from `start_step` on: gathered in this loop without augmentation on one replica,
        else from tf.data's pipeline, which augments off the step and splits batches across replicas (batches.py)."""
        data = self.data
        if self.augmenter is None and self.strategy.num_replicas_in_sync == 1:
            return memory_batches(data.x_train, data.y_train, order, self.global_batch, start_step)
        return distribute_batches(self.strategy, epoch_batches(
            data.x_train, data.y_train, order, self.global_batch, start_step, self.augmenter, epoch))

    def save_position(self, where: str) -> None:
        """Write the epoch's position and sums into `state`, for a checkpoint to save, after checking that weights
        and optimizer slots are finite and that the replicas' copies of every variable agree
        (distributed.ReplicaCheck): nothing non-finite or diverged is recorded or saved; `where` names the moment."""
        p, position = self.state, self.position
        for var, value in ((p.loss_sum, position.loss_sum), (p.correct, position.correct), (p.seen, position.seen),
                           (p.step, position.done), (p.seconds, position.seconds())):
            var.assign(value)
        bad = self.finite.non_finite()
        if bad:
            raise self.failed(int(p.epoch), f"weights became non-finite during {where} ({bad}) while the loss stayed finite")
        differing = self.replicas.differing()
        if differing:
            raise RunFailed(f"the replicas' copies of {differing} differ after {where}: a layer updated it with values of "
                            "its own replica's part of the batch (e.g. an unsynchronized BatchNormalization; build batch norm "
                            f"with dilbench.models.layers.batch_norm, which synchronizes it); {self._kept(int(p.epoch))}")

    def failed(self, epoch: int, what: str) -> RunFailed:
        """The failure of the run in `epoch` (0-based: the epochs before it are kept), saying what to change."""
        return RunFailed(f"{what}; lower optimizer.lr" + (" or use precision: float32" if self.config.precision != "float32" else "")
                         + f"; {self._kept(epoch)}")

    def _kept(self, epoch: int) -> str:
        return f"epochs 1-{epoch} are kept in {self.where}" if epoch else f"no epoch finished in {self.where}"

    def evaluate(self) -> tuple[float, float]:
        """Mean loss and accuracy on the evaluation split (BN in inference mode), batch by batch of
        `runtime.eval_batch_size`: each batch's loss and hits as evaluating it in one piece gives them."""
        loss_sum, correct = 0.0, 0
        for batch in self.eval_batches:
            batch_loss, batch_correct = self.step.evaluate(batch.calls, batch.y)
            loss_sum += float(batch_loss)
            correct += int(batch_correct)
        return loss_sum / len(self.eval_split.y), correct / len(self.eval_split.y)

    def _eval_batches(self) -> list[EvalBatch]:
        """The evaluation split as in-memory tensors, batch by batch, each batch's images cut into the pieces
        `evaluate` runs its layer groups on, two side by side in a call, before the head takes the whole batch.

        On a CPU a batch is cut into pieces of at most EVAL_PIECE images. A forward pass is one chain of
        ops, shared between cores only by intra-op threads; two independent pieces let TensorFlow's executor
        run two chains at once. Measured per image against a training image (2 cores, medians): quickstart,
        on a quiet machine 0.32x in batches of 500 at 1.4 cores, 0.24x in pairs of pieces of 128 at 1.7
        cores; with two training runs in the background, 0.74x at 0.6 of a core and 0.32x. The 9-layer
        CIFAR net, whose layers are large enough for intra-op threads, is the same either way (0.25x quiet,
        0.48x loaded); in pieces of its training batch, 10, it took 0.31x in both, better under load but
        worse on a quiet machine, so pieces have a size of their own.

        The numbers stay those of whole batches: a convolution's output for an image does not depend on
        the other images of its batch (tests check every model family), while a dense layer's can
        (oneDNN's matrix product blocks its rows by batch size: quickstart's bfloat16 logits moved by up
        to 1e-3 in pieces of 62-63), so the head, and the loss mean, still see the whole batch (tests
        check losses and hits are bit-equal). On a GPU, or compiled with XLA, a batch stays one piece.
        """
        split, size = self.eval_split, self.config.runtime.eval_batch_size
        whole = self.config.runtime.xla or "GPU" in self.model.variables[0].value.device.upper()
        piece = size if whole else EVAL_PIECE
        batches = []
        for start in range(0, len(split.y), size):
            stop = min(start + size, len(split.y))
            pieces = [tf.constant(split.x[a:b]) for a, b in eval_pieces(start, stop, piece)]
            calls = [tuple(pieces[i:i + EVAL_SIDE_BY_SIDE]) for i in range(0, len(pieces), EVAL_SIDE_BY_SIDE)]
            batches.append(EvalBatch(calls, tf.constant(split.y[start:stop])))
        return batches

    # ---- what listeners read -------------------------------------------------------------------------
    def group_weights(self) -> dict[str, np.ndarray]:
        """All trainable weights of each layer group by its name, then the head's (updated with the last group)."""
        parts = {**dict(zip(self.model.group_names, (g.trainable_variables for g in self.model.groups))),
                 "head": self.model.head.trainable_variables}
        return {name: np.concatenate([v.numpy().ravel() for v in variables]) for name, variables in parts.items() if variables}

    def _on_signal(self, signum: int, frame: object) -> None:
        """Ctrl-C / SIGTERM ask for a clean stop at the next batch; a second Ctrl-C stops at once."""
        if self.stop_requested:
            raise KeyboardInterrupt
        print(f"\n{signal.Signals(signum).name}: stopping after this batch (again to stop now)", file=sys.stderr)
        self.request_stop()

