"""The config schema: frozen dataclasses whose fields, types, defaults and descriptions are every valid YAML key.

Model and schedule sections are unions over their registries, told apart by `name`, so registering a
model family also registers its keys. `dilbench schema` turns these dataclasses into a JSON Schema.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal, Union

from dilbench.augment.config import AugmentationConfig
from dilbench.data.config import DataConfig
from dilbench.models import MODELS
from dilbench.optimizers import AdamConfig, OptimizerConfig
from dilbench.schedules import ScheduleConfig
from dilbench.typed.checks import non_negative, positive
from dilbench.typed.fields import key
from dilbench.typed.validate import FieldError


@dataclass(frozen=True)
class TrainConfig:
    """How long and on what batches a run trains (docs/guides/training.md)."""

    epochs: int = key(10, "epochs to train")
    batch_size: int = key(64, "training batch size: the global batch unless batch_size_is: per_replica")
    eval: Literal["test", "validation"] = key(
        "test", "split evaluated after every epoch: test, or validation (needs data.validation)")
    lr_schedule: Literal["constant", "cosine"] = key(
        "constant", "constant, or cosine: the learning rate decays to 0 over all batches of the run")
    batch_size_is: Literal["global", "per_replica"] = key(
        "global", "global: batch_size is split evenly across replicas; per_replica: each replica's, "
                  "so the global batch is batch_size x replicas (a resume must keep the global batch)")

    def __post_init__(self) -> None:
        positive(self, "epochs", "batch_size")


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|min|m|h)\s*$")
_SECONDS = {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}


def checkpoint_interval(every: int | str | None) -> tuple[int | None, float | None]:
    """`runtime.checkpoint_every` as (batches, seconds), one of them set, or neither (null)."""
    if every is None:
        return None, None
    if isinstance(every, int):
        if every <= 0:
            raise FieldError("checkpoint_every", f"must be a positive number of batches, got {every}")
        return every, None
    match = _DURATION.match(every)
    if not match or float(match.group(1)) <= 0:
        raise FieldError("checkpoint_every", f"expected a number of batches or a duration like 30s, 15min or 2h, got {every!r}")
    return None, float(match.group(1)) * _SECONDS[match.group(2)]


@dataclass(frozen=True)
class RuntimeConfig:
    """How a run executes, not what it computes: devices, distribution, compilation, evaluation batches and
    op determinism change at most the rounding, so `dilbench train --resume RUN --set runtime.KEY=...` may
    change them (docs/guides/configs.md)."""

    distribute: Literal["none", "mirrored", "multi_worker"] = key(
        "none", "none: one device (a GPU if TensorFlow sees one); mirrored: MirroredStrategy over devices "
                "(default: every local GPU); multi_worker: MultiWorkerMirroredStrategy from $TF_CONFIG or the Slurm step")
    devices: tuple[str, ...] = key((), "devices for mirrored (default: every local GPU), or the one device for none, "
                                       "e.g. [GPU:0, GPU:1]; [CPU:0, CPU:1] splits the CPU into logical devices")
    xla: bool = key(False, "compile the training and evaluation steps with XLA (one device only)")
    eval_batch_size: int = key(500, "evaluation batch size")
    deterministic: bool = key(False, "TensorFlow op determinism: bit-equal reruns and resumes on the same devices (slower)")
    checkpoint_every: Union[int, str, None] = key(
        "15min", "also save checkpoints/latest inside an epoch: every N batches (a number), or every so long "
                 "('30s', '15min', '2h'); null: only at epoch ends. A killed run resumes from the last one")

    def __post_init__(self) -> None:
        positive(self, "eval_batch_size")
        checkpoint_interval(self.checkpoint_every)
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
    """A dilbench run config: every key is optional and defaults as shown (docs/guides/configs.md)."""

    name: str = key("run", "run name, the prefix of the run directory (no slashes or spaces)")
    seed: int = key(0, "seeds Python, NumPy, TensorFlow, weight init, the per-epoch shuffle and augmentation (>= 0)")
    precision: Literal["float32", "bfloat16", "float16"] = key(
        "float32", "float32, or bfloat16 or float16 mixed precision (float16 with dynamic loss scaling)")
    data: DataConfig = key(help="the data set and which part of it to use", factory=DataConfig)
    # Evaluated when validation reads it (typing.get_type_hints), so it is the union of the models registered by then.
    model: Union[tuple(entry.config for entry in MODELS.values())] = key(  # type: ignore[valid-type]
                             help="the model family (name) and its keys; `model: NAME` is short for {name: NAME}",
                             factory=lambda: next(iter(MODELS.values())).config())
    schedule: ScheduleConfig = key(help="the backprop schedule: a named list of sub-steps or your own (substeps), "
                                        "and FreezeOut; `schedule: standard` is short for {name: standard}",
                                   factory=ScheduleConfig)
    optimizer: OptimizerConfig = key(
        help="adam, adam_published or sgd and its parameters; every layer group has its own optimizer state and step count",
        factory=AdamConfig)
    augmentation: AugmentationConfig = key(help="imgaug augmentation of the training images", factory=AugmentationConfig)
    train: TrainConfig = key(help="epochs, batches, evaluated split and learning-rate schedule", factory=TrainConfig)
    runtime: RuntimeConfig = key(help="how the run executes (devices, distribution, XLA, evaluation batches, op "
                                      "determinism), not what it computes: --resume may change it", factory=RuntimeConfig)

    def experiment(self) -> Config:
        """This config with the default runtime: what defines the run's result (two runs of equal experiments
        compute the same thing, on whatever devices)."""
        return dataclasses.replace(self, runtime=RuntimeConfig())

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
