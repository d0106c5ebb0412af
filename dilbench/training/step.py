"""The compiled pieces of training one model: model, per-group optimizers, loss scale, train step.

Shared by the Trainer and `dilbench bench`, so the benchmark times exactly the step a run executes.
Everything is created under the distribution strategy's scope. Under FreezeOut the step is compiled
once per set of frozen groups (a frozen group is left out of the traced backward pass, so its gradient
work is really skipped); `set_progress` picks the variant for the batch.

Evaluation comes in two forms: `evaluate` runs a whole batch, and `features` (the layer groups on pieces
of a batch, side by side) then `evaluate_features` (the head on the whole batch) split the same work so
that the convolutions run on small pieces; trainer.py's `_eval_batches` says when and why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import tensorflow as tf

from dilbench.config import Config
from dilbench.config.loader import ConfigError
from dilbench.models import build_model
from dilbench.models.grouped import GroupedModel
from dilbench.models.summary import group_flops
from dilbench.optimizers.group import GroupOptimizer, make_group_optimizers
from dilbench.optimizers.loss_scale import LossScale
from dilbench.schedules import batch_plan, flops_per_example, make_step
from dilbench.schedules.common import StepContext, cross_entropy, num_correct
from dilbench.training.compute import epoch_images, training_flops
from dilbench.training.rates import Rates
from dilbench.training.runtime import POLICIES
from dilbench.typed.validate import FieldError


class _VariantTracing(logging.Filter):
    """Each set of frozen groups is traced once, by design; TensorFlow would warn that one function retraces."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "compile_variant" not in record.getMessage()


tf.get_logger().addFilter(_VariantTracing())


def to_float(images: tf.Tensor) -> tf.Tensor:
    """uint8 images to float32 in [0, 1] (inputs travel as uint8: a quarter of the bytes)."""
    return tf.cast(images, tf.float32) / 255.0


