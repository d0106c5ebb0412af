"""A search's run as the sweep's child process: train it like `dilbench train`, and report to its study.

    python -m dilbench.sweep.trial train CONFIG --runs-dir DIR --trial SPEC.json
    python -m dilbench.sweep.trial train --resume RUN_DIR --trial SPEC.json

SPEC.json (written by the sweep, `<runs dir>/.sweep/trials/<run>.json`) names the study's journal, the trial
number, its values and role, the metric and the pruner. The run directory is an ordinary one; its meta.json
gets `search` (study, group, trial, params, role) from the start.

A tuning run (role `tune`) reports to its study from its own process, through a training listener that runs
after the epoch's record, checkpoints and events are written: after each epoch it reports the metric so far
and asks the pruner whether to stop; if so the run ends `pruned` (launch's RunPruned, exit code 0). Why the
trial's own process and not the sweep watching metrics.jsonl: it needs no parent, so it works the same in
a local sweep, in a Slurm array task on another node, and after the sweep that started it was killed with
kill -9 (children run in their own session and go on). At the end it tells the study COMPLETE with the
metric. The run directory is always written first and the journal second, so a kill in between leaves a
RUNNING trial whose run says completed or pruned, which the next sweep reconciles (tuning.py).

A run that diverges (a non-finite loss or weights: the trainer's RunFailed) is a finished trial that cost
its epochs, and its values are bad ones: it reports NaN for the epoch that diverged and is told PRUNED with
the outcome `diverged`, which TPE ranks below every other pruned trial at that epoch. Its run directory
says `failed`, as any failed run's does. Any other failure (a killed machine, a full disk) leaves the
trial RUNNING: the next sweep resumes the run, as it resumes any failed run.

A confirmation run (role `confirm`) only trains and records its `search` block.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

from dilbench.errors import DilbenchError
from dilbench.launch import RunPruned
from dilbench.runs.hooks import DEFAULT_TIMEOUT, Hook
from dilbench.sweep.search import metric_value
from dilbench.training.listeners import Record, Trainer, TrainingListener

log = logging.getLogger("dilbench")


class StudyLink:
    """The trial's study, opened from its spec: report, ask the pruner, tell."""

    def __init__(self, spec: dict[str, Any]):
        import optuna

        from dilbench.sweep.search import Pruner
        from dilbench.sweep.study import make_pruner, storage
        from dilbench.typed.validate import convert

        self.spec = spec
        pruner = make_pruner(convert(Pruner, spec["pruner"], "pruner"))
        self.study = optuna.load_study(study_name=spec["study"], storage=storage(Path(spec["journal"])), pruner=pruner,
                                       sampler=optuna.samplers.RandomSampler())
        self.number = int(spec["trial"])
        trial_id = self.study._storage.get_trial_id_from_study_id_trial_number(self.study._study_id, self.number)
        self.trial = optuna.trial.Trial(self.study, trial_id)

    def value(self, records: list[Record]) -> float | None:
        return metric_value(records, self.spec["metric"], self.spec["direction"])

    def report(self, value: float, epoch: int) -> None:
        if epoch not in self.study._storage.get_trial(self.trial._trial_id).intermediate_values:
            self.trial.report(value, epoch)

    def should_prune(self) -> bool:
        return self.trial.should_prune()

    def tell(self, state: str, value: float | None = None, why: str = "") -> None:
        import optuna

        if why:
            self.trial.set_user_attr("outcome", why)
        self.study.tell(self.number, value if state == "COMPLETE" else None, state=optuna.trial.TrialState[state],
                        skip_if_finished=True)


class TrialReporter(TrainingListener):
    """After each epoch's outputs: report the metric so far to the study and stop the run if the pruner says so."""

    def __init__(self, link: StudyLink, epochs: int):
        self.link = link
        self.epochs = epochs

    def epoch_ended(self, trainer: Trainer, records: list[Record]) -> None:
        epoch = len(records)
        value = self.link.value(records)
        if value is None:
            return
        self.link.report(value, epoch)
        if epoch < self.epochs and self.link.should_prune():
            metric = self.link.spec["metric"]
            raise RunPruned(f"trial {self.link.number} of study {self.link.spec['study']}: {metric} {value:.4f} after epoch "
                            f"{epoch} of {self.epochs}, and the pruner stopped it there")


def run(args: argparse.Namespace, command: list[str]) -> Path:
    from dilbench.config import load_config
    from dilbench.launch import resume_run, start_run

    spec = json.loads(Path(args.trial).read_text())
    tuning = spec.get("role") == "tune"
    link = StudyLink(spec) if tuning else None
    listeners = [TrialReporter(link, int(spec["epochs"]))] if link else []
    hook = Hook(args.on_end, args.hook_timeout) if args.on_end else None
    meta = {"search": {key: spec[key] for key in ("study", "study_id", "group", "trial", "params", "role") if key in spec}}
    try:
        if args.resume:
            run_dir = resume_run(args.resume, command, on_end=hook, listeners=listeners)
        else:
            run_dir = start_run(load_config(args.config), args.runs_dir, command, on_end=hook, listeners=listeners,
                                meta=meta)
    except RunPruned:
        if link:
            link.tell("PRUNED")
        raise
    except DilbenchError as err:
        trainer = sys.modules.get("dilbench.training.trainer")
        if link and trainer is not None and isinstance(err, trainer.RunFailed):
            epochs = _epochs_done(args, spec)
            link.report(math.nan, epochs + 1)
            link.tell("PRUNED", why=f"diverged: {err}")
        raise
    if link:
        value = link.value(run_dir.read_metrics())
        link.tell("COMPLETE", value)
    return run_dir.path


def _epochs_done(args: argparse.Namespace, spec: dict[str, Any]) -> int:
    """Epochs recorded by the run that just failed (its directory: the resumed one, or the newest of its name)."""
    from dilbench.runs.rundir import RunDir

    if args.resume:
        return len(RunDir(Path(args.resume)).read_metrics())
    name = spec.get("run", "")
    runs = sorted(Path(args.runs_dir).glob(f"{name}-*-*-*")) if name else []
    return len(RunDir(runs[-1]).read_metrics()) if runs else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dilbench.sweep.trial", description=__doc__.split("\n\n")[0])
    parser.add_argument("train", choices=["train"])
    parser.add_argument("config", nargs="?")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--resume")
    parser.add_argument("--trial", required=True, help="the trial's spec (JSON), written by the sweep")
    parser.add_argument("--on-end", help="as dilbench train's: a shell command run when the run ends (hooks.on_run_end)")
    parser.add_argument("--hook-timeout", type=float, default=DEFAULT_TIMEOUT)
    args = parser.parse_args(argv)
    if bool(args.config) == bool(args.resume):
        parser.error("give CONFIG or --resume RUN_DIR")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    command = ["python", "-m", "dilbench.sweep.trial", *(argv if argv is not None else sys.argv[1:])]
    try:
        print(run(args, command))
        return 0
    except RunPruned as err:
        print(f"pruned: {err}", file=sys.stderr)
        return 0
    except DilbenchError as err:
        for line in str(err).splitlines() or [""]:
            print(f"Error: {line}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("Error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
