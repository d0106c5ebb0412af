"""Process-wide setup for a run: seeds, op determinism, mixed precision policy, device facts."""

from __future__ import annotations

import random

import numpy as np
import tensorflow as tf

from dilbench.config.schema import TrainConfig
from dilbench.training.cluster import slurm_resolver

POLICIES = {"float32": "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}


def seed_everything(seed: int, deterministic: bool) -> None:
    """One seed for Python, NumPy and TensorFlow; `deterministic` turns on TF op determinism."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    tf.random.set_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()


def make_strategy(train: TrainConfig) -> tf.distribute.Strategy:
    """The tf.distribute strategy `train.distribute` asks for; call before anything touches a device."""
    names = [d.upper() for d in train.devices]
    cpus = [int(d.split(":")[1]) for d in names if d.startswith("CPU:")]
    if cpus and max(cpus) > 0:  # several CPU "devices": split the host CPU into logical devices
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * (max(cpus) + 1))
    if train.distribute == "mirrored":
        return tf.distribute.MirroredStrategy([f"/{d}" for d in names] or None)
    if train.distribute == "multi_worker":  # the cluster: $TF_CONFIG, else the Slurm step (checked by the launcher)
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=slurm_resolver())
    if names:  # distribute: none with one named device (the config allows no more)
        return tf.distribute.OneDeviceStrategy(f"/{names[0]}")
    return tf.distribute.get_strategy()


def devices() -> list[str]:
    """What TensorFlow will compute on: every GPU when there is one, else the CPU."""
    return [f"{d.device_type}:{d.name.split(':')[-1]}" for d in tf.config.list_logical_devices()]


class LossScale(tf.Module):
    """Dynamic loss scaling for float16: skip a step whose gradients overflow and halve the scale,
    double it after `period` good steps. float32 and bfloat16 need none (bfloat16 has float32's range)."""

    def __init__(self, enabled: bool, initial: float = 2.0**15, period: int = 2000):
        super().__init__(name="loss_scale")
        self.enabled = enabled
        self.period = period
        first = tf.VariableAggregation.ONLY_FIRST_REPLICA  # replicas see the same summed gradients
        self.scale = tf.Variable(initial if enabled else 1.0, dtype=tf.float32, trainable=False, aggregation=first)
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, aggregation=first)

    def scaled(self, loss: tf.Tensor) -> tf.Tensor:
        return loss * self.scale if self.enabled else loss

    def apply(self, grads: list[tf.Tensor], update) -> None:
        """Call `update(grads)` with unscaled gradients, unless they overflowed (float16 only)."""
        if not self.enabled:
            update(grads)
            return
        grads = [g / self.scale for g in grads]
        finite = tf.reduce_all([tf.reduce_all(tf.math.is_finite(g)) for g in grads])

        def good():
            update(grads)
            grown = self.good_steps + 1 >= self.period
            self.scale.assign(tf.where(grown, self.scale * 2.0, self.scale))
            self.good_steps.assign(tf.where(grown, tf.constant(0, tf.int64), self.good_steps + 1))
            return tf.constant(True)

        def overflow():
            self.scale.assign(tf.maximum(self.scale / 2.0, 1.0))
            self.good_steps.assign(0)
            return tf.constant(False)

        tf.cond(finite, good, overflow)
