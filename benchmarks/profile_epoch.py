"""Where a Trainer epoch's time goes, component by component: wall and CPU seconds.

    python benchmarks/profile_epoch.py [CONFIG] [--epochs 4] [--set KEY=VALUE ...]

A real run of CONFIG (default: the quickstart) into a temporary run directory with every listener a run
has, each timed: the training batches (metrics.jsonl's train_seconds), evaluation, the checkpoints (best
and latest saves apart), metrics.jsonl, the TensorBoard events (weight histograms included) and the plots.
The first epoch traces the compiled functions and is left out; medians over the others are printed.
CPU seconds are the process's (all its threads), so they count the work whatever the machine's load,
while wall seconds say what an epoch waits for. Works on any version of dilbench on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from dilbench.config import load_config
from dilbench.data import load_data
from dilbench.report.run_plots import RunPlots
from dilbench.runs.events import RunEvents
from dilbench.runs.metrics import MetricsWriter
from dilbench.runs.rundir import RunDir
from dilbench.training.checkpoints import RunCheckpoints
from dilbench.training.trainer import Trainer


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", nargs="?", default="configs/quickstart.yaml")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    config = load_config(args.config, args.overrides)
    config = replace(config, train=replace(config.train, epochs=args.epochs))
    times: dict[str, list[tuple[float, float]]] = {}

    def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*a: Any, **k: Any) -> Any:
            wall, cpu = time.perf_counter(), cpu_seconds()
            result = function(*a, **k)
            times.setdefault(name, []).append((time.perf_counter() - wall, cpu_seconds() - cpu))
            return result
        return call

    with tempfile.TemporaryDirectory(prefix="dilbench-profile-") as tmp:
        run = RunDir.create(tmp, config.name)
        trainer = Trainer(config, load_data(config.data, config.seed), where=str(run.path))
        checkpoints = RunCheckpoints(trainer, run)
        checkpoints.best.save = timed("  checkpoint best/", checkpoints.best.save)  # type: ignore[method-assign]
        checkpoints.latest.save = timed("  checkpoint latest/", checkpoints.latest.save)  # type: ignore[method-assign]
        events = RunEvents(run, config)
        listeners = [MetricsWriter(run), checkpoints, events, RunPlots(run.plots, config.name)]
        for listener in listeners:
            listener.epoch_ended = timed(type(listener).__name__, listener.epoch_ended)  # type: ignore[method-assign]
        trainer.listeners += listeners
        trainer.evaluate = timed("evaluate", trainer.evaluate)  # type: ignore[method-assign]
        train_epoch = timed("epoch (batches + evaluation)", trainer._train_epoch)
        trains: list[float] = []

        def epoch(*a: Any) -> dict[str, Any]:
            record = train_epoch(*a)
            trains.append(record["train_seconds"])
            return record

        trainer._train_epoch = epoch  # type: ignore[method-assign]
        trainer.train()
    print(f"{config.name}: {args.epochs} epochs, medians of epochs 2-{args.epochs}")
    print(f"{'training batches (train_seconds)':34s} wall {statistics.median(trains[1:]):7.3f}")
    for name, values in times.items():
        later = values[1:] if len(values) == args.epochs else values  # best/ is saved only when it improves
        wall, cpu = (statistics.median(v[i] for v in later) for i in (0, 1))
        print(f"{name:34s} wall {wall:7.3f}  cpu {cpu:7.3f}  ({len(later)} calls)")


if __name__ == "__main__":
    main()
