"""Schedule registry: how one batch updates which layer groups. Importing this never imports TensorFlow.

A schedule is data (plan.py): an ordered list of sub-steps, each naming the groups it updates. A named
entry is such a list for any number of groups L; `custom` is the list written in the config:

    schedule: unfair_back                          # a named entry
    schedule: {substeps: [[-1], [-2, -1], all]}    # custom (the name may be left out)

A named schedule, built in or from a plugin, is registered with `register_schedule` (public as
`dilbench.plugins.register_schedule`): a name, a function of L giving the list, and a description.

From the list alone follow the forward start and backprop depth of each sub-step, the update counts
and the FLOP cost (`batch_plan`, `updates_per_batch`, `flops_per_example` below). One engine (engine.py,
imported with TensorFlow only to train) runs every schedule. `freezeout` (freezeout.py) anneals each
group's learning rate to zero at its own point of training and then drops it from the sub-steps.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from dilbench.registry import Registry, check_callable, check_description
from dilbench.schedules.plan import SubStep, SubStepSpec, check_substeps, cost, derive, resolve
from dilbench.schedules.plan import updates_per_batch as count_updates
from dilbench.typed.checks import positive
from dilbench.typed.fields import key
from dilbench.typed.registry import RegistryError
from dilbench.typed.validate import FieldError


@dataclass(frozen=True)
class ScheduleEntry:
    pattern: Callable[[int], list[SubStepSpec]] | None  # the sub-steps for L groups; None: schedule.substeps
    description: str


def _check(name: str, entry: ScheduleEntry) -> None:
    check_description(entry.description, "schedule", name)
    if entry.pattern is None:
        if name != "custom":
            raise RegistryError(f"schedule {name!r} has no pattern", "give a function of the number of groups returning its sub-steps")
        return
    check_callable(entry.pattern, "schedule", name, "pattern")
    for num_groups in range(1, 5):  # the pattern must say something sensible for small models
        try:
            steps = entry.pattern(num_groups)
            check_substeps(steps, f"pattern({num_groups})")
        except FieldError as err:
            raise RegistryError(f"schedule {name!r}: {err.path}: {err.message}",
                                "return a list of sub-steps, each a group or a tuple of groups (1 = bottom, -1 = top, "
                                "'A..B' ranges, 'all')") from None
        except Exception as err:
            raise RegistryError(f"schedule {name!r}: pattern({num_groups}) raised {type(err).__name__}: {err}",
                                "return a list of sub-steps for any number of groups") from None


SCHEDULES: Registry[ScheduleEntry] = Registry("schedule", _check)


def register_schedule(name: str, pattern: Callable[[int], Sequence[Any]], description: str) -> None:
    """Register schedule `name`: `pattern(L)` returns the sub-steps of one batch for a model of L groups, each
    a group or a list of groups (1 = bottom, -1 = top, 'A..B' ranges, 'all'), e.g. `lambda L: [-1, "all"]`;
    `description` one line. Update counts, forward starts and the FLOP cost follow from the list.
    RegistryError if the name is taken or the pattern gives no valid sub-steps for 1-4 groups."""

    def substeps(num_groups: int) -> list[SubStepSpec]:  # lists (as YAML and Python write them) to tuples
        return [tuple(step) if isinstance(step, list) else step for step in pattern(num_groups)]

    SCHEDULES.add(name, ScheduleEntry(substeps if callable(pattern) else pattern, description),  # type: ignore[arg-type]
                  getattr(pattern, "__module__", None) or "")


register_schedule("standard", lambda L: ["all"], "one forward/backward pass; every group updated once per batch")
register_schedule("unfair_back", lambda L: [f"-{k}..-1" for k in range(1, L + 1)],
                  "L sub-steps from cached activations; sub-step k updates the top k groups; group k updated k times")
register_schedule("unfair_front", lambda L: [f"1..{k}" for k in range(1, L + 1)],
                  "L full passes; sub-step k updates groups 1..k; group k updated L-k+1 times")
SCHEDULES.add("custom", ScheduleEntry(None, "the sub-steps listed in schedule.substeps, e.g. [[-1], [-2, -1], all]"), __name__)

@dataclass(frozen=True)
class FreezeOutConfig:
    """FreezeOut (Brock et al. 2017): group i's learning rate follows its own cosine from full to zero at
    t_i (a fraction of training), after which it is frozen and leaves the backward pass. t_i rises from
    group 1 to 1.0 for the top group: linear, t_i = t0 + (1 - t0)(i - 1)/(L - 1), or cubic, that value
    cubed (so t0 is "pre-cubed", as in the paper's code). scale_lr divides group i's rate by t_i."""

    t0: float = key(0.8, "fraction of training at which group 1 freezes (before cubing), in (0, 1]")
    spacing: Literal["linear", "cubic"] = key("cubic", "how the groups' freezing points rise from t0 to 1")
    scale_lr: bool = key(True, "start group i at lr / t_i, so early-frozen groups travel about as far")

    def __post_init__(self) -> None:
        positive(self, "t0")
        if self.t0 > 1:
            raise FieldError("t0", f"is the fraction of training at which group 1 freezes: in (0, 1], got {self.t0}")


@dataclass(frozen=True)
class ScheduleConfig:
    """How one batch updates which layer groups: an ordered list of sub-steps (docs/guides/schedules.md)."""

    # Evaluated when validation reads it (typing.get_type_hints), so it lists the entries registered by then.
    name: Literal[tuple(SCHEDULES)] = key(None,  # type: ignore[valid-type]
                                          "; ".join(f"{name}: {entry.description}" for name, entry in SCHEDULES.current().items())
                                          + ". Not written: custom when substeps are given, else standard")
    substeps: tuple[SubStepSpec, ...] | None = key(
        None, "custom only: the sub-steps in order, each a group or a list of groups (1 = bottom, -1 = top, "
              "'A..B' ranges, 'all'), e.g. [[-1], [-2, -1], all]")
    freezeout: FreezeOutConfig | None = key(None, "anneal each group's learning rate to zero at its own point of training, "
                                                  "then freeze it (FreezeOut); needs train.lr_schedule: constant")

    def __post_init__(self) -> None:
        if self.name is None:
            object.__setattr__(self, "name", "custom" if self.substeps is not None else "standard")
        if self.name == "custom":
            if self.substeps is None:
                raise FieldError("substeps", "a custom schedule lists its sub-steps, e.g. substeps: [[-1], [-2, -1], all]")
            check_substeps(self.substeps)
        elif self.substeps is not None:
            raise FieldError("substeps", f"schedule {self.name!r} has its own sub-steps; for your own list set "
                                         f"name: custom (or leave name out)")


def substeps(cfg: ScheduleConfig, num_groups: int) -> list[tuple[int, ...]]:
    """Each sub-step's groups (0-based) for a model of `num_groups` groups; FieldError if out of range."""
    pattern = SCHEDULES[cfg.name].pattern
    return resolve(pattern(num_groups) if pattern else cfg.substeps, num_groups)  # type: ignore[arg-type]  # custom has substeps (__post_init__)


def batch_plan(cfg: ScheduleConfig, num_groups: int, frozen: int = 0) -> list[SubStep]:
    """The sub-steps one batch runs when the lowest `frozen` groups are frozen."""
    return derive(substeps(cfg, num_groups), frozen)


def updates_per_batch(cfg: ScheduleConfig, num_groups: int, frozen: int = 0) -> list[int]:
    """How many times each group (1..L) is updated per batch: what the tests and metrics assert."""
    return count_updates(batch_plan(cfg, num_groups, frozen), num_groups)


def flops_per_example(cfg: ScheduleConfig, group_flops: list[int], frozen: int = 0) -> float:
    """Training FLOPs per example of one batch (plan.cost), from each group's forward FLOPs."""
    return cost(batch_plan(cfg, len(group_flops), frozen), group_flops)


def make_step(cfg: ScheduleConfig, ctx: Any, frozen: int = 0):
    """The training step `step(x, y) -> (loss, num_correct)` of schedule `cfg` over `ctx`'s groups."""
    engine = importlib.import_module("dilbench.schedules.engine")  # TensorFlow: only when a run starts
    return engine.make_step(ctx, batch_plan(cfg, ctx.num_groups, frozen), frozen)
