"""The experiment file: a base config, named cases, a grid, profiles, and the published numbers.

Validated like a run config (typed dataclasses through `config.validate.build`, errors as
`FILE:LINE: key: problem`), so a typo in a 21-run sweep fails in a second instead of after an hour.
Overrides (cases, grid values, profiles) are dotted config keys with `--set` semantics: a mapping
value replaces the whole section. Whether they make valid configs is checked later, per run, by the
plan, because that needs the base config.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from dilbench.config.loader import line_of, locate, report
from dilbench.config.yamlfile import ConfigError, read_yaml
from dilbench.sweep.search import SearchSpec
from dilbench.sweep.slurm_resources import SlurmResources
from dilbench.typed.validate import FieldError, FieldErrors, build, did_you_mean, join, to_plain

WORD = re.compile(r"^[A-Za-z0-9_.]+$")  # case and profile names: they become parts of run names
LABEL = re.compile(r"^[A-Za-z0-9_.+-]+$")  # a grid value's label in a run name
PROFILE_KEYS = ("cases", "search")  # a profile's keys that are not config overrides: the cases it runs, search settings


@dataclass(frozen=True)
class Published:
    """A published result of one group, shown beside the measured one and never mixed into it."""

    final_eval_acc: float | None = None
    best_eval_acc: float | None = None
    epochs: int | None = None
    note: str = ""


@dataclass(frozen=True)
class Claim:
    """A published ordering of two groups (`higher` scores above `lower`), judged against seed noise."""

    higher: str
    lower: str
    says: str  # the claim in words, e.g. "unfair_back beats standard after 10 epochs"
    metric: Literal["final_eval_acc", "best_eval_acc"] = "final_eval_acc"

    def __post_init__(self) -> None:
        if self.higher == self.lower:
            raise FieldError("lower", f"must differ from higher ({self.higher!r})")


@dataclass(frozen=True)
class Hooks:
    """Shell commands run when each run and when the sweep ends (runs/hooks.py); a failing one only warns."""

    on_run_end: str | None = None  # as `dilbench train --on-end`: $DILBENCH_RUN_DIR, $DILBENCH_RUN_STATUS
    on_sweep_end: str | None = None  # $DILBENCH_SWEEP_DIR, $DILBENCH_RESULTS, $DILBENCH_SWEEP_STATUS
    timeout: float = 60.0  # seconds, for each

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise FieldError("timeout", f"must be a positive number of seconds, got {self.timeout}")
        for name in ("on_run_end", "on_sweep_end"):
            if getattr(self, name) is not None and not str(getattr(self, name)).strip():
                raise FieldError(name, "an empty command; leave the key out instead")

    def train_options(self) -> tuple[str, ...]:
        """What each run's `dilbench train` gets for `on_run_end`."""
        return ("--on-end", self.on_run_end, "--hook-timeout", f"{self.timeout:g}") if self.on_run_end else ()


