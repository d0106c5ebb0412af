"""The schedules, proved: exact update counts, a NumPy re-computation of each algorithm, cached == naive,
and the schedules-as-data engine bit-identical to the hand-written steps it replaced."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from dilbench.models import build_model
from dilbench.models.context import ContextModuleConfig
from dilbench.models.grouped import GroupedModel
from dilbench.optimizers import AdamConfig, AdamPublishedConfig, SGDConfig
from dilbench.optimizers.group import make_group_optimizers
from dilbench.optimizers.loss_scale import LossScale
from dilbench.schedules import ScheduleConfig, make_step, updates_per_batch
from dilbench.schedules.common import StepContext, cross_entropy, num_correct

LR = 0.5
ALL = [ScheduleConfig("standard"), ScheduleConfig("unfair_back"), ScheduleConfig("unfair_front")]


def context(model: GroupedModel, optimizer: AdamConfig | SGDConfig | None = None) -> StepContext:
    optimizer = optimizer or SGDConfig(lr=LR)
    groups = [[v.value for v in model.group_variables(i)] for i in range(model.num_groups)]
    return StepContext(model, make_group_optimizers(optimizer, groups), LossScale(False))


def toy_model(seed: int = 0) -> GroupedModel:
    """Two groups: tanh dense 5->4, then linear dense 4->3; the head has no parameters."""
    import keras

    rng = np.random.default_rng(seed)
    dense = lambda units, act, fan_in: keras.layers.Dense(
        units, activation=act,
        kernel_initializer=keras.initializers.Constant(rng.normal(0, 0.8, (fan_in, units))),
        bias_initializer=keras.initializers.Constant(rng.normal(0, 0.3, units)),
    )
    groups = [keras.Sequential([dense(4, "tanh", 5)]), keras.Sequential([dense(3, None, 4)])]
    return GroupedModel(groups, keras.layers.Identity(), (5,))


def numpy_grads(w1, b1, w2, b2, x, y):
    """Mean softmax cross-entropy gradients of logits = tanh(x w1 + b1) w2 + b2, by hand."""
    h = np.tanh(x @ w1 + b1)
    z = h @ w2 + b2
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    dz = (p - np.eye(3)[y]) / len(y)
    da = (dz @ w2.T) * (1 - h**2)
    return x.T @ da, da.sum(0), h.T @ dz, dz.sum(0)


def numpy_schedule(name: str, params, x, y):
    """One batch of `name` with plain SGD, step by step, exactly as DESIGN.md words it."""
    w1, b1, w2, b2 = (p.astype(np.float64) for p in params)
    if name == "standard":
        g = numpy_grads(w1, b1, w2, b2, x, y)
        return w1 - LR * g[0], b1 - LR * g[1], w2 - LR * g[2], b2 - LR * g[3]
    if name == "unfair_back":
        g = numpy_grads(w1, b1, w2, b2, x, y)  # sub-step 1: update group 2 only
        w2, b2 = w2 - LR * g[2], b2 - LR * g[3]
        g = numpy_grads(w1, b1, w2, b2, x, y)  # sub-step 2: from group 1's (cached) input, update both
        return w1 - LR * g[0], b1 - LR * g[1], w2 - LR * g[2], b2 - LR * g[3]
    g = numpy_grads(w1, b1, w2, b2, x, y)  # unfair_front sub-step 1: update group 1 only
    w1, b1 = w1 - LR * g[0], b1 - LR * g[1]
    g = numpy_grads(w1, b1, w2, b2, x, y)  # sub-step 2: update groups 1 and 2
    return w1 - LR * g[0], b1 - LR * g[1], w2 - LR * g[2], b2 - LR * g[3]


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: s.name)
def test_toy_model_matches_numpy(schedule):
    model = toy_model()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 2, 1, 0])
    before = [v.numpy() for v in model.trainable_variables]
    ctx = context(model)
    make_step(schedule, ctx)(tf.constant(x), tf.constant(y))
    expected = numpy_schedule(schedule.name, before, x.astype(np.float64), y)
    for got, want in zip(model.trainable_variables, expected):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)
    assert [int(o.updates) for o in ctx.optimizers] == updates_per_batch(schedule, 2)


def small_context_model(seed: int = 3) -> GroupedModel:
    cfg = ContextModuleConfig(channels=4, dilations=(1, 2, 4), hidden=(8,), init="normal")
    return build_model(cfg, (12, 12, 1), 10, "float32", seed)


def images(seed: int = 0, n: int = 8):
    rng = np.random.default_rng(seed)
    return tf.constant(rng.random((n, 12, 12, 1), dtype=np.float32)), tf.constant(rng.integers(0, 10, n))


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: s.name)
def test_exact_update_counts_per_batch(schedule):
    model = small_context_model()
    ctx = context(model, AdamConfig())
    step = tf.function(make_step(schedule, ctx))
    x, y = images()
    for _ in range(3):
        step(x, y)
    per_batch = {"standard": [1, 1, 1, 1], "unfair_back": [1, 2, 3, 4], "unfair_front": [4, 3, 2, 1]}[schedule.name]
    assert [int(o.updates) for o in ctx.optimizers] == [3 * n for n in per_batch]


def naive_unfair_back(ctx: StepContext):
    """unfair_back re-running the whole forward pass every sub-step: the reference for the cached one."""
    def step(x, y):
        for start in range(ctx.num_groups - 1, -1, -1):
            groups = range(start, ctx.num_groups)
            with tf.GradientTape() as tape:
                loss = cross_entropy(y, ctx.model(x, training=True))
            grads = tape.gradient(loss, ctx.flat_variables(groups))
            ctx.update_groups(groups)(grads)
    return step


def dropout_layers(model: GroupedModel) -> list:
    import keras

    return [layer for layer in model._flatten_layers() if isinstance(layer, keras.layers.Dropout)]


def test_cached_unfair_back_equals_naive():
    """Holds for a model without dropout (the context module): with dropout the two draw different masks
    (next test)."""
    cached_model, naive_model = small_context_model(), small_context_model()
    assert dropout_layers(cached_model) == []
    for a, b in zip(cached_model.variables, naive_model.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    cached = tf.function(make_step(ScheduleConfig("unfair_back"), context(cached_model, AdamConfig(lr=1e-2))))
    naive = tf.function(naive_unfair_back(context(naive_model, AdamConfig(lr=1e-2))))
    for seed in range(3):
        x, y = images(seed)
        cached(x, y)
        naive(x, y)
    for a, b in zip(cached_model.variables, naive_model.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)
    assert not np.allclose(cached_model.variables[0].numpy(), small_context_model().variables[0].numpy())


def masks_drawn(model: GroupedModel) -> list[int]:
    """Dropout masks each Dropout layer has drawn: its seed generator's counter advances once per draw."""
    return [int(layer.seed_generator.state.numpy()[1]) for layer in dropout_layers(model)]


