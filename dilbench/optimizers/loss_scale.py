"""Dynamic loss scaling for float16 mixed precision."""

from __future__ import annotations

import tensorflow as tf


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
