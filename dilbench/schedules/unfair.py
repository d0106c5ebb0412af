"""The unfair backprop schedules: within one batch, some layer groups are updated more often than others.

With L groups (1-based in the comments, 0-based in the code):

- `unfair_back`: one forward pass caches the input of every group. Sub-step k = 1..L runs from the
  cached input of group L-k+1 to the loss, backprops through groups L-k+1..L only and updates them.
  Groups below are unchanged during the batch, so their cached activations stay valid. Sub-step 1
  backprops the first forward pass itself, so group L is not computed twice. Group L is updated L
  times per batch, group 1 once.
- `unfair_front`: sub-step k = 1..L runs a full forward pass, backprops to group 1 and updates groups
  1..k only. Group 1 is updated L times, group L once. Gradients are requested only for groups 1..k,
  so the weight gradients of groups above k are never computed.

Every group owns its optimizer state, so Adam's bias correction follows the group's own update count.
The batch's reported loss and accuracy are those of its first forward pass, before any update, as for
`standard`.
"""

from __future__ import annotations

import tensorflow as tf

from dilbench.schedules.common import StepContext, cross_entropy, num_correct


def make_back_step(ctx: StepContext):
    model, last = ctx.model, ctx.num_groups - 1

    def step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            outputs = model.group_outputs(x, training=True)  # outputs[i] is the input of group i
            logits = model.logits(outputs[-1], training=True)
            loss = cross_entropy(y, logits)
            scaled = ctx.loss_scale.scaled(loss)
        ctx.apply_gradients(tape.gradient(scaled, ctx.flat_variables([last])), [last])
        for start in range(last - 1, -1, -1):  # sub-step k = 2..L starts at group L-k+1
            groups = range(start, ctx.num_groups)
            with tf.GradientTape() as tape:
                sub_loss = cross_entropy(y, model.forward_from(start, tf.stop_gradient(outputs[start]), training=True))
                scaled = ctx.loss_scale.scaled(sub_loss)
            ctx.apply_gradients(tape.gradient(scaled, ctx.flat_variables(groups)), groups)
        return loss, num_correct(y, logits)

    return step


def make_front_step(ctx: StepContext):
    model = ctx.model

    def step(x: tf.Tensor, y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        first = None
        for k in range(1, ctx.num_groups + 1):
            groups = range(k)
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = cross_entropy(y, logits)
                scaled = ctx.loss_scale.scaled(loss)
            if first is None:
                first = (loss, num_correct(y, logits))
            ctx.apply_gradients(tape.gradient(scaled, ctx.flat_variables(groups)), groups)
        return first

    return step