@pytest.mark.parametrize("schedule", [*ALL, "naive unfair_back"], ids=lambda s: getattr(s, "name", s))
def test_dropout_masks_are_redrawn_at_every_training_forward_pass(schedule):
    """All-CNN-C (9 groups) has dropout on the input (group 1) and after layers 3 and 6. Every
    training-mode pass through a dropout layer draws a new mask, so per batch: standard 1 each;
    unfair_front 9 each (9 full passes); unfair_back min(g+1, 9) for group g, i.e. 2, 4, 7: the first
    pass, then one per sub-step starting at or below the group. Sub-steps starting above a group reuse its
    cached output, with the first pass's mask inside. The naive unfair_back reruns everything (9 each),
    so cached and naive agree only without dropout."""
    from dilbench.models.allcnn import AllCnnCConfig

    model = build_model(AllCnnCConfig(width=0.05), (16, 16, 3), 10, "float32", 0)
    ctx = context(model)
    step = tf.function(naive_unfair_back(ctx) if isinstance(schedule, str) else make_step(schedule, ctx))
    rng = np.random.default_rng(0)
    x, y = tf.constant(rng.random((4, 16, 16, 3), dtype=np.float32)), tf.constant(rng.integers(0, 10, 4))
    assert [layer.name for layer in dropout_layers(model)] == ["input_dropout", "dropout3", "dropout6"]
    assert masks_drawn(model) == [0, 0, 0]
    for _ in range(2):
        step(x, y)
    name = getattr(schedule, "name", "naive")
    per_batch = {"standard": [1, 1, 1], "unfair_back": [2, 4, 7], "unfair_front": [9, 9, 9], "naive": [9, 9, 9]}[name]
    assert masks_drawn(model) == [2 * n for n in per_batch]


