"""`dilbench bench`: time each schedule's training step, and Keras `model.fit`, side by side in one process.

Wall times on a shared machine are noisy, so methods are timed in interleaved rounds and compared by
their medians. Keras `model.fit` is timed over whole fit epochs of at least FIT_STEPS steps per call,
so its per-call start-up (callbacks, a new data iterator) is not charged to a few steps, and the
standard step it is compared with is timed over as many steps right before it in every round. Each
schedule's measured cost relative to `standard` is set against the FLOP model of its sub-steps
(schedules/plan.py `cost`): forward F_i, weight gradient F_i and input gradient F_i per group i, no input
gradient below a sub-step's lowest group, forward passes from cached inputs where nothing below has changed.

Timed: the three named schedules, the config's own schedule when it is custom, and, when the config
has FreezeOut, the config's schedule under FreezeOut: each set of frozen groups the run goes through is
compiled and timed, and the row is their average weighted by the fraction of training spent in each,
against the same average of the cost model; that is the run's FreezeOut saving.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import tensorflow as tf

from dilbench.config import Config
from dilbench.optimizers import AdamConfig
from dilbench.schedules import SCHEDULES, ScheduleConfig
from dilbench.schedules.freezeout import freeze_points
from dilbench.tables import text_table
from dilbench.training.batches import without_autotune
from dilbench.training.step import TrainingStep

FIT_STEPS = 50  # the fewest steps one model.fit call is timed over


def named_schedules() -> tuple[str, ...]:
    """Every schedule with a pattern of its own (plugins' included): what `bench` times."""
    return tuple(name for name, entry in SCHEDULES.items() if entry.pattern is not None)


@dataclass(frozen=True)
class BenchRow:
    method: str
    seconds_per_step: float
    images_per_s: float
    relative: float  # time per step / standard's
    predicted: float  # FLOP-model time ratio to standard


def synthetic_batches(image_shape: tuple[int, ...], num_classes: int, batch_size: int, count: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (count * batch_size, *image_shape), dtype=np.uint8)
    y = rng.integers(0, num_classes, count * batch_size).astype(np.int64)
    return without_autotune(tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).repeat().prefetch(2))


def time_steps(step, iterator, steps: int) -> float:
    """Seconds for `steps` training steps, reading the loss back each step as the Trainer does."""
    start = time.perf_counter()
    for _ in range(steps):
        x, y = next(iterator)
        float(step(x, y)[0])
    return time.perf_counter() - start


def seconds_per_step(step, iterator, steps: int) -> float:
    return time_steps(step, iterator, steps) / steps


def _keras_fit(config: Config, image_shape: tuple[int, ...], num_classes: int, data: tf.data.Dataset):
    """The same model, compiled the way a Keras user would: Adam/SGD, sparse CE from logits, accuracy."""
    import keras

    from dilbench.models import build_model
    from dilbench.training.runtime import POLICIES

    model = build_model(config.model, image_shape, num_classes, POLICIES[config.precision], config.seed)
    opt = config.optimizer
    optimizer = (
        keras.optimizers.Adam(opt.lr, beta_1=opt.beta1, beta_2=opt.beta2, epsilon=opt.epsilon)
        if isinstance(opt, AdamConfig) else keras.optimizers.SGD(opt.lr, momentum=opt.momentum, nesterov=opt.nesterov)
    )
    if config.precision == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=config.runtime.xla)
    data = data.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y))

    def run(steps: int) -> float:
        start = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
        return time.perf_counter() - start

    return run


def _configs(config: Config) -> dict[str, Config]:
    """Method name -> the config whose step it times."""
    plain = replace(config, schedule=replace(config.schedule, freezeout=None))
    named = named_schedules()
    configs = {name: replace(plain, schedule=ScheduleConfig(name)) for name in named}
    if config.schedule.name not in named:
        configs[config.schedule.name] = plain
    if config.schedule.freezeout:
        configs[f"{config.schedule.name}+freezeout"] = config
    return configs


