"""The one training step every schedule runs: a batch's sub-steps, as plan.py derived them.

The batch's first forward pass runs every group, caches each group's input and gives the batch's
reported loss and accuracy (before any update, for every schedule). Then, per sub-step:

- `first`: gradients from that first pass itself (nothing was updated yet), so it is not recomputed;
- `cached`: forward from the cached input of its lowest group (nothing below has changed);
- `fresh`: the groups below run again, unrecorded (they changed), then the pass continues as above.

Every pass stops the gradient at the input of the sub-step's lowest group, so no input gradient is
computed below it, and asks for the gradients of the sub-step's groups only, so no weight gradient is
computed for groups it does not update. Frozen groups (FreezeOut) run in inference mode, as in the
paper's code (batch norm on its moving statistics, no dropout), and are never updated.

Every group owns its optimizer state, so Adam's bias correction follows the group's own update count.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from dilbench.schedules.common import StepContext, cross_entropy, num_correct
from dilbench.schedules.plan import SubStep


def make_step(ctx: StepContext, steps: Sequence[SubStep], frozen: int = 0):
    model = ctx.model
    first_start = steps[0].start if steps else model.num_groups

    def run_groups(h: tf.Tensor, start: int, stop: int) -> tf.Tensor:
        for i in range(start, stop):
            h = model.groups[i](h, training=i >= frozen)
        return h

    def step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        inputs = [x]  # inputs[i]: the input of group i in the first pass; inputs[-1]: the features
        with tf.GradientTape() as tape:
            h = x
            for i in range(model.num_groups):
                if i == first_start and i > 0:
                    h = tf.stop_gradient(h)  # the first sub-step backprops no further down
                h = run_groups(h, i, i + 1)
                inputs.append(h)
            logits = model.logits(h, training=True)
            loss = cross_entropy(y, logits)
            scaled = ctx.loss_scale.scaled(loss)
        for sub in steps:
            if sub.source == "first":
                grads = tape.gradient(scaled, ctx.flat_variables(sub.groups))
            else:
                h = inputs[sub.start] if sub.source == "cached" else run_groups(x, 0, sub.start)
                h = tf.stop_gradient(h) if sub.start > 0 else h
                with tf.GradientTape() as sub_tape:
                    sub_loss = cross_entropy(y, model.logits(run_groups(h, sub.start, model.num_groups), training=True))
                    sub_scaled = ctx.loss_scale.scaled(sub_loss)
                grads = sub_tape.gradient(sub_scaled, ctx.flat_variables(sub.groups))
            ctx.apply_gradients(grads, sub.groups)
        return loss, num_correct(y, logits)

    return step
