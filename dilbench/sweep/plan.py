"""Expand an experiment into its runs: every case x every grid combination, with the profile on top.

Every run's config is built and validated here, before anything runs, so one bad override fails the
whole sweep up front (exit code 2) at the experiment file's line that wrote it. Order of overrides:
base config <- case <- grid values <- profile <- the run's name; later ones win.

With a `search:` section the plan also holds each tuned group (`TunedGroup`): its trials' configs
(base <- case <- the group's grid values <- profile <- tuning seed and held-out validation split <-
sampled values) and its confirmation runs (the fixed runs' configs <- the best trial's values), whose
values are known only once its study is done (tuning.py). Every searched key is checked here at its
bounds (and each choice), so a space that cannot make a valid config fails up front too.
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
from dilbench.sweep.experiment import PROFILE_KEYS, Claim, ExperimentFile
from dilbench.sweep.search import SearchSpec, tuning_seed
from dilbench.typed.validate import did_you_mean, to_plain

TUNED = "tuned"  # confirmation runs are named <case>-tuned-<grid labels>, their group <case>-tuned[-labels]
TRIAL = "trial"  # tuning runs are named <group>-trial<N>


@dataclass(frozen=True)
class PlannedRun:
    name: str  # `c-seed1`: the config's name, so a re-run finds the run directory again
    case: str | None
    group: str  # the report row: the case plus the grid labels not averaged over
    grid: dict[str, Any]  # this run's grid values, e.g. {"seed": 1}
    config: Config
    search: dict[str, Any] | None = None  # a search's run: meta.json's `search` (study, group, trial, params, role)


@dataclass(frozen=True)
class TunedGroup:
    """A group whose hyperparameters the search tunes: one study, its trials, then its confirmation runs."""

    group: str  # the fixed-rate group it tunes, e.g. `a` (or `a-paired`): also the study's name in the runs dir
    case: str | None
    grid: dict[str, Any]  # the values of the grid keys not averaged over
    overrides: tuple[Override, ...]  # case + those grid values, before the profile's
    tuned: str  # the confirmation runs' group: `a-tuned` (or `a-tuned-paired`)
    confirm: tuple[tuple[str, dict[str, Any], tuple[Override, ...]], ...]  # per confirmation run: name, grid, overrides

    def trial_name(self, number: int) -> str:
        return f"{self.group}-{TRIAL}{number}"


@dataclass(frozen=True)
class Plan:
    experiment: ExperimentFile
    profile: str | None
    runs: list[PlannedRun]
    runs_dir: Path  # where the run directories go: <experiment dir>/<runs_dir>/<profile>
    results_dir: Path  # where the report goes: <experiment dir>/<results_dir>/<profile>
    search: SearchSpec | None = None  # the profile's search settings
    tuned: tuple[TunedGroup, ...] = ()  # the groups the search tunes, in the runs' order
    profile_overrides: tuple[Override, ...] = ()

    @property
    def claims(self) -> list[Claim]:
        """The experiment's claims between groups this profile runs (a profile may run only some cases)."""
        groups = {run.group for run in self.runs}
        return [claim for claim in self.experiment.spec.claims if claim.higher in groups and claim.lower in groups]

    def left_out_claims(self) -> list[Claim]:
        return [claim for claim in self.experiment.spec.claims if claim not in self.claims]

    def tuned_claims(self) -> list[tuple[Claim, Claim]]:
        """Each claim whose two groups are both tuned, with its tuned twin (`a > c` -> `a-tuned > c-tuned`)."""
        tuned = {t.group: t.tuned for t in self.tuned}
        return [(claim, dataclasses.replace(claim, higher=tuned[claim.higher], lower=tuned[claim.lower]))
                for claim in self.claims if claim.higher in tuned and claim.lower in tuned]

    def build(self, name: str, overrides: list[Override]) -> Config:
        """A run's config from the base and `overrides` (the run's name last); ConfigError naming the run."""
        try:
            return load_config(self.experiment.resolve(self.experiment.spec.base), [*overrides, Override("name", name)])
        except ConfigError as err:
            run = f" (run {name}{f', profile {self.profile}' if self.profile else ''})"
            raise ConfigError("\n".join(line + run for line in str(err).splitlines())) from None

    def param_overrides(self, params: dict[str, Any]) -> list[Override]:
        return [Override(key, value, self.experiment.where(f"search.space.{key}")) for key, value in params.items()]

    def trial_run(self, tuned: TunedGroup, number: int, params: dict[str, Any], study: dict[str, Any]) -> PlannedRun:
        """Trial `number` of a tuned group: a tuning seed, the held-out validation split, the sampled values."""
        assert self.search is not None
        seed = tuning_seed(self.search, number)
        where = self.experiment.where("search")
        tuning = [Override("seed", seed, self.experiment.where("search.seeds"))]
        if self.search.validation:
            tuning += [Override("data.validation", self.search.validation, self.experiment.where("search.validation")),
                       Override("train.eval", "validation", where)]
        name = tuned.trial_name(number)
        config = self.build(name, [*tuned.overrides, *self.profile_overrides, *tuning, *self.param_overrides(params)])
        search = {**study, "group": tuned.group, "trial": number, "params": params, "role": "tune", "run": name,
                  "metric": self.search.metric, "direction": self.search.direction, "pruner": to_plain(self.search.pruner),
                  "epochs": config.train.epochs}
        return PlannedRun(name, tuned.case, f"{tuned.group}-trials", {"seed": seed}, config, search)

    def confirm_runs(self, tuned: TunedGroup, number: int, params: dict[str, Any], study: dict[str, Any]) -> list[PlannedRun]:
        """The tuned group's confirmation runs: its fixed runs' configs with the best trial's (`number`) values."""
        search = {**study, "group": tuned.group, "trial": number, "params": params, "role": "confirm"}
        return [PlannedRun(name, tuned.case, tuned.tuned, grid,
                           self.build(name, [*overrides, *self.profile_overrides, *self.param_overrides(params)]), search)
                for name, grid, overrides in tuned.confirm]

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
    settings = spec.profiles[profile] if profile is not None else {}
    profile_overrides = _overrides(experiment, {k: v for k, v in settings.items() if k not in PROFILE_KEYS}, f"profiles.{profile}")
    search = spec.profile_search(profile)
    subdir = profile or ""
    plan = Plan(experiment, profile, [], experiment.output(spec.runs_dir) / subdir, experiment.output(spec.results_dir) / subdir,
                search, (), tuple(profile_overrides))
    runs: list[PlannedRun] = []
    tuned: dict[str, TunedGroup] = {}
    axes = [experiment.spec.axis(key) for key in spec.grid]
    for case in spec.profile_cases(profile):
        case_overrides = _overrides(experiment, spec.cases[case], f"cases.{case}") if case else []
        searched = search is not None and (search.cases is None or case in search.cases)
        for combo in itertools.product(*axes):
            labels = {key: label for key, (label, _, _) in zip(spec.grid, combo)}
            name = "-".join(([case] if case else []) + list(labels.values()))
            grid_overrides = [Override(key, value, experiment.where(path)) for key, (_, value, path) in zip(spec.grid, combo)]
            config = plan.build(name, [*case_overrides, *grid_overrides, *profile_overrides])
            grid = {key: value for key, (_, value, _) in zip(spec.grid, combo)}
            group = spec.group(case, labels)
            runs.append(PlannedRun(name, case, group, grid, config))
            if searched:
                kept = [o for o in grid_overrides if o.key not in spec.averaged]
                tuned_group = "-".join([case or "", TUNED, *(labels[o.key] for o in kept)]).lstrip("-")
                entry = tuned.setdefault(group, TunedGroup(group, case, {o.key: o.value for o in kept},
                                                           (*case_overrides, *kept), tuned_group, ()))
                confirm_name = "-".join(([case] if case else []) + [TUNED] + list(labels.values()))
                confirm = (confirm_name, grid, (*case_overrides, *grid_overrides))
                tuned[group] = dataclasses.replace(entry, confirm=(*entry.confirm, confirm))
    plan = dataclasses.replace(plan, runs=runs, tuned=tuple(tuned.values()))
    _check_distinct(runs, experiment.path)
    if search is not None:
        _check_search(plan, search)
    return plan