def phases(config: Config, num_groups: int) -> dict[int, float]:
    """{frozen groups: fraction of the run's batches}: one phase without FreezeOut."""
    if not config.schedule.freezeout:
        return {0: 1.0}
    points = [0.0, *freeze_points(config.schedule.freezeout, num_groups)]
    return {k: points[k + 1] - points[k] for k in range(num_groups) if points[k + 1] > points[k]}


def run_bench(config: Config, image_shape: tuple[int, ...], num_classes: int, steps: int = 20, rounds: int = 3,
              keras_baseline: bool = True) -> list[BenchRow]:
    """Median seconds per step of each schedule (and Keras fit) at the config's model, batch and precision."""
    batch = config.train.batch_size
    data = synthetic_batches(image_shape, num_classes, batch, 8, config.seed)
    fit_steps = max(steps, FIT_STEPS)
    timers: dict[tuple[str, int], Callable[[], float]] = {}
    fractions: dict[str, dict[int, float]] = {}
    costs: dict[tuple[str, int], float] = {}
    for name, method in _configs(config).items():
        built = TrainingStep.build(method, image_shape, num_classes)
        fractions[name] = phases(method, built.model.num_groups)
        for frozen in fractions[name]:
            costs[(name, frozen)] = built.flops_per_example(frozen)
            step = built.train_step(frozen)
            iterator = iter(data)
            time_steps(step, iterator, 2)  # trace and warm up
            n = fit_steps if keras_baseline and name == "standard" else steps
            timers[(name, frozen)] = functools.partial(seconds_per_step, step, iterator, n)
    if keras_baseline:
        fit = _keras_fit(config, image_shape, num_classes, data)
        fit(2)
        timers[("keras_fit", 0)] = lambda: fit(fit_steps) / fit_steps
        fractions["keras_fit"], costs[("keras_fit", 0)] = {0: 1.0}, costs[("standard", 0)]
    samples: dict[tuple[str, int], list[float]] = {key: [] for key in timers}
    back_to_back = sorted(timers, key=lambda key: key[0] not in ("standard", "keras_fit"))  # a shared machine drifts
    for _ in range(rounds):
        for key in back_to_back:
            samples[key].append(timers[key]())
    medians = {key: statistics.median(values) for key, values in samples.items()}
    standard_time, standard_cost = medians[("standard", 0)], costs[("standard", 0)]
    rows = []
    for name, phase in fractions.items():
        per_step = sum(share * medians[(name, k)] for k, share in phase.items())
        cost = sum(share * costs[(name, k)] for k, share in phase.items())
        rows.append(BenchRow(name, per_step, batch / per_step, per_step / standard_time, cost / standard_cost))
        for k, share in phase.items() if len(phase) > 1 else ():
            rows.append(BenchRow(f"  {k} frozen ({share:.0%})", medians[(name, k)], batch / medians[(name, k)],
                                 medians[(name, k)] / standard_time, costs[(name, k)] / standard_cost))
    return rows


def format_bench(rows: list[BenchRow], title: str) -> str:
    cells = [[r.method, f"{r.seconds_per_step * 1e3:.1f}", f"{r.images_per_s:.1f}", f"{r.relative:.2f}x", f"{r.predicted:.2f}x",
              f"{r.relative / r.predicted:.2f}"] for r in rows]
    header = ["method", "ms/step", "img/s", "vs standard", "FLOP model", "measured/model"]
    lines = [title, text_table(cells, header, [False] + [True] * 5)]
    std = {r.method: r for r in rows}
    if "keras_fit" in std and "standard" in std:
        ratio = std["standard"].images_per_s / std["keras_fit"].images_per_s
        lines.append(f"standard step throughput vs Keras model.fit: {ratio:.2f}x; model.fit vs the standard step: {1 / ratio:.2f}x"
                     f" (each timed over {FIT_STEPS}+ steps, back to back, every round)")
    if any(r.method.startswith("  ") for r in rows):
        lines.append("FreezeOut: its row is the run's average over the phases below (groups frozen, share of the run's batches)")
    return "\n".join(lines)
