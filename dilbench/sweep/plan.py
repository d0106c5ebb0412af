"""Expand an experiment into its runs: every case x every grid combination, with the profile on top.

Every run's config is built and validated here, before anything runs, so one bad override fails the
whole sweep up front (exit code 2) at the experiment file's line that wrote it. Order of overrides:
base config <- case <- grid values <- profile <- the run's name; later ones win.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dilbench.config import Config, ConfigError, dump_config, load_config
from dilbench.config.loader import Override
from dilbench.errors import UsageError
from dilbench.sweep.experiment import ExperimentFile
from dilbench.typed.validate import did_you_mean


@dataclass(frozen=True)
class PlannedRun:
    name: str  # `c-seed1`: the config's name, so a re-run finds the run directory again
    case: str | None
    group: str  # the report row: the case plus the grid labels not averaged over
    grid: dict[str, Any]  # this run's grid values, e.g. {"seed": 1}
    config: Config


@dataclass(frozen=True)
class Plan:
    experiment: ExperimentFile
    profile: str | None
    runs: list[PlannedRun]
    runs_dir: Path  # where the run directories go: <experiment dir>/<runs_dir>/<profile>
    results_dir: Path  # where the report goes: <experiment dir>/<results_dir>/<profile>

    def heading(self, count: int) -> str:
        """`NAME, profile P: COUNT runs in DIR`, the first line of what `sweep` and `sweep --status` print."""
        profile = f", profile {self.profile}" if self.profile else ""
        return f"{self.experiment.spec.name}{profile}: {count} runs in {self.runs_dir}"


def choose_profile(experiment: ExperimentFile, profile: str | None) -> str | None:
    """The profile asked for, or the file's first one; None for a file without profiles."""
    profiles = experiment.spec.profiles
    if profile is None:
        return next(iter(profiles), None)
    if profile not in profiles:
        known = ", ".join(profiles) or "none (the file has no `profiles:`)"
        raise UsageError(f"{experiment.path}: unknown profile {profile!r}{did_you_mean(profile, profiles)}; profiles: {known}")
    return profile


def make_plan(experiment: ExperimentFile, profile: str | None = None) -> Plan:
    """All runs of the experiment under a profile, each with a validated config."""
    spec = experiment.spec
    profile = choose_profile(experiment, profile)
    base = experiment.resolve(spec.base)
    profile_overrides = _overrides(experiment, spec.profiles[profile] if profile is not None else {}, f"profiles.{profile}")
    runs: list[PlannedRun] = []
    axes = [experiment.spec.axis(key) for key in spec.grid]
    for case in list[str | None](spec.cases) or [None]:
        case_overrides = _overrides(experiment, spec.cases[case], f"cases.{case}") if case else []
        for combo in itertools.product(*axes):
            labels = {key: label for key, (label, _, _) in zip(spec.grid, combo)}
            name = "-".join(([case] if case else []) + list(labels.values()))
            grid_overrides = [Override(key, value, experiment.where(path)) for key, (_, value, path) in zip(spec.grid, combo)]
            overrides = [*case_overrides, *grid_overrides, *profile_overrides, Override("name", name)]
            try:
                config = load_config(base, overrides)
            except ConfigError as err:
                run = f" (run {name}{f', profile {profile}' if profile else ''})"
                raise ConfigError("\n".join(line + run for line in str(err).splitlines())) from None
            grid = {key: value for key, (_, value, _) in zip(spec.grid, combo)}
            runs.append(PlannedRun(name, case, spec.group(case, labels), grid, config))
    _check_distinct(runs, experiment.path)
    subdir = profile or ""
    return Plan(experiment, profile, runs, experiment.output(spec.runs_dir) / subdir, experiment.output(spec.results_dir) / subdir)


def _overrides(experiment: ExperimentFile, values: dict[str, Any], path: str) -> list[Override]:
    return [Override(key, value, experiment.where(f"{path}.{key}")) for key, value in values.items()]


def _check_distinct(runs: list[PlannedRun], where: Path) -> None:
    """Two runs with the same config would be one run twice (e.g. a profile overriding a grid key)."""
    seen: dict[str, str] = {}
    for run in runs:
        if run.name in seen.values():
            raise UsageError(f"{where}: two runs would be named {run.name}; rename a case or a grid label")
        key = dump_config(dataclasses.replace(run.config, name="_"))
        if key in seen:
            raise UsageError(f"{where}: runs {seen[key]} and {run.name} have the same config; a later override (the profile?) "
                             f"hides what tells them apart")
        seen[key] = run.name
