"""What each run of a Slurm sweep asks Slurm for: the experiment file's `slurm:` section, overridden
by the command line (`--partition`, `--time`, ...), turned into `#SBATCH` lines.

Validated with the rest of the experiment file (a bad value names the file's line), so a typo fails
before anything is submitted rather than in sbatch's own words after.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any

from dilbench.errors import UsageError
from dilbench.typed.validate import FieldError, build, join

TIME = re.compile(r"^((\d+-)?\d+(:\d+){0,2}|UNLIMITED|INFINITE)$")  # Slurm's: minutes, MM:SS, H:MM:SS, D-H, D-H:MM, D-H:MM:SS
MEMORY = re.compile(r"^\d+[KMGT]?$")  # Slurm's --mem: megabytes, or with a unit
OURS = ("--array", "--output", "--open-mode", "--chdir", "--job-name")  # the launcher's own: the task mapping depends on them


@dataclass(frozen=True)
class SlurmResources:
    """Per run (one array task each); None leaves the cluster's default."""

    partition: str | None = None
    time: str | int | None = None  # time limit: minutes (30), H:MM:SS or D-H:MM:SS
    cpus_per_run: int | None = None  # --cpus-per-task; also the run's TensorFlow threads
    gpus_per_run: int | None = None  # --gres=gpu:N
    mem: str | int | None = None  # --mem: megabytes (4000) or with a unit (16G)
    sbatch_options: tuple[str, ...] = ()  # any other sbatch options, e.g. [--account=lab, --qos=high]

    def __post_init__(self) -> None:
        for name, pattern, example in (("time", TIME, "30, 2:00:00 or 1-12:00:00"), ("mem", MEMORY, "4000 or 16G")):
            value = getattr(self, name)
            if value is None:
                continue
            if not pattern.match(str(value)):
                raise FieldError(name, f"expected Slurm's format, e.g. {example}; got {value!r}")
            object.__setattr__(self, name, str(value))
        for name in ("cpus_per_run", "gpus_per_run"):
            value = getattr(self, name)
            if value is not None and value < (1 if name == "cpus_per_run" else 0):
                raise FieldError(name, f"must be >= {1 if name == 'cpus_per_run' else 0}, got {value}")
        for i, option in enumerate(self.sbatch_options):
            if not option.startswith("-"):
                raise FieldError(join("sbatch_options", i), f"expected an sbatch option such as --account=lab, got {option!r}")
            if option.split("=", 1)[0] in OURS:
                raise FieldError(join("sbatch_options", i), f"{option.split('=', 1)[0]} is set by the launcher (one array task per run)")

    def override(self, given: dict[str, Any]) -> SlurmResources:
        """These resources with the command line's values on top (None: not given); sbatch options add up.
        UsageError naming the command-line option if a value is wrong."""
        values = {key: value for key, value in given.items() if value not in (None, ())}
        values["sbatch_options"] = (*self.sbatch_options, *given.get("sbatch_options", ()))
        try:
            return build(SlurmResources, {**dataclasses.asdict(self), **values})
        except FieldError as err:
            raise UsageError("; ".join(f"{_flag(e.path)}: {e.message}" for e in err.errors)) from None

    def directives(self) -> list[str]:
        """The sbatch options these resources make, in the order they are written (a later one wins)."""
        options = [
            f"--partition={self.partition}" if self.partition else None,
            f"--time={self.time}" if self.time else None,
            f"--cpus-per-task={self.cpus_per_run}" if self.cpus_per_run else None,
            f"--gres=gpu:{self.gpus_per_run}" if self.gpus_per_run else None,
            f"--mem={self.mem}" if self.mem else None,
        ]
        return [option for option in options if option] + list(self.sbatch_options)


def _flag(path: str) -> str:
    """The command-line option of a key: `cpus_per_run` -> `--cpus-per-run`, `sbatch_options[0]` -> `--sbatch-option`."""
    return "--sbatch-option" if path.startswith("sbatch_options") else f"--{path.replace('_', '-')}"
