"""An experiment file's `search:` section: tune each case's hyperparameters with the same budget, then confirm.

    search:
      method: tpe                      # tpe | random
      trials: 8                        # per tuned group (a case, plus the labels of grid keys not averaged over)
      space:                           # dotted config keys (what --set takes) -> a distribution
        optimizer.lr: {log_uniform: [1.0e-5, 1.0e-3]}
        optimizer.beta2: {uniform: [0.9, 0.999]}
        model.channels: {int: [4, 16]}
        train.lr_schedule: {choice: [constant, cosine]}
      metric: final_eval_acc           # final_KEY | best_KEY | KEY (= final_KEY) of the epoch records
      direction: maximize
      pruner: {median: {startup_trials: 2, warmup_epochs: 1}}   # | {asha: {min_epochs: 1, reduction_factor: 3}} | none
      seeds: [100]                     # tuning seeds, disjoint from the confirmation (grid) seeds
      validation: 0.2                  # held out of the training images; tuning runs evaluate on it

Only the schema and the numbers it implies live here (no Optuna, no TensorFlow): `experiment.py` validates it
with the rest of the file, `plan.py` builds the tuning and confirmation configs, `study.py` turns it into an
Optuna study.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from dilbench.typed.fields import key
from dilbench.typed.validate import FieldError, FieldErrors, OneKey, did_you_mean, join

KINDS = ("log_uniform", "uniform", "int", "choice")
RESERVED = {  # config keys a search cannot vary, and why
    "name": "the sweep names every run",
    "seed": "tuning runs take search.seeds, confirmation runs the grid's seeds",
    "train.epochs": "every trial has the same epochs cap (set it in the profile)",
    "train.eval": "set by search.validation",
    "data.validation": "set by search.validation",
}


@dataclass(frozen=True)
class Dimension:
    """One searched config key: a range (log_uniform, uniform, int) or a list of choices."""

    key: str
    kind: str  # one of KINDS
    low: float | int | None = None
    high: float | int | None = None
    choices: tuple[Any, ...] = ()

    def bounds(self) -> list[Any]:
        """The values every sampled config lies between (or among): each must make a valid config."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]

    def describe(self) -> str:
        if self.kind == "choice":
            return f"choice of {', '.join(map(str, self.choices))}"
        return f"{self.kind.replace('_', '-')} [{self.low:g}, {self.high:g}]"

    def contains(self, value: Any) -> bool:
        if self.kind == "choice":
            return value in self.choices
        return isinstance(value, (int, float)) and not isinstance(value, bool) and self.low <= value <= self.high  # type: ignore[operator]


def parse_dimension(name: str, value: Any, path: str) -> Dimension:
    """`{log_uniform: [1e-5, 1e-3]}` and the like; FieldError at `path` (the key's) if it is not one."""
    forms = "{log_uniform: [low, high]}, {uniform: [low, high]}, {int: [low, high]} or {choice: [a, b, ...]}"
    if name in RESERVED:
        raise FieldError(path, f"cannot be searched: {RESERVED[name]}")
    if not isinstance(value, dict) or len(value) != 1:
        raise FieldError(path, f"expected one of {forms}, got {value!r}")
    ((kind, args),) = value.items()
    here = join(path, str(kind))
    if kind not in KINDS:
        raise FieldError(here, f"unknown distribution {kind!r}{did_you_mean(str(kind), KINDS)}; choose one of {', '.join(KINDS)}")
    if kind == "choice":
        if not isinstance(args, list) or not args:
            raise FieldError(here, f"expected a list of values to choose from, got {args!r}")
        for i, choice in enumerate(args):
            plain = choice is None or isinstance(choice, (bool, int, float, str))
            if not plain or (isinstance(choice, float) and not math.isfinite(choice)):
                raise FieldError(join(here, i), f"choices are plain values (numbers, strings, true/false, null), got {choice!r}")
        if len({repr(c) for c in args}) != len(args):
            raise FieldError(here, f"a choice is listed twice: {args}")
        return Dimension(name, kind, choices=tuple(args))
    numeric = (int,) if kind == "int" else (int, float)
    if not (isinstance(args, list) and len(args) == 2 and all(isinstance(a, numeric) and not isinstance(a, bool) for a in args)):
        what = "integers" if kind == "int" else "numbers"
        raise FieldError(here, f"expected [low, high], two {what}, got {args!r}")
    low, high = args
    if not all(math.isfinite(a) for a in args):
        raise FieldError(here, f"expected finite bounds, got {args!r}")
    if not low < high:
        raise FieldError(here, f"low must be below high, got [{low}, {high}]")
    if kind == "log_uniform" and low <= 0:
        raise FieldError(here, f"a log scale needs low > 0, got {low}")
    return Dimension(name, kind, low if kind == "int" else float(low), high if kind == "int" else float(high))


