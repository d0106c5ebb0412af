"""Per-group optimizers: each layer group owns its slots and step count (DESIGN.md decision 2).

Adam's bias correction therefore follows the group's own number of updates. Updates use TensorFlow's
fused kernels (ResourceApplyAdam, ResourceApplyKerasMomentum), the same ones Keras's optimizers reach.
A group's learning rate is lr x its `optimizer.group_lr` factor (a constant) x its `lr_scale` (the
learning-rate schedule's factor for this batch, set by the Trainer: one variable shared by all groups,
or one per group under FreezeOut).
"""

from __future__ import annotations

import tensorflow as tf

from dilbench.optimizers import AdamConfig, AdamPublishedConfig, SGDConfig
from dilbench.schedules.plan import per_group


class GroupOptimizer(tf.Module):
    """Optimizer state for one variable list, plus `updates`: how many times it was applied."""

    def __init__(self, variables: list[tf.Variable], lr_scale: tf.Variable, name: str, lr_factor: float = 1.0):
        super().__init__(name=name)
        # ONLY_FIRST_REPLICA: under a strategy every replica counts the same update once
        self.updates = tf.Variable(0, dtype=tf.int64, trainable=False, name="updates",
                                   aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.variables_ = list(variables)
        self.lr_scale = lr_scale  # the learning-rate schedule's factor for this batch
        self.lr_factor = lr_factor  # optimizer.group_lr: a constant of the traced step

    def lr(self, base: float) -> tf.Tensor:
        return (base * self.lr_factor) * self.lr_scale

    def _slots(self, name: str) -> list[tf.Variable]:
        return [tf.Variable(tf.zeros_like(v), trainable=False, name=f"{name}_{i}") for i, v in enumerate(self.variables_)]

    def apply(self, grads: list[tf.Tensor]) -> None:
        raise NotImplementedError


class Adam(GroupOptimizer):
    def __init__(self, cfg: AdamConfig, variables: list[tf.Variable], lr_scale: tf.Variable, name: str, lr_factor: float = 1.0):
        super().__init__(variables, lr_scale, name, lr_factor)
        self.cfg = cfg
        self.m = self._slots("m")
        self.v = self._slots("v")

    def apply(self, grads: list[tf.Tensor]) -> None:
        step = tf.cast(self.updates.assign_add(1), tf.float32)
        beta1_power = tf.pow(tf.constant(self.cfg.beta1, tf.float32), step)
        beta2_power = tf.pow(tf.constant(self.cfg.beta2, tf.float32), step)
        lr = self.lr(self.cfg.lr)
        for var, m, v, grad in zip(self.variables_, self.m, self.v, grads):
            tf.raw_ops.ResourceApplyAdam(
                var=var.handle, m=m.handle, v=v.handle, beta1_power=beta1_power, beta2_power=beta2_power,
                lr=lr, beta1=self.cfg.beta1, beta2=self.cfg.beta2, epsilon=self.cfg.epsilon,
                grad=tf.cast(grad, var.dtype),
            )


class AdamPublished(Adam):
    """The hand-written Adam of the published unfair-backprop scripts, kept as a control:

        m <- beta1 m + (1 - beta1) g;  v <- beta2 v + (1 - beta2) g^2
        w <- w - lr * (m / (1 - beta1)) / (sqrt(v / (1 - beta2)) + epsilon)

    The bias correction is a constant: Adam's at the first step, where the two agree. Adam's factor
    sqrt(1 - beta2^t)/(1 - beta1^t) then falls to 1, this one stays sqrt(1 - beta2)/(1 - beta1) (3.16 with
    beta1 = beta2 = 0.9), so at steady state each step is about 3.2x Adam's at the same lr.
    """

    def apply(self, grads: list[tf.Tensor]) -> None:
        self.updates.assign_add(1)
        cfg = self.cfg
        lr = self.lr(cfg.lr)
        for var, m, v, grad in zip(self.variables_, self.m, self.v, grads):
            grad = tf.cast(grad, var.dtype)
            m.assign(cfg.beta1 * m + (1.0 - cfg.beta1) * grad)
            v.assign(cfg.beta2 * v + (1.0 - cfg.beta2) * tf.square(grad))
            var.assign_sub(lr * (m / (1.0 - cfg.beta1)) / (tf.sqrt(v / (1.0 - cfg.beta2)) + cfg.epsilon))


class SGD(GroupOptimizer):
    """Plain SGD, or Keras-style momentum: velocity = momentum*velocity - lr*grad; var += velocity."""

    def __init__(self, cfg: SGDConfig, variables: list[tf.Variable], lr_scale: tf.Variable, name: str, lr_factor: float = 1.0):
        super().__init__(variables, lr_scale, name, lr_factor)
        self.cfg = cfg
        self.velocity = self._slots("velocity") if cfg.momentum else []

    def apply(self, grads: list[tf.Tensor]) -> None:
        self.updates.assign_add(1)
        lr = self.lr(self.cfg.lr)
        for i, (var, grad) in enumerate(zip(self.variables_, grads)):
            grad = tf.cast(grad, var.dtype)
            if self.cfg.momentum:
                tf.raw_ops.ResourceApplyKerasMomentum(
                    var=var.handle, accum=self.velocity[i].handle, lr=lr, grad=grad,
                    momentum=self.cfg.momentum, use_nesterov=self.cfg.nesterov,
                )
            else:
                tf.raw_ops.ResourceApplyGradientDescent(var=var.handle, alpha=lr, delta=grad)


OPTIMIZERS = {"adam": Adam, "adam_published": AdamPublished, "sgd": SGD}


def make_group_optimizers(
    cfg: AdamConfig | AdamPublishedConfig | SGDConfig, group_variables: list[list[tf.Variable]],
    lr_scales: list[tf.Variable] | None = None,
) -> list[GroupOptimizer]:
    """One optimizer per layer group over that group's variables, with its `group_lr` factor and its
    `lr_scales` entry (default: one variable shared by all groups)."""
    scales = [tf.Variable(1.0, trainable=False, name="lr_scale")] * len(group_variables) if lr_scales is None else lr_scales
    factors = per_group(cfg.group_lr, len(group_variables), "optimizer.group_lr")
    return [OPTIMIZERS[cfg.name](cfg, variables, scales[i], name=f"group{i + 1}",
                                 lr_factor=factors[i])
            for i, variables in enumerate(group_variables)]
