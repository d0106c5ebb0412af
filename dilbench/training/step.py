"""The compiled pieces of training one model: model, per-group optimizers, loss scale, train step, evaluation.

Shared by the Trainer and `dilbench bench`, so the benchmark times exactly the step a run executes.
Everything is created under the distribution strategy's scope. Under FreezeOut the step is compiled
once per set of frozen groups (a frozen group is left out of the traced backward pass, so its gradient
work is really skipped); `set_progress` picks the variant for the batch.

Evaluation has one path: the layer groups run on one or more pieces of a batch (side by side, so that on a
CPU small convolutions keep both cores busy), then the head on the whole batch; a batch in one piece is
the same path with one piece. trainer.py's `_eval_batches` says how a batch is cut and why the numbers
do not depend on it.
"""

from __future__ import annotations

import logging
from typing import Any

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

Function = Any  # a tf.function (tf.types.experimental.GenericFunction, untyped for mypy)


class _VariantTracing(logging.Filter):
    """Each set of frozen groups is traced once, by design; TensorFlow would warn that one function retraces."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "train_step" not in record.getMessage()


tf.get_logger().addFilter(_VariantTracing())


def to_float(images: tf.Tensor) -> tf.Tensor:
    """uint8 images to float32 in [0, 1] (inputs travel as uint8: a quarter of the bytes)."""
    return tf.cast(images, tf.float32) / 255.0


class TrainingStep:
    """One model with its optimizers and compiled functions: `train(x, y)` one batch, `evaluate(pieces, y)`.

    Built in order by the methods below (model, optimizers, then the functions compiled on first use),
    each under the strategy's scope; `config` and `image_shape` say what to build.
    """

    def __init__(self, config: Config, image_shape: tuple[int, ...], num_classes: int,
                 strategy: tf.distribute.Strategy | None = None):
        self.config = config
        self.image_shape = tuple(image_shape)
        self.strategy = strategy or tf.distribute.get_strategy()
        with self.strategy.scope():
            self.model = self.build_model(num_classes)
            self.rates = Rates(config, self.model.num_groups)  # each batch's learning-rate factors and frozen groups
            self.optimizers = self.build_optimizers()
            self.loss_scale = LossScale(config.precision == "float16")
        self.group_flops = group_flops(self.model, self.image_shape)  # forward FLOPs per example of each group
        self.frozen = 0  # frozen groups of the current batch (FreezeOut)
        self.scales: tuple[float, ...] | None = None  # the learning-rate factors last assigned
        self._train_steps: dict[int, Function] = {}  # frozen groups -> compiled step
        self._feature_functions: dict[int, Function] = {}  # pieces -> compiled group forward passes
        self._head: Function | None = None

    @classmethod
    def build(cls, config: Config, image_shape: tuple[int, ...], num_classes: int,
              strategy: tf.distribute.Strategy | None = None) -> TrainingStep:
        return cls(config, image_shape, num_classes, strategy)

    # ---- what is built, in order --------------------------------------------------------------------------
    def build_model(self, num_classes: int) -> GroupedModel:
        return build_model(self.config.model, self.image_shape, num_classes, POLICIES[self.config.precision], self.config.seed)

    def build_optimizers(self) -> list[GroupOptimizer]:
        """One optimizer per layer group, with a learning-rate factor variable per group under FreezeOut."""
        groups = [[v.value for v in self.model.group_variables(i)] for i in range(self.model.num_groups)]
        lr_scales = ([tf.Variable(1.0, trainable=False, name=f"lr_scale{i + 1}") for i in range(self.model.num_groups)]
                     if self.rates.per_group else None)
        try:
            batch_plan(self.config.schedule, self.model.num_groups)  # the schedule fits this model's groups
            return make_group_optimizers(self.config.optimizer, groups, lr_scales)
        except FieldError as err:
            raise ConfigError(f"{err.path}: {err.message}") from None

    def train_step(self, frozen: int) -> Function:
        """The compiled step with the lowest `frozen` groups frozen: (uint8 images, int64 labels), or per-replica
        parts of the global batch -> global (mean loss, num correct, images)."""
        step = make_step(self.config.schedule, StepContext(self.model, self.optimizers, self.loss_scale), frozen)
        strategy = self.strategy

        def replica_step(x, y):
            loss, correct = step(to_float(x), y)
            return loss, correct, tf.shape(y)[0]

        def train(x, y):
            return tuple(strategy.reduce("sum", value, axis=None) for value in strategy.run(replica_step, args=(x, y)))

        specs = self._specs() if strategy.num_replicas_in_sync == 1 else None  # else per-replica values
        return tf.function(train, input_signature=specs, jit_compile=self.config.runtime.xla or None, reduce_retracing=True)

    def feature_function(self, pieces: int) -> Function:
        """The layer groups on `pieces` pieces of images, computed side by side (they depend on nothing of
        each other, so TensorFlow's executor runs them at once) -> the last group's outputs, in order."""
        def features(*images):
            outputs = []
            for x in images:
                h = to_float(x)
                for group in self.model.groups:
                    h = group(h, training=False)
                outputs.append(h)
            return tf.concat(outputs, 0)

        return tf.function(features, input_signature=self._specs()[:1] * pieces, jit_compile=self.config.runtime.xla or None)

    def head_function(self) -> Function:
        """The head on a whole batch's features -> (summed loss, num correct)."""
        last = self.feature_function(1)(tf.zeros([1, *self.image_shape], tf.uint8))  # what the head takes

        def head(h, y):
            logits = self.model.logits(h, training=False)
            return cross_entropy(y, logits) * tf.cast(tf.shape(y)[0], tf.float32), num_correct(y, logits)

        return tf.function(head, input_signature=[tf.TensorSpec([None, *last.shape[1:]], last.dtype), self._specs()[1]],
                           jit_compile=self.config.runtime.xla or None)

    def _specs(self) -> list[tf.TensorSpec]:
        return [tf.TensorSpec([None, *self.image_shape], tf.uint8), tf.TensorSpec([None], tf.int64)]

    # ---- use ----------------------------------------------------------------------------------------------
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
        if self.frozen not in self._train_steps:
            self._train_steps[self.frozen] = self.train_step(self.frozen)
        return self._train_steps[self.frozen](x, y)

    def evaluate(self, calls: list[tuple[tf.Tensor, ...]], y: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(summed loss, num correct) of one evaluation batch: its images as calls of one or more pieces each
        (each call's pieces side by side), then the head on the whole batch."""
        features = [self._features(len(call))(*call) for call in calls]
        if self._head is None:
            self._head = self.head_function()
        return self._head(features[0] if len(features) == 1 else tf.concat(features, 0), y)

    def _features(self, pieces: int) -> Function:
        if pieces not in self._feature_functions:
            self._feature_functions[pieces] = self.feature_function(pieces)
        return self._feature_functions[pieces]

    def compiled_functions(self) -> list[Function]:
        """Every function compiled so far (tests inspect their traces)."""
        return [*self._train_steps.values(), *self._feature_functions.values(), *([self._head] if self._head else [])]

    def flops_per_example(self, frozen: int = 0) -> float:
        """Training FLOPs per example of one batch with the lowest `frozen` groups frozen (the cost model)."""
        return flops_per_example(self.config.schedule, self.group_flops, frozen)

    def training_flops(self, n: int, batch_size: int, through_epoch: int) -> float:
        """Cumulative training FLOPs of epochs 1..through_epoch of this run over n training images."""
        images = epoch_images(n, batch_size, self.config.augmentation.mode)
        return training_flops(images, self.config.train.epochs, through_epoch, self.flops_per_example, self.rates.frozen)
