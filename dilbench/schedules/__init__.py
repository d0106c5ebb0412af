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
class ScheduleEntry:
    config: type
    module: str
    description: str


SCHEDULES: dict[str, ScheduleEntry] = {
    "standard": ScheduleEntry(StandardConfig, "dilbench.schedules.standard", "one forward/backward pass; every group updated once per batch"),
}


def make_step(cfg: Any, ctx: Any):
    """The training step `step(x, y) -> (loss, num_correct)` of schedule `cfg` over `ctx`'s groups."""
    return importlib.import_module(SCHEDULES[cfg.name].module).make_step(ctx)