def test_adam_bias_correction_follows_each_groups_own_count():
    """unfair_back, one batch: group 1 took 1 Adam step, group 2 took 2; the first Adam step of any
    variable moves every weight by lr (times sign of its gradient) whatever the gradient's size."""
    model = toy_model()
    before = [v.numpy() for v in model.group_variables(0)]
    ctx = context(model, AdamConfig(lr=1e-3, epsilon=1e-12))
    x = tf.constant(np.random.default_rng(1).normal(size=(6, 5)).astype(np.float32))
    make_step(ScheduleConfig("unfair_back"), ctx)(x, tf.constant([0, 1, 2, 2, 1, 0]))
    for b, a in zip(before, model.group_variables(0)):
        np.testing.assert_allclose(np.abs(a.numpy() - b), 1e-3, rtol=1e-3)
    assert int(ctx.optimizers[0].updates) == 1 and int(ctx.optimizers[1].updates) == 2


def test_float16_loss_scale_skips_overflowing_steps_and_halves():
    """Dynamic loss scaling: an overflowing step leaves weights and update counts alone and halves the
    scale; a finite step applies the unscaled gradients (the same update as without scaling)."""
    model, reference = toy_model(), toy_model()
    groups = [[v.value for v in model.group_variables(i)] for i in range(2)]
    optimizers = make_group_optimizers(SGDConfig(lr=LR), groups)
    scale = LossScale(True, initial=1024.0)
    ctx = StepContext(model, optimizers, scale)
    x = tf.constant(np.random.default_rng(1).normal(size=(6, 5)).astype(np.float32))
    y = tf.constant([0, 1, 2, 2, 1, 0])
    before = [v.numpy() for v in model.trainable_variables]
    scale.apply([tf.fill(tf.shape(v), np.inf) for v in ctx.flat_variables()], ctx.update_groups(range(2)))
    assert float(scale.scale) == 512.0 and [int(o.updates) for o in optimizers] == [0, 0]
    assert all(np.array_equal(b, v.numpy()) for b, v in zip(before, model.trainable_variables))
    make_step(ScheduleConfig("standard"), ctx)(x, y)
    make_step(ScheduleConfig("standard"), context(reference))(x, y)
    for a, b in zip(model.trainable_variables, reference.trainable_variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    assert float(scale.scale) == 512.0 and int(scale.good_steps) == 1


# ---- the hand-written steps the engine replaced (dilbench/schedules/standard.py and unfair.py before
# schedules became data), kept here only to prove the engine gives bit-identical weights -----------------
def old_standard_step(ctx: StepContext):
    variables = ctx.flat_variables()

    def step(x, y):
        with tf.GradientTape() as tape:
            logits = ctx.model(x, training=True)
            loss = cross_entropy(y, logits)
            scaled = ctx.loss_scale.scaled(loss)
        grads = tape.gradient(scaled, variables)
        ctx.apply_gradients(grads, range(ctx.num_groups))
        return loss, num_correct(y, logits)

    return step


def old_back_step(ctx: StepContext):
    model, last = ctx.model, ctx.num_groups - 1

    def step(x, y):
        with tf.GradientTape() as tape:
            outputs = model.group_outputs(x, training=True)
            logits = model.logits(outputs[-1], training=True)
            loss = cross_entropy(y, logits)
            scaled = ctx.loss_scale.scaled(loss)
        ctx.apply_gradients(tape.gradient(scaled, ctx.flat_variables([last])), [last])
        for start in range(last - 1, -1, -1):
            groups = range(start, ctx.num_groups)
            with tf.GradientTape() as tape:
                sub_loss = cross_entropy(y, model.forward_from(start, tf.stop_gradient(outputs[start]), training=True))
                scaled = ctx.loss_scale.scaled(sub_loss)
            ctx.apply_gradients(tape.gradient(scaled, ctx.flat_variables(groups)), groups)
        return loss, num_correct(y, logits)

    return step


def old_front_step(ctx: StepContext):
    model = ctx.model

    def step(x, y):
        first = None
        for k in range(1, ctx.num_groups + 1):
            groups = range(k)
            with tf.GradientTape() as tape:
                logits = model(x, training=True)
                loss = cross_entropy(y, logits)
                scaled = ctx.loss_scale.scaled(loss)
            if first is None:
                first = (loss, num_correct(y, logits))
            ctx.apply_gradients(tape.gradient(scaled, ctx.flat_variables(groups)), groups)
        return first

    return step


OLD_STEPS = {"standard": old_standard_step, "unfair_back": old_back_step, "unfair_front": old_front_step}


def small_resnet(seed: int = 5) -> GroupedModel:
    """Three groups with batch norm, so the moving statistics are compared too."""
    from dilbench.models.resnet_v2 import BlockSpec, ResNetV2Config

    blocks = (BlockSpec(depth=8, bottleneck=2, units=1, stride=2), BlockSpec(depth=8, bottleneck=2, units=1, stride=1))
    return build_model(ResNetV2Config(blocks=blocks, bn_momentum=0.9), (12, 12, 1), 10, "float32", seed)


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: s.name)
@pytest.mark.parametrize("make_model", [small_context_model, small_resnet], ids=["context", "resnet"])
def test_engine_is_bit_identical_to_the_old_steps(schedule, make_model):
    tf.config.experimental.enable_op_determinism()
    new_model, old_model = make_model(), make_model()
    new_ctx, old_ctx = context(new_model, AdamConfig(lr=1e-2)), context(old_model, AdamConfig(lr=1e-2))
    new, old = tf.function(make_step(schedule, new_ctx)), tf.function(OLD_STEPS[schedule.name](old_ctx))
    for seed in range(3):
        x, y = images(seed)
        new_loss, new_correct = new(x, y)
        old_loss, old_correct = old(x, y)
        assert float(new_loss) == float(old_loss) and int(new_correct) == int(old_correct)
    assert len(new_model.variables) == len(old_model.variables)
    for a, b in zip(new_model.variables + new_ctx.flat_variables(), old_model.variables + old_ctx.flat_variables()):
        assert np.array_equal(a.numpy(), b.numpy()), a.name
    for a, b in zip(new_ctx.optimizers, old_ctx.optimizers):
        assert int(a.updates) == int(b.updates)
        assert all(np.array_equal(m.numpy(), n.numpy()) for m, n in zip(a.m + a.v, b.m + b.v))
    assert not np.array_equal(new_model.variables[0].numpy(), make_model().variables[0].numpy())