@dataclass(frozen=True)
class MedianPruner(OneKey):
    """Stop a trial after an epoch whose metric is worse than the median of the finished trials' at that epoch."""

    kind = "pruner"
    name: Literal["median"] = field(default="median", init=False)
    startup_trials: int = key(2, "finished trials before any trial is pruned")
    warmup_epochs: int = key(1, "epochs every trial trains before it can be pruned")

    def __post_init__(self) -> None:
        if self.startup_trials < 0:
            raise FieldError("startup_trials", f"must be >= 0, got {self.startup_trials}")
        if self.warmup_epochs < 1:
            raise FieldError("warmup_epochs", f"must be >= 1 (a trial is judged after an epoch), got {self.warmup_epochs}")


@dataclass(frozen=True)
class AshaPruner(OneKey):
    """Asynchronous successive halving: at min_epochs x reduction_factor^k epochs, keep the top 1/reduction_factor."""

    kind = "pruner"
    name: Literal["asha"] = field(default="asha", init=False)
    min_epochs: int = key(1, "epochs of the first rung")
    reduction_factor: int = key(3, "keep the best 1/reduction_factor of the trials at each rung")

    def __post_init__(self) -> None:
        if self.min_epochs < 1:
            raise FieldError("min_epochs", f"must be >= 1, got {self.min_epochs}")
        if self.reduction_factor < 2:
            raise FieldError("reduction_factor", f"must be >= 2, got {self.reduction_factor}")


@dataclass(frozen=True)
class NoPruner(OneKey):
    """Every trial trains all its epochs."""

    kind = "pruner"
    name: Literal["none"] = field(default="none", init=False)


Pruner = MedianPruner | AshaPruner | NoPruner


