"""A schedule as data: an ordered list of sub-steps, each naming the layer groups it updates.

Everything else follows from that list alone (DESIGN.md decision 9), here, without TensorFlow:

- where each sub-step's forward pass starts: the first sub-step takes its gradients from the batch's
  first forward pass (which caches the input of every group); a later one runs from the cached input
  of its lowest updated group when no group below that has changed since the first pass, else it
  runs the groups below afresh (without recording them) and continues from there;
- how deep it backprops: down to its lowest updated group, with no input gradient below it;
- the update counts of every group, and the FLOP cost per example of one batch.

Groups are written 1-based from the bottom (1 = the group nearest the input), negative from the top
(-1 = the last group, which owns the head), as `A..B` ranges (inclusive, either end may be negative)
or `all`. Internally they are 0-based.

Frozen groups (FreezeOut) are a prefix of the groups: they leave every sub-step's update set, a
sub-step left with no group is dropped, and the rest is derived as above.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Union

from dilbench.typed.validate import FieldError, join

Selector = Union[int, str]  # 3, -1, "2..-1", "all"
SubStepSpec = Union[Selector, tuple[Selector, ...]]

_RANGE = re.compile(r"^\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*$")
Source = Literal["first", "cached", "fresh"]


def _bounds(selector: Selector) -> tuple[int, int] | None:
    """(first, last) as written (1-based or negative), None for `all`; FieldError if malformed."""
    if isinstance(selector, int) and not isinstance(selector, bool):
        ends = (selector, selector)
    elif selector == "all":
        return None
    elif isinstance(selector, str) and (match := _RANGE.match(selector)):
        ends = (int(match[1]), int(match[2]))
    else:
        raise FieldError("", f"expected a group (1 = bottom, -1 = top), a range like '2..-1', or 'all'; got {selector!r}")
    if 0 in ends:
        raise FieldError("", "groups count from 1 (the bottom group) or from -1 (the top group); 0 is neither")
    return ends


def check_selector(selector: Selector, path: str) -> None:
    """Syntax only (the number of groups is known when the model is built)."""
    try:
        _bounds(selector)
    except FieldError as err:
        raise FieldError(path, err.message) from None


def check_substeps(substeps: Sequence[SubStepSpec], path: str = "substeps") -> None:
    if not substeps:
        raise FieldError(path, "needs at least one sub-step, e.g. [[-1], [-2, -1], all]")
    for i, spec in enumerate(substeps):
        items = spec if isinstance(spec, tuple) else (spec,)
        if not items:
            raise FieldError(join(path, i), "a sub-step updates at least one group")
        for j, selector in enumerate(items):
            check_selector(selector, join(join(path, i), j) if isinstance(spec, tuple) else join(path, i))


def select(selector: Selector, num_groups: int) -> list[int]:
    """The 0-based groups a selector names among `num_groups`; FieldError when out of range."""
    ends = _bounds(selector)
    if ends is None:
        return list(range(num_groups))
    index = []
    for end in ends:
        if not -num_groups <= end <= num_groups:
            raise FieldError("", f"group {end} does not exist: the model has {num_groups} groups "
                                 f"(1..{num_groups} from the bottom, -1..-{num_groups} from the top)")
        index.append(end - 1 if end > 0 else num_groups + end)
    first, last = index
    if first > last:
        raise FieldError("", f"range {selector!r} runs downwards (groups {first + 1} to {last + 1}); write it bottom..top")
    return list(range(first, last + 1))


def resolve(substeps: Sequence[SubStepSpec], num_groups: int, path: str = "schedule.substeps") -> list[tuple[int, ...]]:
    """Each sub-step's groups, 0-based and ascending."""
    resolved = []
    for i, spec in enumerate(substeps):
        groups: set[int] = set()
        for selector in spec if isinstance(spec, tuple) else (spec,):
            try:
                groups.update(select(selector, num_groups))
            except FieldError as err:
                raise FieldError(join(path, i), err.message) from None
        resolved.append(tuple(sorted(groups)))
    return resolved


