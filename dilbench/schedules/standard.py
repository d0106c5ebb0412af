"""The standard schedule: one forward and backward pass, every layer group updated once per batch."""

from __future__ import annotations

import tensorflow as tf

from dilbench.schedules.common import StepContext, cross_entropy, num_correct


def make_step(ctx: StepContext):
    variables = ctx.flat_variables()

    def step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            logits = ctx.model(x, training=True)
            loss = cross_entropy(y, logits)
            scaled = ctx.loss_scale.scaled(loss)
        grads = tape.gradient(scaled, variables)
        ctx.apply_gradients(grads, range(ctx.num_groups))
        return loss, num_correct(y, logits)

    return step
