"""The example configs and experiments: found by name, listed, copied out.

They live at the repository's top level (`configs/`, `experiments/<name>/`), the one copy in git, so
`dilbench train configs/unfair_back.yaml` works from a checkout. Building the wheel copies them into the
package as `dilbench/bundled/` (setup.py), so `dilbench train quickstart` works from any directory of an
install: an argument that is not an existing path is looked up among them. A path always wins over a
name, so a local `quickstart` file (or directory) is never shadowed. `dilbench init DIR` copies them out
in the same layout, so the experiments' relative `base:` paths still work.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from dilbench.errors import UsageError

PACKAGE = Path(__file__).parent
# an installed wheel carries them inside the package; a checkout (an editable install too) at its top level
ROOT = PACKAGE / "bundled" if (PACKAGE / "bundled").is_dir() else PACKAGE.parent
CONFIGS = ROOT / "configs"
EXPERIMENTS = ROOT / "experiments"
EXPERIMENT_FILE = "experiment.yaml"


@dataclass(frozen=True)
class Example:
    name: str
    path: Path


def bundled_configs() -> list[Example]:
    return [Example(path.stem, path) for path in sorted(CONFIGS.glob("*.yaml"))]


def bundled_experiments() -> list[Example]:
    return [Example(path.parent.name, path) for path in sorted(EXPERIMENTS.glob(f"*/{EXPERIMENT_FILE}"))]


def config_summary(path: Path) -> str:
    """One line saying what a run config trains: model, schedule, data, epochs, precision."""
    from dilbench.config import load_config

    c = load_config(path)
    augmented = f", {c.augmentation.mode} augmentation" if c.augmentation.mode != "none" else ""
    subset = f" ({c.data.train_subset} images)" if c.data.train_subset else ""
    return (f"{c.model.name}, {c.schedule.name} schedule{augmented}, {c.data.dataset}{subset}, "
            f"{c.train.epochs} epochs, {c.precision}")


def experiment_summary(path: Path) -> str:
    """The start of an experiment's `about`, cut at a word to fit a terminal line."""
    from dilbench.sweep.experiment import load_experiment

    about = " ".join(load_experiment(path).spec.about.split()).split(". ")[0].rstrip(".")
    return about if len(about) <= 90 else about[:90].rsplit(" ", 1)[0].rstrip(",:;") + " ..."


def resolve_config(argument: str) -> Path:
    """The config file `argument` names: an existing path, else a bundled config name (`quickstart`)."""
    path = Path(argument)
    if path.exists() or _looks_like_path(argument):
        return path
    bundled = CONFIGS / f"{argument.removesuffix('.yaml')}.yaml"
    if bundled.is_file():
        return bundled
    names = ", ".join(example.name for example in bundled_configs())
    raise UsageError(f"{argument}: no such file, nor a bundled config name ({names}); "
                     "`dilbench configs` lists them, `dilbench init` copies them out to edit")


def resolve_experiment(argument: str) -> tuple[Path, Path | None]:
    """The experiment file `argument` names, and where its runs and results go if not beside it.

    A path (a directory means its experiment.yaml) writes beside the file. A bundled experiment name
    (`unfair_backprop`) writes under ./experiments/<name>/ instead: the installed package is no place
    for a user's runs.
    """
    path = Path(argument)
    if path.is_dir():
        return path / EXPERIMENT_FILE, None
    if path.exists() or _looks_like_path(argument):
        return path, None
    bundled = EXPERIMENTS / argument / EXPERIMENT_FILE
    if bundled.is_file():
        return bundled, Path("experiments") / argument
    names = ", ".join(example.name for example in bundled_experiments())
    raise UsageError(f"{argument}: no such file, nor a bundled experiment name ({names}); "
                     "`dilbench configs` lists them, `dilbench init` copies them out to edit")


def _looks_like_path(argument: str) -> bool:
    """`configs/x.yaml` or `./x` was meant as a path: report it missing rather than guess a name."""
    return "/" in argument or "\\" in argument


def init(target: Path) -> list[Path]:
    """Copy every bundled config and experiment definition into `target`; returns the files written.

    Results pages and run directories stay behind (they are ours, not templates). Nothing is
    overwritten: if any file exists already, nothing is copied and the error names it.
    """
    sources = [path for path in CONFIGS.iterdir() if path.is_file()]
    for experiment in bundled_experiments():
        sources += [path for path in experiment.path.parent.iterdir() if path.is_file()]
    pairs = [(source, target / source.relative_to(ROOT)) for source in sorted(sources)]
    existing = [dest for _, dest in pairs if dest.exists()]
    if existing:
        raise UsageError(f"{existing[0]} exists already ({len(existing)} of {len(pairs)} files would be overwritten); "
                         "choose another directory: dilbench init DIR")
    for source, dest in pairs:
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
    return [dest for _, dest in pairs]