@dataclass(frozen=True)
class Experiment:
    name: str
    base: str  # the base run config, relative to the experiment file
    about: str = ""  # one paragraph for the top of the results page
    runs_dir: str = "runs"  # relative to the experiment file's directory; one subdirectory per profile
    results_dir: str = "results"  # likewise
    notes: str | None = None  # a Markdown file (relative to the experiment file) the results page includes
    cases: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> overrides
    grid: dict[str, Any] = field(default_factory=dict)  # key -> list of values, or mapping label -> value
    group_over: tuple[str, ...] | None = None  # grid keys the report averages over; None: seed, if a grid key
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> overrides, applied last
    published: dict[str, Published] = field(default_factory=dict)  # group -> published numbers
    claims: tuple[Claim, ...] = ()
    slurm: SlurmResources = field(default_factory=SlurmResources)  # per run, for `--launcher slurm`
    hooks: Hooks = field(default_factory=Hooks)  # shell commands at the end of each run and of the sweep
    search: SearchSpec | None = None  # tune each case's hyperparameters, then confirm (search.py)

    def __post_init__(self) -> None:
        if not WORD.match(self.name):
            raise FieldError("name", f"must be letters, digits, '_' or '.', got {self.name!r}")
        if not self.cases and not self.grid:
            raise FieldError("cases", "an experiment needs cases, a grid, or both")
        for section in ("cases", "profiles"):
            for name, overrides in getattr(self, section).items():
                if not WORD.match(name):
                    raise FieldError(join(section, name), f"names must be letters, digits, '_' or '.', got {name!r}")
                _check_keys({k: v for k, v in overrides.items() if section == "cases" or k not in PROFILE_KEYS}, join(section, name))
        for name in self.profiles:
            self.profile_cases(name)
            self.profile_search(name)
        if self.search is not None:
            for i, case in enumerate(self.search.cases or ()):
                if case not in self.cases:
                    raise FieldError(join(join("search", "cases"), i),
                                     f"unknown case {case!r}{did_you_mean(case, self.cases)}; cases: {', '.join(self.cases) or 'none'}")
        _check_keys(self.grid, "grid")
        for key, values in self.grid.items():
            _check_axis(key, values)
        for i, key in enumerate(self.group_over or ()):
            if key not in self.grid:
                raise FieldError(join("group_over", i), f"{key!r} is not a grid key; grid keys: {', '.join(self.grid) or 'none'}")
        groups = self.groups()
        for name in self.published:
            if name not in groups:
                raise FieldError(join("published", name), f"unknown group{did_you_mean(name, groups)}; groups: {', '.join(groups)}")
        for i, claim in enumerate(self.claims):
            for side in ("higher", "lower"):
                name = getattr(claim, side)
                if name not in groups:
                    raise FieldError(join(join("claims", i), side),
                                     f"unknown group {name!r}{did_you_mean(name, groups)}; groups: {', '.join(groups)}")

    def profile_cases(self, profile: str | None) -> list[str | None]:
        """The cases a profile runs: its `cases:` list, else all of them ([None] for a file without cases)."""
        chosen = (self.profiles.get(profile) or {}).get("cases") if profile is not None else None
        if chosen is None:
            return list[str | None](self.cases) or [None]
        path = join(join("profiles", str(profile)), "cases")
        if not isinstance(chosen, list) or not chosen:
            raise FieldError(path, f"expected a list of case names (the cases this profile runs), got {chosen!r}")
        for i, case in enumerate(chosen):
            if case not in self.cases:
                raise FieldError(join(path, i), f"unknown case {case!r}{did_you_mean(str(case), self.cases)}; "
                                                f"cases: {', '.join(self.cases) or 'none'}")
        return [case for case in self.cases if case in chosen]  # in the file's order

    def profile_search(self, profile: str | None) -> SearchSpec | None:
        """The search settings under a profile: the file's `search:`, with the profile's `search:` keys on top; a
        profile of a file without `search:` may hold a whole one (only that profile searches), and `search: false`
        turns the file's off (that profile runs its cases at their fixed values only)."""
        given = (self.profiles.get(profile) or {}).get("search") if profile is not None else None
        if given is None:
            return self.search
        path = join(join("profiles", str(profile)), "search")
        if given is False:
            return None
        if not isinstance(given, dict):
            raise FieldError(path, f"expected a mapping of search settings, e.g. {{trials: 4}}, or false, got {given!r}")
        base = {k: v for k, v in to_plain(self.search).items() if k != "dimensions"} if self.search is not None else {}
        try:
            return build(SearchSpec, {**base, **given})
        except FieldError as err:
            raise FieldErrors([FieldError(join(path, e.path), e.message) for e in err.errors]) from None

    def axis(self, key: str) -> list[tuple[str, Any, str]]:
        """A grid key's values as (label in run names, value, dotted path in the file for error lines)."""
        values = self.grid[key]
        if isinstance(values, dict):
            return [(str(label), value, join(join("grid", key), str(label))) for label, value in values.items()]
        return [(value_label(key, value), value, join(join("grid", key), i)) for i, value in enumerate(values)]

    def group(self, case: str | None, labels: dict[str, str]) -> str:
        """The report row a run belongs to: its case and the labels of the grid keys not averaged over."""
        parts = ([case] if case else []) + [label for key, label in labels.items() if key not in self.averaged]
        return "-".join(parts) or self.name

    @property
    def averaged(self) -> tuple[str, ...]:
        """The grid keys the report averages over."""
        return ("seed",) if self.group_over is None and "seed" in self.grid else self.group_over or ()

    def groups(self) -> list[str]:
        """Every group, in the order of the runs."""
        kept = [key for key in self.grid if key not in self.averaged]
        combos = itertools.product(*([label for label, _, _ in self.axis(key)] for key in kept))
        labelled = [dict(zip(kept, combo)) for combo in combos]
        return [self.group(case, labels) for case in (list[str | None](self.cases) or [None]) for labels in labelled]


