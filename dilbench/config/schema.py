"""The config schema: frozen dataclasses whose fields, types, defaults and descriptions are every valid YAML key.

Model and schedule sections are unions over their registries, told apart by `name`, so registering a
model family also registers its keys. `dilbench schema` turns these dataclasses into a JSON Schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

import dilbench.augment.ops as augment_ops  # a module import: ops.py imports config.validate (a cycle)
from dilbench.config.checks import in_unit_interval, non_negative, positive
from dilbench.config.fields import key
from dilbench.config.validate import FieldError
from dilbench.models import MODELS
from dilbench.schedules import ScheduleConfig
from dilbench.schedules.plan import Selector, check_group_values

ModelConfig = Union[tuple(entry.config for entry in MODELS.values())]  # type: ignore[valid-type]
GroupLr = Union[tuple[float, ...], dict[Selector, float], None]
GROUP_LR_HELP = ("per-group learning-rate factors (each group's lr = lr x factor, >= 0): a list, one per group from "
                 "the bottom, or {group: factor} with groups 1-based, negative from the top, 'A..B' or 'all'")


@dataclass(frozen=True)
class DataConfig:
    """The data set and which part of it a run uses (README: Data)."""

    dataset: Literal["mnist", "cifar10", "imagefolder", "mnist_bundled"] = key(
        "mnist", "the data set: mnist, cifar10, imagefolder, or mnist_bundled (the MNIST sample shipped with dilbench)")
    root: str | None = key(None, "file or directory holding the data; if null, $DILBENCH_DATA, then Keras's cache")
    train_subset: int | None = key(None, "use only this many training images (a seeded random subset); null: all")
    test_subset: int | None = key(None, "use only this many test images; null: all")
    validation: float = key(0.0, "hold out this fraction (<1) or count (>=1) of the training images as a validation split")

    def __post_init__(self) -> None:
        positive(self, "train_subset", "test_subset")
        non_negative(self, "validation")
        if self.validation >= 1 and self.validation != int(self.validation):
            raise FieldError("validation", f"a fraction below 1 or a whole count, got {self.validation}")


@dataclass(frozen=True)
class AdamConfig:
    """Adam; every layer group has its own moments and step count."""

    name: Literal["adam"] = "adam"
    lr: float = key(1e-3, "learning rate (> 0)")
    beta1: float = key(0.9, "decay of the first-moment estimate, in [0, 1)")
    beta2: float = key(0.999, "decay of the second-moment estimate, in [0, 1)")
    epsilon: float = key(1e-7, "added to the denominator for numerical stability (> 0)")
    group_lr: GroupLr = key(None, GROUP_LR_HELP)

    def __post_init__(self) -> None:
        positive(self, "lr", "epsilon")
        in_unit_interval(self, "beta1", "beta2")
        check_group_values(self.group_lr, "group_lr")


@dataclass(frozen=True)
class AdamPublishedConfig(AdamConfig):
    """The published unfair-backprop scripts' hand-written Adam, as a control: a constant bias correction
    (m/(1-beta1), v/(1-beta2) at every step) and epsilon added after it (README: Schedules)."""

    name: Literal["adam_published"] = "adam_published"  # type: ignore[assignment]


@dataclass(frozen=True)
class SGDConfig:
    """Stochastic gradient descent with optional momentum (Keras convention)."""

    name: Literal["sgd"] = "sgd"
    lr: float = key(0.01, "learning rate (> 0)")
    momentum: float = key(0.0, "momentum, in [0, 1) (Keras convention)")
    nesterov: bool = key(False, "use Nesterov momentum")
    group_lr: GroupLr = key(None, GROUP_LR_HELP)

    def __post_init__(self) -> None:
        positive(self, "lr")
        in_unit_interval(self, "momentum")
        check_group_values(self.group_lr, "group_lr")


@dataclass(frozen=True)
class AugmentationConfig:
    """imgaug operations applied to training batches (README: Augmentation; ops in dilbench/augment/ops.py)."""

    mode: Literal["none", "replace", "paired"] = key(
        "none", "none; replace: every training image is augmented in place; paired: each batch is half originals "
                "plus their augmented copies (batch_size must be even)")
    random_order: bool = key(False, "apply the top-level ops in a random order per image")
    ops: tuple[augment_ops.Op, ...] = key((), "imgaug operations, each a one-key mapping such as {fliplr: {p: 0.5}}, "
                                              "or an operation's name alone for its defaults")

    def __post_init__(self) -> None:
        if self.mode != "none" and not self.ops:
            raise FieldError("ops", f"mode {self.mode!r} needs at least one operation, e.g. ops: [{{fliplr: {{p: 0.5}}}}]")


@dataclass(frozen=True)
class TrainConfig:
    """How long and how a run trains (README: Training, Distribution)."""

    epochs: int = key(10, "epochs to train")
    batch_size: int = key(64, "training batch size: the global batch unless batch_size_is: per_replica")
    eval: Literal["test", "validation"] = key(
        "test", "split evaluated after every epoch: test, or validation (needs data.validation)")
    eval_batch_size: int = key(500, "evaluation batch size")
    lr_schedule: Literal["constant", "cosine"] = key(
        "constant", "constant, or cosine: the learning rate decays to 0 over all batches of the run")
    xla: bool = key(False, "compile the training and evaluation steps with XLA (one device only)")
    distribute: Literal["none", "mirrored", "multi_worker"] = key(
        "none", "none: one device (a GPU if TensorFlow sees one); mirrored: MirroredStrategy over devices "
                "(default: every local GPU); multi_worker: MultiWorkerMirroredStrategy from $TF_CONFIG")
    devices: tuple[str, ...] = key((), "devices for mirrored (default: every local GPU), or the one device for none, "
                                       "e.g. [GPU:0, GPU:1]; [CPU:0, CPU:1] splits the CPU into logical devices")
    batch_size_is: Literal["global", "per_replica"] = key(
        "global", "global: batch_size is split evenly across replicas; per_replica: each replica's, "
                  "so the global batch is batch_size x replicas")

    def __post_init__(self) -> None:
        positive(self, "epochs", "batch_size", "eval_batch_size")
        for i, device in enumerate(self.devices):
            kind, _, index = device.upper().partition(":")
            if kind not in ("CPU", "GPU") or not index.isdigit():
                raise FieldError(f"devices[{i}]", f"expected a device like GPU:0 or CPU:1, got {device!r}")
        if self.distribute == "none" and len(self.devices) > 1:
            raise FieldError("devices", f"lists {len(self.devices)} devices but distribute is none; set distribute: mirrored")
        if self.xla and self.distribute != "none":
            raise FieldError("xla", "XLA compilation is supported on one device only; set distribute: none or xla: false")


@dataclass(frozen=True)
class Config:
    """A dilbench run config: every key is optional and defaults as shown (README: Config)."""

    name: str = key("run", "run name, the prefix of the run directory (no slashes or spaces)")
    seed: int = key(0, "seeds Python, NumPy, TensorFlow, weight init, the per-epoch shuffle and augmentation (>= 0)")
    deterministic: bool = key(False, "TensorFlow op determinism: bit-equal reruns and resumes (slower)")
    precision: Literal["float32", "bfloat16", "float16"] = key(
        "float32", "float32, or bfloat16 or float16 mixed precision (float16 with dynamic loss scaling)")
    data: DataConfig = key(help="the data set and which part of it to use", factory=DataConfig)
    model: ModelConfig = key(help="the model family (name) and its keys; `model: NAME` is short for {name: NAME}",
                             factory=lambda: next(iter(MODELS.values())).config())
    schedule: ScheduleConfig = key(help="the backprop schedule: a named list of sub-steps or your own (substeps), "
                                        "and FreezeOut; `schedule: standard` is short for {name: standard}",
                                   factory=ScheduleConfig)
    optimizer: Union[AdamConfig, AdamPublishedConfig, SGDConfig] = key(
        help="adam, adam_published or sgd and its parameters; every layer group has its own optimizer state and step count",
        factory=AdamConfig)
    augmentation: AugmentationConfig = key(help="imgaug augmentation of the training images", factory=AugmentationConfig)
    train: TrainConfig = key(help="epochs, batches, evaluation, learning-rate schedule and devices", factory=TrainConfig)

    def __post_init__(self) -> None:
        non_negative(self, "seed")
        if not self.name or any(c in self.name for c in "/\\ \t\n"):
            raise FieldError("name", f"must be a non-empty name without slashes or spaces, got {self.name!r}")
        if self.augmentation.mode == "paired" and self.train.batch_size % 2:
            raise FieldError("train.batch_size", f"must be even with augmentation.mode: paired (half originals, half "
                                                 f"their augmented copies), got {self.train.batch_size}")
        if self.schedule.freezeout and self.train.lr_schedule != "constant":
            raise FieldError("train.lr_schedule", f"is {self.train.lr_schedule!r}, but schedule.freezeout anneals every group's "
                                                  "learning rate itself (a cosine to zero at its freezing point); set constant")
        if self.train.eval == "validation" and not self.data.validation:
            raise FieldError("train.eval", "is 'validation' but data.validation is 0; set data.validation (e.g. 0.1)")
