"""Optimizer registry: the `optimizer:` section's configs. Importing this never imports TensorFlow.

Every layer group gets its own optimizer state and step count (group.py, with TensorFlow), so Adam's
bias correction follows the group's own number of updates. `group_lr` scales each group's learning rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypeAlias, Union

from dilbench.schedules.plan import Selector, check_group_values
from dilbench.typed.checks import in_unit_interval, positive
from dilbench.typed.fields import key
from dilbench.typed.registry import check_names

GroupLr = Union[tuple[float, ...], dict[Selector, float], None]
GROUP_LR_HELP = ("per-group learning-rate factors (each group's lr = lr x factor, >= 0): a list, one per group from "
                 "the bottom, or {group: factor} with groups 1-based, negative from the top, 'A..B' or 'all'")


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
    (m/(1-beta1), v/(1-beta2) at every step) and epsilon added after it (docs/guides/schedules.md)."""

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


OPTIMIZERS: dict[str, type] = {"adam": AdamConfig, "adam_published": AdamPublishedConfig, "sgd": SGDConfig}
check_names(OPTIMIZERS, "optimizer")
if TYPE_CHECKING:  # mypy cannot read a Union built from the registry; the same three classes
    OptimizerConfig: TypeAlias = AdamConfig | AdamPublishedConfig | SGDConfig
else:
    OptimizerConfig = Union[tuple(OPTIMIZERS.values())]