def check_group_values(values: tuple[float, ...] | dict[Selector, float] | None, path: str) -> None:
    """Per-group values (e.g. optimizer.group_lr): a list, or a mapping from groups to values; each >= 0."""
    if values is None:
        return
    items = enumerate(values) if isinstance(values, tuple) else values.items()
    if isinstance(values, dict):
        if not values:
            raise FieldError(path, "an empty mapping; give {group: factor}, e.g. {1: 0.5, -1: 2.0}")
        for selector in values:
            check_selector(selector, join(path, str(selector)))
    for key, value in items:
        if value < 0:
            raise FieldError(join(path, key), f"must be >= 0, got {value!r}")


def per_group(values: tuple[float, ...] | dict[Selector, float] | None, num_groups: int, path: str,
              default: float = 1.0) -> list[float]:
    """One value per group: a list must name every group; a mapping names some, the rest get `default`."""
    if values is None:
        return [default] * num_groups
    if isinstance(values, tuple):
        if len(values) != num_groups:
            raise FieldError(path, f"lists {len(values)} values, but the model has {num_groups} groups; "
                                   f"give one per group or a mapping like {{1: 0.5, -1: 2.0}}")
        return list(values)
    out: list[float | None] = [None] * num_groups
    for selector, value in values.items():
        try:
            groups = select(selector, num_groups)
        except FieldError as err:
            raise FieldError(join(path, str(selector)), err.message) from None
        for g in groups:
            if out[g] is not None:
                raise FieldError(join(path, str(selector)), f"names group {g + 1} again")
            out[g] = value
    return [default if value is None else value for value in out]


@dataclass(frozen=True)
class SubStep:
    """One sub-step of a batch: the groups it updates and where its forward pass comes from.

    source: `first` (the batch's first forward pass: nothing has been updated yet), `cached` (from the
    cached input of `start`: no group below it has changed) or `fresh` (groups below `start` changed:
    they are run again, unrecorded, and the pass continues from `start`).
    """

    groups: tuple[int, ...]
    source: Source

    @property
    def start(self) -> int:
        return self.groups[0]


def derive(substeps: Sequence[tuple[int, ...]], frozen: int = 0) -> list[SubStep]:
    """The sub-steps one batch runs, with the lowest `frozen` groups left out of every update."""
    steps: list[SubStep] = []
    lowest_changed: int | None = None
    for groups in substeps:
        groups = tuple(g for g in groups if g >= frozen)
        if not groups:
            continue
        if lowest_changed is None:
            source: Source = "first"
        else:
            source = "cached" if lowest_changed >= groups[0] else "fresh"
        steps.append(SubStep(groups, source))
        lowest_changed = groups[0] if lowest_changed is None else min(lowest_changed, groups[0])
    return steps


def updates_per_batch(steps: Sequence[SubStep], num_groups: int) -> list[int]:
    """How many times each group (bottom to top) is updated in one batch."""
    counts = [0] * num_groups
    for step in steps:
        for g in step.groups:
            counts[g] += 1
    return counts


def cost(steps: Sequence[SubStep], flops: Sequence[float]) -> float:
    """FLOPs per example of one batch, from each group's forward FLOPs per example.

    A group's forward pass costs F_i, its weight gradient F_i and its input gradient F_i. The batch's
    first forward pass runs every group; a `cached` sub-step re-runs groups start..L, a `fresh` one all
    L; every sub-step computes the weight gradients of its groups and the input gradients of the groups
    above its lowest one (that one needs none: nothing below it learns in this sub-step).
    """
    num_groups = len(flops)

    def forward(first: int) -> float:
        return math.fsum(flops[first:])

    total = forward(0)
    for step in steps:
        total += {"first": 0.0, "cached": forward(step.start), "fresh": forward(0)}[step.source]
        total += math.fsum(flops[g] for g in step.groups) + (forward(step.start + 1) if step.start + 1 < num_groups else 0.0)
    return total
