"""`dilbench bench`: time each schedule's training step, and Keras `model.fit`, side by side in one process.

Wall times on a shared machine are noisy, so methods are timed in interleaved rounds and compared by
their medians. Keras `model.fit` is timed over whole fit epochs of at least FIT_STEPS steps per call,
so its per-call start-up (callbacks, a new data iterator) is not charged to a few steps, and the
standard step it is compared with is timed over as many steps right before it in every round. Each unfair
schedule's measured cost relative to `standard` is set against a FLOP model of the work it must do:

- forward of a group i costs F_i; backward costs F_i for its weight gradient and F_i for its input
  gradient, and the lowest group a pass backprops to needs no input gradient;
- standard: F(1..L) + W(1..L) + I(2..L);
- unfair_back: F(1..L) + sum over k=2..L of F(L-k+1..L) [recomputed from cached inputs]
  + sum over k=1..L of W(L-k+1..L) + I(L-k+2..L);
- unfair_front: sum over k=1..L of F(1..L) + I(2..L) + W(1..k).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace

import numpy as np
import tensorflow as tf

from dilbench.config import Config
from dilbench.models.summary import group_flops
from dilbench.schedules import SCHEDULES
from dilbench.training.batches import without_autotune
from dilbench.training.step import TrainingStep

FIT_STEPS = 50  # the fewest steps one model.fit call is timed over


def predicted_cost(schedule: str, flops: list[int]) -> float:
    """FLOPs of one batch of `schedule` per example, from per-group forward FLOPs (module docstring)."""
    L = len(flops)
    F = lambda a, b: float(sum(flops[a:b]))  # forward FLOPs of groups a..b-1, 0-based
    if schedule == "standard":
        return F(0, L) + F(0, L) + F(1, L)
    if schedule == "unfair_back":
        recompute = sum(F(L - k, L) for k in range(2, L + 1))
        backward = sum(F(L - k, L) + F(L - k + 1, L) for k in range(1, L + 1))
        return F(0, L) + recompute + backward
    if schedule == "unfair_front":
        return sum(F(0, L) + F(1, L) + F(0, k) for k in range(1, L + 1))
    raise KeyError(schedule)


@dataclass(frozen=True)
class BenchRow:
    method: str
    seconds_per_step: float
    images_per_s: float
    relative: float  # time per step / standard's
    predicted: float | None  # FLOP-model time ratio to standard


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


def _keras_fit(config: Config, image_shape: tuple[int, ...], num_classes: int, data: tf.data.Dataset):
    """The same model, compiled the way a Keras user would: Adam/SGD, sparse CE from logits, accuracy."""
    import keras

    from dilbench.models import build_model
    from dilbench.training.runtime import POLICIES

    model = build_model(config.model, image_shape, num_classes, POLICIES[config.precision], config.seed)
    opt = config.optimizer
    optimizer = (
        keras.optimizers.Adam(opt.lr, beta_1=opt.beta1, beta_2=opt.beta2, epsilon=opt.epsilon)
        if opt.name == "adam" else keras.optimizers.SGD(opt.lr, momentum=opt.momentum, nesterov=opt.nesterov)
    )
    if config.precision == "float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=config.train.xla)
    data = data.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y))

    def run(steps: int) -> float:
        start = time.perf_counter()
        model.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False)
        return time.perf_counter() - start

    return run


def run_bench(config: Config, image_shape: tuple[int, ...], num_classes: int, steps: int = 20, rounds: int = 3,
              schedules: tuple[str, ...] = tuple(SCHEDULES), keras_baseline: bool = True) -> list[BenchRow]:
    """Median seconds per step of each schedule (and Keras fit) at the config's model, batch and precision."""
    batch = config.train.batch_size
    data = synthetic_batches(image_shape, num_classes, batch, 8, config.seed)
    fit_steps = max(steps, FIT_STEPS)
    timers = {}  # name -> a timing of seconds per step
    for name in schedules:
        step = TrainingStep.build(replace(config, schedule=SCHEDULES[name].config()), image_shape, num_classes).train
        iterator = iter(data)
        time_steps(step, iterator, 2)  # trace and warm up
        n = fit_steps if keras_baseline and name == "standard" else steps
        timers[name] = lambda step=step, iterator=iterator, n=n: time_steps(step, iterator, n) / n
    if keras_baseline:
        fit = _keras_fit(config, image_shape, num_classes, data)
        fit(2)
        timers["keras_fit"] = lambda: fit(fit_steps) / fit_steps
    samples: dict[str, list[float]] = {name: [] for name in timers}
    back_to_back = sorted(timers, key=lambda name: name not in ("standard", "keras_fit"))  # a shared machine drifts
    for _ in range(rounds):
        for name in back_to_back:
            samples[name].append(timers[name]())
    flops = group_flops(config.model, image_shape, num_classes)
    standard = statistics.median(samples["standard"]) if "standard" in samples else None
    rows = []
    for name, values in samples.items():
        per_step = statistics.median(values)
        predicted = predicted_cost(name, flops) / predicted_cost("standard", flops) if name in SCHEDULES else 1.0
        rows.append(BenchRow(name, per_step, batch / per_step, per_step / standard if standard else float("nan"), predicted))
    return rows


def format_bench(rows: list[BenchRow], title: str) -> str:
    lines = [title, f"{'method':<14}{'ms/step':>10}{'img/s':>10}{'vs standard':>13}{'FLOP model':>12}{'measured/model':>16}"]
    for r in rows:
        ratio = r.relative / r.predicted if r.predicted else float("nan")
        lines.append(f"{r.method:<14}{r.seconds_per_step * 1e3:>10.1f}{r.images_per_s:>10.1f}{r.relative:>12.2f}x"
                     f"{r.predicted:>11.2f}x{ratio:>16.2f}")
    std = {r.method: r for r in rows}
    if "keras_fit" in std and "standard" in std:
        ratio = std["standard"].images_per_s / std["keras_fit"].images_per_s
        lines.append(f"standard step throughput vs Keras model.fit: {ratio:.2f}x; model.fit vs the standard step: {1 / ratio:.2f}x"
                     f" (each timed over {FIT_STEPS}+ steps, back to back, every round)")
    return "\n".join(lines)
