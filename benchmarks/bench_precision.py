"""bfloat16 vs float32 training throughput, side by side in one process (interleaved rounds).

    python benchmarks/bench_precision.py configs/allconv_standard.yaml [--set KEY=VALUE ...]

Times the config's training step (its schedule, model and batch) at float32 and at bfloat16 mixed
precision on random images, and prints images/s and the speed-up. Issue 4's target on this AMX CPU:
bfloat16 >= 3x float32 on the 9-layer net.
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import replace

import click


@click.command()
@click.argument("config")
@click.option("--set", "overrides", multiple=True)
@click.option("--steps", default=10)
@click.option("--rounds", default=3)
def main(config: str, overrides: tuple[str, ...], steps: int, rounds: int) -> None:
    from dilbench.config import load_config
    from dilbench.models.summary import input_spec
    from dilbench.training.bench import synthetic_batches, time_steps
    from dilbench.training.step import TrainingStep

    cfg = load_config(config, overrides)
    shape, classes = input_spec(cfg.data.dataset, None, None)
    data = synthetic_batches(shape, classes, cfg.train.batch_size, 8, cfg.seed)
    timers = {}
    for precision in ("float32", "bfloat16"):
        step = TrainingStep.build(replace(cfg, precision=precision), shape, classes).train
        iterator = iter(data)
        time_steps(step, iterator, 2)
        timers[precision] = (step, iterator)
    samples = {p: [] for p in timers}
    for _ in range(rounds):
        for precision, (step, iterator) in timers.items():
            samples[precision].append(time_steps(step, iterator, steps) / steps)
    rate = {p: cfg.train.batch_size / statistics.median(s) for p, s in samples.items()}
    print(f"{cfg.model.name}, {cfg.schedule.name}, batch {cfg.train.batch_size}: median of {rounds} rounds x {steps} steps")
    for precision, value in rate.items():
        print(f"  {precision:<9} {value:8.1f} img/s")
    print(f"  bfloat16 / float32 = {rate['bfloat16'] / rate['float32']:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
