"""The compiled pieces of training one model: model, per-group optimizers, loss scale, train step.

Shared by the Trainer and `dilbench bench`, so the benchmark times exactly the step a run executes.
Everything is created under the distribution strategy's scope.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from dilbench.config import Config
from dilbench.models import build_model
from dilbench.models.grouped import GroupedModel
from dilbench.schedules import make_step
from dilbench.schedules.common import StepContext, cross_entropy, num_correct
from dilbench.training.optimizers import GroupOptimizer, make_group_optimizers
from dilbench.training.runtime import POLICIES, LossScale


def to_float(images: tf.Tensor) -> tf.Tensor:
    """uint8 images to float32 in [0, 1] (inputs travel as uint8: a quarter of the bytes)."""
    return tf.cast(images, tf.float32) / 255.0


@dataclass
class TrainingStep:
    model: GroupedModel
    optimizers: list[GroupOptimizer]
    loss_scale: LossScale
    lr_scale: tf.Variable  # the learning-rate schedule's factor, set by the Trainer before each batch
    train: tf.types.experimental.GenericFunction  # (uint8 images, int64 labels) -> (mean loss, num correct, images)
    evaluate: tf.types.experimental.GenericFunction  # (uint8 images, int64 labels) -> (summed loss, num correct)

    @classmethod
    def build(cls, config: Config, image_shape: tuple[int, ...], num_classes: int,
              strategy: tf.distribute.Strategy | None = None) -> TrainingStep:
        strategy = strategy or tf.distribute.get_strategy()
        with strategy.scope():
            model = build_model(config.model, tuple(image_shape), num_classes, POLICIES[config.precision], config.seed)
            groups = [[v.value for v in model.group_variables(i)] for i in range(model.num_groups)]
            lr_scale = tf.Variable(1.0, trainable=False, name="lr_scale")
            optimizers = make_group_optimizers(config.optimizer, groups, lr_scale)
            loss_scale = LossScale(config.precision == "float16")
        step = make_step(config.schedule, StepContext(model, optimizers, loss_scale))
        specs = [tf.TensorSpec([None, *image_shape], tf.uint8), tf.TensorSpec([None], tf.int64)]
        train_specs = specs if strategy.num_replicas_in_sync == 1 else None  # else per-replica values

        def replica_step(x, y):
            loss, correct = step(to_float(x), y)
            return loss, correct, tf.shape(y)[0]

        def train(x, y):
            """x, y: a batch, or per-replica parts of the global batch -> global (mean loss, correct, images)."""
            return tuple(strategy.reduce("sum", value, axis=None) for value in strategy.run(replica_step, args=(x, y)))

        def evaluate(x, y):
            logits = model(to_float(x), training=False)
            return cross_entropy(y, logits) * tf.cast(tf.shape(y)[0], tf.float32), num_correct(y, logits)

        return cls(
            model, optimizers, loss_scale, lr_scale,
            train=tf.function(train, input_signature=train_specs, jit_compile=config.train.xla or None, reduce_retracing=True),
            evaluate=tf.function(evaluate, input_signature=specs, jit_compile=config.train.xla or None),
        )