def test_group_lr_scales_each_groups_step():
    """SGD with group_lr [2, 0.5] on the toy model: each group's step is its factor x lr x gradient."""
    model = toy_model()
    before = [v.numpy().astype(np.float64) for v in model.trainable_variables]
    ctx = context(model, SGDConfig(lr=LR, group_lr=(2.0, 0.5)))
    x = np.random.default_rng(1).normal(size=(6, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 2, 1, 0])
    make_step(ScheduleConfig("standard"), ctx)(tf.constant(x), tf.constant(y))
    grads = numpy_grads(*before, x.astype(np.float64), y)
    for got, w, g, factor in zip(model.trainable_variables, before, grads, (2.0, 2.0, 0.5, 0.5)):
        np.testing.assert_allclose(got.numpy(), w - factor * LR * g, rtol=1e-5, atol=1e-6)


def test_adam_published_is_the_published_update():
    """Two standard steps with the published Adam against its formula in NumPy: constant bias correction
    m/(1-beta1), v/(1-beta2), epsilon added after it."""
    cfg = AdamPublishedConfig(lr=1e-2, beta1=0.9, beta2=0.9, epsilon=1e-3)
    model = toy_model()
    weights = [v.numpy().astype(np.float64) for v in model.trainable_variables]
    ctx = context(model, cfg)
    x = np.random.default_rng(1).normal(size=(6, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 2, 1, 0])
    m = [np.zeros_like(w) for w in weights]
    v = [np.zeros_like(w) for w in weights]
    for _ in range(2):
        make_step(ScheduleConfig("standard"), ctx)(tf.constant(x), tf.constant(y))
        grads = numpy_grads(*weights, x.astype(np.float64), y)
        for i, g in enumerate(grads):
            m[i] = 0.9 * m[i] + 0.1 * g
            v[i] = 0.9 * v[i] + 0.1 * g * g
            weights[i] = weights[i] - 1e-2 * (m[i] / 0.1) / (np.sqrt(v[i] / 0.1) + 1e-3)
    for got, want in zip(model.trainable_variables, weights):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-6)


