"""Schedule registry: how one batch updates which layer groups. Importing this never imports TensorFlow.

Each entry names its config dataclass and the module whose `make_step(ctx)` builds the training step;
that module is imported (with TensorFlow) only when a run starts.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class StandardConfig:
    name: Literal["standard"] = "standard"


@dataclass(frozen=True)
class UnfairBackConfig:
    name: Literal["unfair_back"] = "unfair_back"


@dataclass(frozen=True)
class UnfairFrontConfig:
    name: Literal["unfair_front"] = "unfair_front"


@dataclass(frozen=True)
class ScheduleEntry:
    config: type
    builder: str  # "module:function" of `make_step(ctx)`, imported (with TensorFlow) only to train
    description: str

    def updates_per_batch(self, num_groups: int) -> list[int]:
        """How many times each group (1..L) is updated per batch: what the tests and metrics assert."""
        return {
            "standard": [1] * num_groups,
            "unfair_back": list(range(1, num_groups + 1)),
            "unfair_front": list(range(num_groups, 0, -1)),
        }[self.config.name]


SCHEDULES: dict[str, ScheduleEntry] = {
    "standard": ScheduleEntry(StandardConfig, "dilbench.schedules.standard:make_step",
                              "one forward/backward pass; every group updated once per batch"),
    "unfair_back": ScheduleEntry(UnfairBackConfig, "dilbench.schedules.unfair:make_back_step",
                                 "L sub-steps from cached activations; group k updated k times per batch"),
    "unfair_front": ScheduleEntry(UnfairFrontConfig, "dilbench.schedules.unfair:make_front_step",
                                  "L full passes; sub-step k updates groups 1..k; group k updated L-k+1 times"),
}


def make_step(cfg: Any, ctx: Any):
    """The training step `step(x, y) -> (loss, num_correct)` of schedule `cfg` over `ctx`'s groups."""
    module, function = SCHEDULES[cfg.name].builder.split(":")
    return getattr(importlib.import_module(module), function)(ctx)