def _check_keys(overrides: dict[str, Any], path: str) -> None:
    for key in overrides:
        if key == "name":
            raise FieldError(join(path, key), "the sweep names every run (<case>-<grid values>); remove this key")


def _check_axis(key: str, values: Any) -> None:
    """A grid axis: a list of plain values, or a mapping from labels to (any) values."""
    path = join("grid", key)
    if isinstance(values, dict):
        labels = list(values)
    elif isinstance(values, list):
        for i, value in enumerate(values):
            if isinstance(value, (dict, list)):
                raise FieldError(join(path, i), "a list holds plain values; for sections give a mapping of labels to values, "
                                                "e.g. {none: {mode: none}, paired: {mode: paired, ops: [...]}}")
        labels = [value_label(key, value) for value in values]
    else:
        raise FieldError(path, f"expected a list of values or a mapping of labels to values, got {values!r}")
    if not labels:
        raise FieldError(path, "needs at least one value")
    for label in labels:
        if not LABEL.match(str(label)):
            raise FieldError(path, f"label {label!r} cannot be part of a run name (letters, digits, '_', '.', '+', '-')")
    if len(set(map(str, labels))) != len(labels):
        raise FieldError(path, f"two values have the same label in run names: {labels}")


def value_label(key: str, value: Any) -> str:
    """How a plain grid value appears in a run name: strings as they are, anything else after the key's
    last part (`seed: 1` -> `seed1`, `optimizer.lr: 0.001` -> `lr0.001`)."""
    if isinstance(value, str):
        return value
    text = str(value).lower() if isinstance(value, bool) or value is None else str(value)
    return key.rsplit(".", 1)[-1] + text


@dataclass(frozen=True)
class ExperimentFile:
    """A validated experiment and where it came from (for paths and error lines)."""

    path: Path
    spec: Experiment
    lines: dict[str, int]
    output_directory: Path | None = None  # where runs_dir and results_dir are taken from; None: beside the file

    @property
    def directory(self) -> Path:
        return self.path.parent

    def where(self, key: str) -> str:
        """`FILE:LINE` of a dotted key of the file (or of its nearest enclosing key)."""
        return f"{self.path}:{line_of(key, self.lines)}"

    def resolve(self, relative: str) -> Path:
        """A path written in the file, relative to the file's directory, normalised for messages."""
        return Path(os.path.normpath(self.directory / relative))

    def output(self, relative: str) -> Path:
        """A runs or results directory written in the file, under the output directory."""
        return Path(os.path.normpath((self.output_directory or self.directory) / relative))


def load_experiment(path: str | Path, output_directory: Path | None = None) -> ExperimentFile:
    """Read and validate an experiment file; ConfigError naming the file, line and key if it is wrong.

    Runs and results go beside the file, or under `output_directory` when given (a bundled experiment)."""
    path = Path(path)
    document = read_yaml(path, "experiment file")
    if not isinstance(document.data, dict):
        raise ConfigError(f"{path}:1: an experiment file is a mapping (name, base, cases, grid, profiles, ...)")
    problems = [((0, line), text) for line, text in document.duplicate_problems()]
    try:
        spec = build(Experiment, document.data)
    except FieldError as err:
        problems += [locate(e, path, document.lines) for e in err.errors]
    if problems:
        raise report(problems)
    experiment = ExperimentFile(path, spec, document.lines, output_directory)
    for key, relative in (("base", spec.base), ("notes", spec.notes)):
        if relative is not None and not experiment.resolve(relative).is_file():
            raise ConfigError(f"{experiment.where(key)}: {key}: {experiment.resolve(relative)} is not a file "
                              f"(paths are relative to the experiment file)")
    return experiment