def gradient_ops(step, x, y) -> dict[str, int]:
    """Convolution gradient ops the traced step runs: those feeding its outputs or a stateful op (a
    variable update). tf.function prunes the rest before running, as dead code."""
    graph = tf.function(step).get_concrete_function(x, y).graph
    live, todo = set(), [t.op for t in graph.outputs] + [op for op in graph.get_operations() if op.op_def.is_stateful]
    while todo:
        op = todo.pop()
        if op.name not in live:
            live.add(op.name)
            todo += [t.op for t in op.inputs] + list(op.control_inputs)
    kinds = [op.type for op in graph.get_operations() if op.name in live]
    return {kind: kinds.count(kind) for kind in ("Conv2DBackpropFilter", "Conv2DBackpropInput")}


@pytest.mark.parametrize("schedule", ALL, ids=lambda s: s.name)
def test_frozen_groups_leave_the_backward_pass(schedule):
    """With the lowest 2 of 4 groups frozen, the traced step computes no weight gradient for them and no
    input gradient into them, their weights stay bit-equal, and the others get the plan's updates."""
    x, y = images()
    counts = {}
    for frozen in (0, 2):
        model = small_context_model()
        before = [v.numpy() for v in model.group_variables(0) + model.group_variables(1)]
        ctx = context(model, AdamConfig(lr=1e-2))
        step = make_step(schedule, ctx, frozen)
        counts[frozen] = gradient_ops(step, x, y)
        tf.function(step)(x, y)
        assert [int(o.updates) for o in ctx.optimizers] == updates_per_batch(schedule, 4, frozen)
        after = [v.numpy() for v in model.group_variables(0) + model.group_variables(1)]
        assert all(np.array_equal(a, b) for a, b in zip(before, after)) == (frozen == 2)
    # one conv per group; the weight gradients and the input gradients (above the lowest updated group) per sub-step
    per_step = {"standard": [(0, 1, 2, 3)], "unfair_back": [(3,), (2, 3), (1, 2, 3), (0, 1, 2, 3)],
                "unfair_front": [(0,), (0, 1), (0, 1, 2), (0, 1, 2, 3)]}[schedule.name]
    for frozen in (0, 2):
        kept = [tuple(g for g in groups if g >= frozen) for groups in per_step]
        kept = [groups for groups in kept if groups]
        assert counts[frozen] == {"Conv2DBackpropFilter": sum(len(g) for g in kept),
                                  "Conv2DBackpropInput": sum(3 - g[0] for g in kept)}
