"""The config schema: frozen dataclasses whose fields, types and defaults are every valid YAML key.

Model and schedule sections are unions over their registries, told apart by `name`, so registering a
model family also registers its keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Union

from dilbench.config.checks import in_unit_interval, non_negative, positive
from dilbench.config.validate import FieldError
from dilbench.models import MODELS
from dilbench.schedules import SCHEDULES

ModelConfig = Union[tuple(entry.config for entry in MODELS.values())]  # type: ignore[valid-type]
ScheduleConfig = Union[tuple(entry.config for entry in SCHEDULES.values())]  # type: ignore[valid-type]


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

    def __post_init__(self) -> None:
        positive(self, "lr", "epsilon")
        in_unit_interval(self, "beta1", "beta2")


@dataclass(frozen=True)
class SGDConfig:
    name: Literal["sgd"] = "sgd"
    lr: float = 0.01
    momentum: float = 0.0
    nesterov: bool = False

    def __post_init__(self) -> None:
        positive(self, "lr")
        in_unit_interval(self, "momentum")


@dataclass(frozen=True)
class AugmentationConfig:
    mode: Literal["none"] = "none"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    eval: Literal["test", "validation"] = "test"  # the split evaluated after every epoch
    eval_batch_size: int = 500
    lr_schedule: Literal["constant", "cosine"] = "constant"  # cosine: decay to 0 over all batches
    xla: bool = False  # compile the training and evaluation steps with XLA (jit_compile)

    def __post_init__(self) -> None:
        positive(self, "epochs", "batch_size", "eval_batch_size")


@dataclass(frozen=True)
class Config:
    name: str = "run"
    seed: int = 0
    deterministic: bool = False  # TensorFlow op determinism: bit-equal reruns and resumes
    precision: Literal["float32", "bfloat16", "float16"] = "float32"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=lambda: next(iter(MODELS.values())).config())
    schedule: ScheduleConfig = field(default_factory=lambda: next(iter(SCHEDULES.values())).config())
    optimizer: Union[AdamConfig, SGDConfig] = field(default_factory=AdamConfig)
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        if not self.name or any(c in self.name for c in "/\\ \t\n"):
            raise FieldError("name", f"must be a non-empty name without slashes or spaces, got {self.name!r}")
        if self.train.eval == "validation" and not self.data.validation:
            raise FieldError("train.eval", "is 'validation' but data.validation is 0; set data.validation (e.g. 0.1)")
