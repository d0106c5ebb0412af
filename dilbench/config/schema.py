"""The config schema: frozen dataclasses whose fields, types and defaults are every valid YAML key.

Model and schedule sections are unions over their registries, told apart by `name`, so registering a
model family also registers its keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

import dilbench.augment.ops as augment_ops  # a module import: ops.py imports config.validate (a cycle)
from dilbench.config.checks import in_unit_interval, non_negative, positive
from dilbench.config.validate import FieldError
from dilbench.models import MODELS
from dilbench.schedules import ScheduleConfig
from dilbench.schedules.plan import Selector, check_group_values

ModelConfig = Union[tuple(entry.config for entry in MODELS.values())]  # type: ignore[valid-type]
# per-group learning-rate factors: a list (one per group, bottom to top) or {group or 'A..B': factor}
GroupLr = Union[tuple[float, ...], dict[Selector, float], None]


@dataclass(frozen=True)
class DataConfig:
    dataset: Literal["mnist", "cifar10", "imagefolder", "mnist_bundled"] = "mnist"
    root: str | None = None  # file or directory; then $DILBENCH_DATA, then Keras's cache
    train_subset: int | None = None
    test_subset: int | None = None
    validation: float = 0.0  # fraction (<1) or count (>=1) of training images held out

    def __post_init__(self) -> None:
        positive(self, "train_subset", "test_subset")
        non_negative(self, "validation")
        if self.validation >= 1 and self.validation != int(self.validation):
            raise FieldError("validation", f"a fraction below 1 or a whole count, got {self.validation}")


@dataclass(frozen=True)
class AdamConfig:
    name: Literal["adam"] = "adam"
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    group_lr: GroupLr = None  # each group's lr = lr x its factor (README: Schedules)

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
    name: Literal["sgd"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False
    group_lr: GroupLr = None  # each group's lr = lr x its factor (README: Schedules)

    def __post_init__(self) -> None:
        positive(self, "lr")
        in_unit_interval(self, "momentum")
        check_group_values(self.group_lr, "group_lr")


@dataclass(frozen=True)
class AugmentationConfig:
    """imgaug operations applied to training batches (README: Augmentation; ops in dilbench/augment/ops.py)."""

    mode: Literal["none", "replace", "paired"] = "none"  # replace: augment every image; paired: originals + copies
    random_order: bool = False  # apply the top-level ops in a random order per image
    ops: tuple[augment_ops.Op, ...] = ()

    def __post_init__(self) -> None:
        if self.mode != "none" and not self.ops:
            raise FieldError("ops", f"mode {self.mode!r} needs at least one operation, e.g. ops: [{{fliplr: {{p: 0.5}}}}]")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    eval: Literal["test", "validation"] = "test"  # the split evaluated after every epoch
    eval_batch_size: int = 500
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: decay to 0 over all batches
    xla: bool = False  # compile the training and evaluation steps with XLA (jit_compile)
    # none: one device (TensorFlow's choice: a GPU if there is one); mirrored: MirroredStrategy over
    # `devices` (default: every local GPU); multi_worker: MultiWorkerMirroredStrategy from $TF_CONFIG
    distribute: Literal["none", "mirrored", "multi_worker"] = "none"
    devices: tuple[str, ...] = ()  # e.g. [GPU:0, GPU:1]; [CPU:0, CPU:1] splits the CPU into logical devices
    batch_size_is: Literal["global", "per_replica"] = "global"  # what batch_size counts

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
    name: str = "run"
    seed: int = 0
    deterministic: bool = False  # TensorFlow op determinism: bit-equal reruns and resumes
    precision: Literal["float32", "bfloat16", "float16"] = "float32"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=lambda: next(iter(MODELS.values())).config())
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    optimizer: Union[AdamConfig, AdamPublishedConfig, SGDConfig] = field(default_factory=AdamConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
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