@dataclass
class TrainingStep:
    config: Config
    model: GroupedModel
    optimizers: list[GroupOptimizer]
    loss_scale: LossScale
    rates: Rates  # each batch's learning-rate factors and frozen groups
    group_flops: list[int]  # forward FLOPs per example of each group (the cost model's input)
    evaluate: tf.types.experimental.GenericFunction  # (uint8 images, int64 labels) -> (summed loss, num correct)
    # pieces -> (uint8 images of each piece) -> the last group's outputs of all pieces, in order
    compile_features: Callable[[int], tf.types.experimental.GenericFunction]
    evaluate_features: tf.types.experimental.GenericFunction  # (last group's outputs, labels) -> as `evaluate`
    # frozen groups -> the compiled step: (uint8 images, int64 labels) -> (mean loss, num correct, images)
    compile_variant: Callable[[int], tf.types.experimental.GenericFunction]
    frozen: int = 0  # frozen groups of the current batch (FreezeOut)
    variants: dict[int, tf.types.experimental.GenericFunction] = field(default_factory=dict)
    feature_variants: dict[int, tf.types.experimental.GenericFunction] = field(default_factory=dict)
    scales: tuple[float, ...] | None = None  # the learning-rate factors last assigned

    @classmethod
    def build(cls, config: Config, image_shape: tuple[int, ...], num_classes: int,
              strategy: tf.distribute.Strategy | None = None) -> TrainingStep:
        strategy = strategy or tf.distribute.get_strategy()
        with strategy.scope():
            model = build_model(config.model, tuple(image_shape), num_classes, POLICIES[config.precision], config.seed)
            rates = Rates(config, model.num_groups)
            groups = [[v.value for v in model.group_variables(i)] for i in range(model.num_groups)]
            lr_scales = ([tf.Variable(1.0, trainable=False, name=f"lr_scale{i + 1}") for i in range(model.num_groups)]
                         if rates.per_group else None)
            try:
                batch_plan(config.schedule, model.num_groups)  # the schedule fits this model's groups
                optimizers = make_group_optimizers(config.optimizer, groups, lr_scales)
            except FieldError as err:
                raise ConfigError(f"{err.path}: {err.message}") from None
            loss_scale = LossScale(config.precision == "float16")
        specs = [tf.TensorSpec([None, *image_shape], tf.uint8), tf.TensorSpec([None], tf.int64)]
        train_specs = specs if strategy.num_replicas_in_sync == 1 else None  # else per-replica values
        context = StepContext(model, optimizers, loss_scale)

        def compile_variant(frozen: int):
            step = make_step(config.schedule, context, frozen)

            def replica_step(x, y):
                loss, correct = step(to_float(x), y)
                return loss, correct, tf.shape(y)[0]

            def train(x, y):
                """x, y: a batch, or per-replica parts of the global batch -> global (mean loss, correct, images)."""
                return tuple(strategy.reduce("sum", value, axis=None) for value in strategy.run(replica_step, args=(x, y)))

            return tf.function(train, input_signature=train_specs, jit_compile=config.runtime.xla or None, reduce_retracing=True)

        def scored(y, logits):  # (summed loss, num correct) of a batch
            return cross_entropy(y, logits) * tf.cast(tf.shape(y)[0], tf.float32), num_correct(y, logits)

        def evaluate(x, y):
            return scored(y, model(to_float(x), training=False))

        def groups_forward(h):
            for group in model.groups:
                h = group(h, training=False)
            return h

        def evaluate_features(h, y):
            return scored(y, model.logits(h, training=False))

        def compile_features(pieces: int):
            def features(*images):
                """Pieces that depend on nothing of each other, so TensorFlow's executor runs them side by side."""
                return tf.concat([groups_forward(to_float(x)) for x in images], 0)

            return tf.function(features, input_signature=specs[:1] * pieces)

        last = groups_forward(tf.zeros([1, *image_shape]))  # the shape and dtype of what the head takes
        return cls(
            config, model, optimizers, loss_scale, rates, group_flops(model, tuple(image_shape)),
            evaluate=tf.function(evaluate, input_signature=specs, jit_compile=config.runtime.xla or None),
            compile_features=compile_features,
            evaluate_features=tf.function(evaluate_features, input_signature=[
                tf.TensorSpec([None, *last.shape[1:]], last.dtype), specs[1]]),
            compile_variant=compile_variant,
        )

    def set_progress(self, t: float) -> None:
        """Set the learning-rate factors and frozen groups of the batch at training fraction t."""
        rates = self.rates.at(t)
        if rates.scales != self.scales:
            for variable, scale in {id(o.lr_scale): (o.lr_scale, s) for o, s in zip(self.optimizers, rates.scales)}.values():
                variable.assign(scale)
            self.scales = rates.scales
        self.frozen = rates.frozen

    def train(self, x, y):
        """One batch with the step of the current frozen groups (compiled on first use)."""
        if self.frozen not in self.variants:
            self.variants[self.frozen] = self.compile_variant(self.frozen)
        return self.variants[self.frozen](x, y)

    def features(self, *images: tf.Tensor) -> tf.Tensor:
        """The last layer group's outputs of one or more pieces of images, computed side by side (compiled on
        first use for each number of pieces)."""
        if len(images) not in self.feature_variants:
            self.feature_variants[len(images)] = self.compile_features(len(images))
        return self.feature_variants[len(images)](*images)

    def flops_per_example(self, frozen: int = 0) -> float:
        """Training FLOPs per example of one batch with the lowest `frozen` groups frozen (the cost model)."""
        return flops_per_example(self.config.schedule, self.group_flops, frozen)

    def training_flops(self, n: int, batch_size: int, through_epoch: int) -> float:
        """Cumulative training FLOPs of epochs 1..through_epoch of this run over n training images."""
        images = epoch_images(n, batch_size, self.config.augmentation.mode)
        return training_flops(images, self.config.train.epochs, through_epoch, self.flops_per_example, self.rates.frozen)