def _check_search(plan: Plan, search: SearchSpec) -> None:
    """Every searched key makes a valid config at its bounds (and each choice), in trials and confirmation runs alike,
    and the tuning seeds are not confirmation seeds (a tuned value must be confirmed on runs it was not chosen on)."""
    if not plan.tuned:
        raise ConfigError(f"{plan.experiment.where('search')}: search: no case to tune in profile {plan.profile}")
    first = plan.tuned[0]
    middle = {d.key: d.choices[0] if d.kind == "choice" else d.low for d in search.dimensions}
    for dimension in search.dimensions:
        for value in dimension.bounds():
            params = {**middle, dimension.key: value}
            plan.trial_run(first, 0, params, {})
            plan.confirm_runs(first, 0, params, {})
    confirmation = {run.config.seed for t in plan.tuned for run in plan.confirm_runs(t, 0, middle, {})}
    shared = sorted(confirmation & set(search.seeds))
    if shared:
        raise ConfigError(f"{plan.experiment.where('search.seeds')}: search.seeds: {', '.join(map(str, shared))} "
                          f"{'is a confirmation seed' if len(shared) == 1 else 'are confirmation seeds'} (the runs that judge "
                          f"the tuned values: seeds {', '.join(map(str, sorted(confirmation)))}); tuning seeds must be disjoint from them")


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