@dataclass(frozen=True)
class SearchSpec:
    """The tuning protocol of an experiment (README: Searches: tune, then confirm)."""

    trials: int  # per tuned group
    space: dict[str, Any]  # dotted config key -> {log_uniform|uniform|int: [low, high]} or {choice: [...]}
    seeds: tuple[int, ...]  # the tuning runs' seeds (trial k takes seeds[k % len]); disjoint from the confirmation seeds
    method: Literal["tpe", "random"] = "tpe"
    cases: tuple[str, ...] | None = None  # the cases tuned (None: every case the profile runs)
    metric: str = "final_eval_acc"  # final_KEY, best_KEY or KEY of the epoch records (eval_* on the validation split)
    direction: Literal["maximize", "minimize"] = "maximize"
    pruner: Pruner = field(default_factory=MedianPruner)
    validation: float = 0.2  # a fraction (<1) or count of the training images held out for tuning; 0: tune on the eval split
    startup_trials: int | None = None  # tpe: random trials first (None: min(10, max(2, trials // 3)))
    sampler_seed: int = 0
    dimensions: tuple[Dimension, ...] = field(default=(), init=False, compare=False)

    def __post_init__(self) -> None:
        errors = []
        if self.trials < 1:
            errors.append(FieldError("trials", f"must be >= 1, got {self.trials}"))
        if not self.space:
            errors.append(FieldError("space", "needs at least one key to search, e.g. optimizer.lr: {log_uniform: [1.0e-5, 1.0e-3]}"))
        dimensions = []
        for name, value in self.space.items():
            try:
                dimensions.append(parse_dimension(str(name), value, join("space", str(name))))
            except FieldError as err:
                errors.append(err)
        if not self.seeds:
            errors.append(FieldError("seeds", "needs at least one tuning seed"))
        elif len(set(self.seeds)) != len(self.seeds):
            errors.append(FieldError("seeds", f"a seed is listed twice: {list(self.seeds)}"))
        if not self.metric_key:
            errors.append(FieldError("metric", f"expected final_KEY, best_KEY or an epoch-record KEY, got {self.metric!r}"))
        if self.validation < 0 or (self.validation >= 1 and self.validation != int(self.validation)):
            errors.append(FieldError("validation", f"a fraction below 1, a whole count, or 0 (tune on the eval split), "
                                                   f"got {self.validation}"))
        if self.startup_trials is not None and self.startup_trials < 0:
            errors.append(FieldError("startup_trials", f"must be >= 0, got {self.startup_trials}"))
        if errors:
            raise FieldErrors(errors)
        object.__setattr__(self, "dimensions", tuple(dimensions))

    @property
    def metric_key(self) -> str:
        """The epoch-record key the metric reads: `eval_acc` of final_eval_acc."""
        return metric_key(self.metric)

    @property
    def random_trials(self) -> int:
        """How many trials TPE samples at random before modelling the others (all of them for `random`)."""
        if self.method == "random":
            return self.trials
        return self.startup_trials if self.startup_trials is not None else min(10, max(2, self.trials // 3))

    def value(self, records: list[dict[str, Any]]) -> float | None:
        """The metric of a run with these epoch records (metric_value)."""
        return metric_value(records, self.metric, self.direction)

    def describe_space(self) -> str:
        return ", ".join(f"`{d.key}` {d.describe()}" for d in self.dimensions)

    def describe_pruner(self) -> str:
        pruner = self.pruner
        if isinstance(pruner, MedianPruner):
            return (f"median (a trial stops after an epoch whose {self.metric_key} is worse than the median of earlier trials' "
                    f"at that epoch, once {pruner.startup_trials} trials have finished and from epoch {pruner.warmup_epochs} on)")
        if isinstance(pruner, AshaPruner):
            return (f"asha (successive halving: at {pruner.min_epochs} x {pruner.reduction_factor}^k epochs a trial goes on only "
                    f"if it is in the best 1/{pruner.reduction_factor} of the trials there)")
        return "none (every trial trains all its epochs)"

    def describe_method(self) -> str:
        if self.method == "random":
            return f"random sampling (seed {self.sampler_seed})"
        return (f"TPE ({self.random_trials} random trial(s) first, then the tree-structured Parzen estimator; constant liar for "
                f"trials running in parallel; seed {self.sampler_seed})")


def metric_key(metric: str) -> str:
    for prefix in ("final_", "best_"):
        if metric.startswith(prefix):
            return metric[len(prefix):]
    return metric


def metric_value(records: list[dict[str, Any]], metric: str, direction: str) -> float | None:
    """A run's metric from its epoch records: the last epoch's KEY (final_KEY, or KEY), or the best epoch's
    (best_KEY); None if no record has the key. A trial's intermediate value after epoch e is this of epochs 1..e."""
    key = metric_key(metric)
    values = [float(r[key]) for r in records if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
    if not values:
        return None
    if metric.startswith("best_"):
        return max(values) if direction == "maximize" else min(values)
    return values[-1]


def tuning_seed(spec: SearchSpec, trial: int) -> int:
    """The seed of trial `trial`: the tuning seeds in turn."""
    return spec.seeds[trial % len(spec.seeds)]
