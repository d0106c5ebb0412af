"""The model families: exact parameter counts (derived here by formula), shapes, groups, init, BN, summary."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from toolkit import invoke

from dilbench.config import load_config
from dilbench.models import MODELS, build_model
from dilbench.models.bias import PointlessBiasWarning
from dilbench.models.resnet_v2 import BlockSpec
from dilbench.typed.validate import FieldError, build

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")


def model_cfg(name: str, **keys):
    return build(MODELS[name].config, {"name": name, **keys})


def count(variables) -> int:
    return sum(int(np.prod(v.shape)) for v in variables)


def float_count(variables) -> int:
    return sum(int(np.prod(v.shape)) for v in variables if "float" in str(v.dtype))


def all_layers(layer):
    """Every layer that computes (not the Sequential containers and their input placeholders)."""
    return [sub for sub in layer._flatten_layers(include_self=False, recursive=True)
            if not isinstance(sub, (keras.Sequential, keras.layers.InputLayer))]


# ---- configs stay TensorFlow-free -----------------------------------------------------------------------
def test_configs_and_models_listing_do_not_import_tensorflow(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("model:\n  name: resnet_v2\n  blocks:\n    - {depth: 32, bottleneck: 8, units: 2, stride: 2}\n")
    code = textwrap.dedent(f"""
        import sys
        from click.testing import CliRunner
        from dilbench.cli import cli
        from dilbench.config import load_config
        load_config({str(path)!r})
        for name in ("allconv9", "allcnn_c", "context_module"):
            load_config({str(path)!r}, [f"model={{name}}"])
        result = CliRunner().invoke(cli, ["models", "--keys"])
        assert result.exit_code == 0, result.output
        assert "tensorflow" not in sys.modules, "TensorFlow was imported"
    """)
    subprocess.run([sys.executable, "-c", code], check=True)


# ---- the 9-layer ELU net ------------------------------------------------------------------------------
ALLCONV9_TABLE = [  # DESIGN.md: (kernel, in, out, stddev)
    (3, 3, 256, 0.05), (3, 256, 256, 0.04), (3, 256, 128, 0.06), (3, 128, 128, 0.04), (3, 128, 128, 0.06),
    (3, 128, 64, 0.05), (3, 64, 64, 0.04), (1, 64, 64, 0.05), (1, 64, 10, 0.06),
]


def test_allconv9_has_exactly_the_published_parameters_and_structure():
    model = build_model(model_cfg("allconv9"), (8, 8, 3), 10, "float32", 0)
    assert sum(k * k * c_in * c_out for k, c_in, c_out, _ in ALLCONV9_TABLE) == 1_301_888
    assert count(model.trainable_variables) == 1_301_888
    assert model.num_groups == 9 and not model.head.trainable_variables
    for group, (k, c_in, c_out, _) in zip(model.groups, ALLCONV9_TABLE):
        (kernel,) = group.trainable_variables  # no bias
        assert tuple(kernel.shape) == (k, k, c_in, c_out)
        assert group.layers[0].activation is keras.activations.elu
    # pooling sits in the groups of layers 3 and 6
    assert [type(g.layers[-1]).__name__ for g in model.groups].count("AveragePooling2D") == 2
    assert isinstance(model.groups[2].layers[-1], keras.layers.AveragePooling2D)
    assert isinstance(model.groups[5].layers[-1], keras.layers.AveragePooling2D)


def test_allconv9_init_stddevs_shapes_and_spatial_mean_logits():
    model = build_model(model_cfg("allconv9"), (32, 32, 3), 10, "float32", 3)
    for group, (_, _, _, stddev) in zip(model.groups, ALLCONV9_TABLE):
        weights = group.trainable_variables[0].numpy()
        assert np.abs(weights).max() <= 2 * stddev + 1e-7  # truncated at two standard deviations
        if weights.size > 10_000:  # std of a normal truncated at +-2 sigma is 0.8796 sigma
            assert weights.std() == pytest.approx(0.8796 * stddev, rel=0.03)
    x = tf.random.uniform((2, 32, 32, 3), seed=1)
    outputs = model.group_outputs(x)
    shapes = [tuple(o.shape[1:]) for o in outputs[1:]]
    assert shapes == [(32, 32, 256), (32, 32, 256), (16, 16, 128), (16, 16, 128), (16, 16, 128),
                      (8, 8, 64), (8, 8, 64), (8, 8, 64), (8, 8, 10)]
    np.testing.assert_allclose(model(x), tf.reduce_mean(outputs[-1], axis=[1, 2]), rtol=1e-6, atol=1e-7)


def test_allconv9_width_scales_all_but_the_class_layer():
    model = build_model(model_cfg("allconv9", width=0.25), (8, 8, 3), 10, "float32", 0)
    widths = [64, 64, 32, 32, 32, 16, 16, 16, 10]
    ins = [3, *widths[:-1]]
    kernels = [k for k, *_ in ALLCONV9_TABLE]
    assert count(model.trainable_variables) == sum(k * k * i * o for k, i, o in zip(kernels, ins, widths))


# ---- All-CNN-C ----------------------------------------------------------------------------------------
ALLCNN_C = [(3, 96), (3, 96), (3, 96), (3, 192), (3, 192), (3, 192), (3, 192), (1, 192), (1, 10)]


def test_allcnn_c_parameters_and_shapes():
    ins = [3] + [c for _, c in ALLCNN_C[:-1]]
    expected = sum(k * k * i * o + o for (k, o), i in zip(ALLCNN_C, ins))
    assert expected == 1_369_738
    model = build_model(model_cfg("allcnn_c"), (32, 32, 3), 10, "float32", 0)
    assert count(model.trainable_variables) == expected
    shapes = [tuple(o.shape[1:]) for o in model.group_outputs(tf.zeros((1, 32, 32, 3)))[1:]]
    assert shapes == [(32, 32, 96)] * 2 + [(16, 16, 96)] + [(16, 16, 192)] * 2 + [(8, 8, 192), (6, 6, 192), (6, 6, 192), (6, 6, 10)]


def test_allcnn_c_with_batch_norm_drops_biases_and_warns_when_one_is_forced():
    ins = [3] + [c for _, c in ALLCNN_C[:-1]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cfg = model_cfg("allcnn_c", batch_norm=True, width=0.5)
    model = build_model(cfg, (16, 16, 3), 10, "float32", 0)
    widths = [48, 48, 48, 96, 96, 96, 96, 96, 10]
    ins = [3, *widths[:-1]]
    convs = sum(k * k * i * o for (k, _), i, o in zip(ALLCNN_C, ins, widths))
    # convs 1-8: no bias, BN gamma+beta (trainable) and mean+variance (state); the class layer keeps its bias
    assert count(model.trainable_variables) == convs + 2 * sum(widths[:-1]) + 10
    assert float_count(model.non_trainable_variables) == 2 * sum(widths[:-1])
    with pytest.warns(PointlessBiasWarning, match="batch norm follows.*BN subtracts the batch mean"):
        cfg = model_cfg("allcnn_c", batch_norm=True, use_bias=True, width=0.5)
    model = build_model(cfg, (16, 16, 3), 10, "float32", 0)
    assert count(model.trainable_variables) == convs + 2 * sum(widths[:-1]) + sum(widths)


# ---- ResNet v2: parameter formula, independent of the builder ---------------------------------------------
def unit_params(d_in: int, depth: int, b: int, use_bias: bool = False) -> tuple[int, int]:
    """(trainable, BN moving statistics) of one pre-activation bottleneck unit."""
    trainable = 2 * d_in + d_in * b + 9 * b * b + b * depth + depth + 2 * 2 * b  # preact BN, conv1, conv2, conv3+bias, 2 BNs
    if d_in != depth:
        trainable += d_in * depth + depth  # 1x1 projection shortcut with bias
    if use_bias:
        trainable += 2 * b
    return trainable, 2 * d_in + 2 * 2 * b


def resnet_params(root_kernel: int, root_depth: int, blocks: list[tuple[int, int, int]], classes: int, in_channels: int = 3):
    """(trainable, BN moving statistics) of a whole ResNet v2 with a root conv (with bias) and a dense head."""
    trainable, state = root_kernel**2 * in_channels * root_depth + root_depth, 0
    d_in = root_depth
    for depth, b, n in blocks:
        for _ in range(n):
            t, s = unit_params(d_in, depth, b)
            trainable, state, d_in = trainable + t, state + s, depth
    return trainable + 2 * d_in + d_in * classes + classes, state + 2 * d_in


def imagenet_blocks(units):
    return [(4 * base, base, n) for base, n in zip((64, 128, 256, 512), units)]


def test_resnet_v2_formula_reproduces_keras_applications_counts():
    assert sum(resnet_params(7, 64, imagenet_blocks((3, 4, 6, 3)), 1000)) == 25_613_800  # ResNet50V2
    assert sum(resnet_params(7, 64, imagenet_blocks((3, 4, 23, 3)), 1000)) == 44_675_560  # ResNet101V2
    assert sum(resnet_params(7, 64, imagenet_blocks((3, 8, 36, 3)), 1000)) == 60_380_648  # ResNet152V2


@pytest.mark.parametrize("depth, units", [(50, (3, 4, 6, 3)), (101, (3, 4, 23, 3)), (152, (3, 8, 36, 3)), (200, (3, 24, 36, 3))])
def test_resnet_v2_imagenet_block_specs_are_slims(depth, units):
    specs = model_cfg("resnet_v2", variant="imagenet", depth=depth).block_specs()
    assert specs == tuple(BlockSpec(4 * b, b, n, s) for b, n, s in zip((64, 128, 256, 512), units, (2, 2, 2, 1)))


@pytest.fixture(scope="module")
def resnet50_units():
    return build_model(model_cfg("resnet_v2", variant="imagenet", depth=50, groups="unit"), (224, 224, 3), 1000, "float32", 0)


def test_resnet50_v2_matches_keras_applications(resnet50_units):
    model = resnet50_units
    reference = keras.applications.ResNet50V2(weights=None, input_shape=(224, 224, 3))
    assert count(model.variables) == reference.count_params() == 25_613_800
    trainable, state = resnet_params(7, 64, imagenet_blocks((3, 4, 6, 3)), 1000)
    assert (count(model.trainable_variables), count(model.non_trainable_variables)) == (trainable, state)
    unit_outputs = [tuple(layer.output.shape[1:]) for layer in reference.layers if layer.name.endswith("_out")]
    ours = [tuple(o.shape[1:]) for o in model.group_outputs(tf.zeros((1, 224, 224, 3)))[1:]]
    assert len(unit_outputs) == 16 and ours == unit_outputs
    assert [g.name for g in model.groups][:4] == ["block1_unit1", "block1_unit2", "block1_unit3", "block2_unit1"]
    assert [layer.name for layer in model.groups[0].layers][:3] == ["root_conv_pad", "root_conv", "root_pool"]  # root is in group 1


@pytest.mark.slow
@pytest.mark.parametrize("depth, units", [(101, (3, 4, 23, 3)), (152, (3, 8, 36, 3)), (200, (3, 24, 36, 3))])
def test_deep_resnet_v2_parameter_counts(depth, units):
    model = build_model(model_cfg("resnet_v2", variant="imagenet", depth=depth), (32, 32, 3), 1000, "float32", 0)
    trainable, state = resnet_params(7, 64, imagenet_blocks(units), 1000)
    assert (count(model.trainable_variables), count(model.non_trainable_variables)) == (trainable, state)


@pytest.mark.parametrize("depth", [11, 29])
def test_resnet_v2_cifar_parameters_shapes_and_groups(depth):
    n = (depth - 2) // 9
    cfg = model_cfg("resnet_v2", depth=depth)
    assert cfg.block_specs() == (BlockSpec(64, 16, n, 2), BlockSpec(128, 32, n, 2), BlockSpec(256, 64, n, 1))
    model = build_model(cfg, (32, 32, 3), 10, "float32", 0)
    trainable, state = resnet_params(3, 16, [(64, 16, n), (128, 32, n), (256, 64, n)], 10)
    assert (count(model.trainable_variables), count(model.non_trainable_variables)) == (trainable, state)
    shapes = [tuple(o.shape[1:]) for o in model.group_outputs(tf.zeros((1, 32, 32, 3)))[1:]]
    assert shapes == [(16, 16, 64), (8, 8, 128), (8, 8, 256)]
    units = build_model(model_cfg("resnet_v2", depth=depth, groups="unit"), (32, 32, 3), 10, "float32", 0)
    assert units.num_groups == 3 * n and count(units.variables) == trainable + state


def test_resnet_v2_164_has_he_et_al_parameter_count():
    trainable, state = resnet_params(3, 16, [(64, 16, 18), (128, 32, 18), (256, 64, 18)], 10)
    assert round(trainable / 1e6, 1) == 1.7  # He et al. 2016, Table 2: ResNet-164 has 1.7M parameters
    assert trainable == 1_711_786


def test_resnet_v2_units_follow_slims_bottleneck():
    from dilbench.models.layers import BottleneckV2, layer_seeds

    seeds = layer_seeds(0)
    kwargs = {"use_bias": False, "momentum": 0.9, "epsilon": 1e-5, "seeds": seeds, "dtype": "float32"}
    x = tf.random.normal((2, 6, 6, 8), seed=0)
    for stride in (1, 2):
        unit = BottleneckV2(8, 8, 4, stride, name=f"u{stride}", **kwargs)
        unit(x)
        conv3 = unit.residual.layers[-1]
        others = [layer for layer in unit.residual.layers if isinstance(layer, keras.layers.Conv2D) and layer is not conv3]
        assert conv3.use_bias and len(others) == 2 and not any(layer.use_bias for layer in others)
        conv3.kernel.assign(tf.zeros_like(conv3.kernel))
        np.testing.assert_allclose(unit(x, training=True), x[:, ::stride, ::stride], atol=1e-6)  # identity / subsample shortcut
    projecting = BottleneckV2(8, 16, 4, 2, name="proj", **kwargs)
    assert tuple(projecting(x).shape) == (2, 3, 3, 16)
    shortcut = projecting.shortcut.layers[-1]
    assert shortcut.use_bias and tuple(shortcut.kernel.shape) == (1, 1, 8, 16)


def test_resnet_v2_blocks_from_yaml(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(textwrap.dedent("""\
        model:
          name: resnet_v2
          groups: unit
          blocks:
            - {depth: 32, bottleneck: 8, units: 2, stride: 2}
            - {depth: 64, bottleneck: 16, units: 1}
    """))
    cfg = load_config(path).model
    assert cfg.block_specs() == (BlockSpec(32, 8, 2, 2), BlockSpec(64, 16, 1, 1))
    model = build_model(cfg, (8, 8, 3), 10, "float32", 0)
    shapes = [tuple(o.shape[1:]) for o in model.group_outputs(tf.zeros((1, 8, 8, 3)))[1:]]
    assert shapes == [(8, 8, 32), (4, 4, 32), (4, 4, 64)]  # the stride is in the block's last unit
    trainable, state = resnet_params(3, 16, [(32, 8, 2), (64, 16, 1)], 10)
    assert count(model.trainable_variables) == trainable and count(model.non_trainable_variables) == state


@pytest.mark.parametrize("keys, field, message", [
    ({"variant": "imagenet", "depth": 34}, "depth", "50, 101, 152 or 200"),
    ({"depth": 30}, "depth", "9n+2"),
    ({"depth": 29, "blocks": [{"depth": 8, "bottleneck": 2, "units": 1}]}, "depth", "either depth or"),
    ({"blocks": [{"depth": 8, "bottleneck": 2, "units": 0}]}, "blocks[0].units", "must be > 0"),
    ({"groups": "layer"}, "groups", "block, unit"),
    ({"bn_momentum": 1.0}, "bn_momentum", "(0, 1)"),
])
def test_resnet_v2_config_errors_say_what_is_valid(keys, field, message):
    with pytest.raises(FieldError) as err:
        model_cfg("resnet_v2", **keys)
    assert err.value.path == field and message in err.value.message


def test_resnet_v2_use_bias_is_honoured_with_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model_cfg("resnet_v2", depth=11)  # no warning by default
    with pytest.warns(PointlessBiasWarning, match="use_bias: true.*batch norm"):
        cfg = model_cfg("resnet_v2", depth=11, use_bias=True)
    model = build_model(cfg, (8, 8, 3), 10, "float32", 0)
    trainable, _ = resnet_params(3, 16, [(64, 16, 1), (128, 32, 1), (256, 64, 1)], 10)
    assert count(model.trainable_variables) == trainable + 2 * (16 + 32 + 64)  # conv1 and conv2 biases


# ---- batch norm ---------------------------------------------------------------------------------------
def bn_stats(model) -> list[np.ndarray]:
    return [v.numpy().copy() for v in model.non_trainable_variables if "moving" in v.path]


def test_bn_statistics_update_in_training_steps_and_are_used_in_evaluation():
    model = build_model(model_cfg("resnet_v2", depth=11), (8, 8, 3), 10, "float32", 0)
    x = tf.random.uniform((4, 8, 8, 3), seed=2)
    before = bn_stats(model)
    assert len(before) == 2 * 10  # mean and variance of the 3 BNs in each of 3 units and the post-norm
    model(x, training=False)
    assert all(np.array_equal(a, b) for a, b in zip(before, bn_stats(model)))
    # evaluation uses the moving statistics: an example's output does not depend on its batch
    np.testing.assert_allclose(model(x[:1], training=False), model(x, training=False)[:1], rtol=1e-5, atol=1e-6)
    assert not np.allclose(model(x[:2], training=True)[:1], model(x, training=True)[:1], atol=1e-4)

    @tf.function
    def sgd_step(x, y):  # what every schedule does: a training-mode forward pass in a tf.function
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x, training=True)))
        for var, grad in zip(model.trainable_variables, tape.gradient(loss, model.trainable_variables)):
            var.assign_sub(0.01 * grad)

    before_step = bn_stats(model)
    sgd_step(x, tf.constant([0, 1, 2, 3]))
    assert all(not np.allclose(a, b) for a, b in zip(before_step, bn_stats(model)))


def test_batch_norm_moments_do_not_depend_on_the_order_of_the_batch(monkeypatch):
    """dilbench's BatchNormalization takes a batch's moments from float64 sums: a training-mode forward pass of
    ResNet v2 over a batch and over the batch reversed gives bit-equal outputs (reversed) and bit-equal moving
    statistics after it, which Keras's float32 moments do not (its own batch norm, for control)."""
    from dilbench.models import layers

    x = tf.random.stateless_normal((12, 8, 8, 3), seed=(1, 2))

    def forward(model, images):
        output = tf.function(lambda images: model(images, training=True))(images)
        return output.numpy(), bn_stats(model)

    def both_orders():
        runs = []
        for images in (x, tf.reverse(x, [0])):
            model = build_model(model_cfg("resnet_v2", depth=11), (8, 8, 3), 10, "float32", 0)
            runs.append(forward(model, images))
        (out, stats), (out_reversed, stats_reversed) = runs
        return out, out_reversed[::-1], stats, stats_reversed

    out, out_reversed, stats, stats_reversed = both_orders()
    assert np.array_equal(out, out_reversed) and len(stats) == 20
    assert all(np.array_equal(a, b) for a, b in zip(stats, stats_reversed))
    monkeypatch.setattr(layers, "BatchNormalization", keras.layers.BatchNormalization)
    out, out_reversed, stats, stats_reversed = both_orders()
    assert not np.array_equal(out, out_reversed) and np.abs(out - out_reversed).max() < 1e-4
    assert not all(np.array_equal(a, b) for a, b in zip(stats, stats_reversed))


@pytest.mark.parametrize("channels", [10, 64])
def test_batch_norm_is_keras_batch_norm_to_float32_rounding(channels):
    """Against Keras's batch norm computed in float64, on channels whose mean is 3 standard deviations: moving
    statistics within an ulp of float32 (measured: 8e-8 relative; Keras's float32 2e-7), outputs and the gradients
    of input, gamma and beta within 3e-6 of the largest (measured: 1.6e-6 for gamma's, Keras's float32 1.3e-6; the
    rest 5e-7 or less, as Keras's); the same variables (checkpoints of one load into the other); mixed bfloat16
    computes in float32 and returns bfloat16, its moving mean the exact mean of the bfloat16 images to float32 rounding."""
    from dilbench.models.layers import BatchNormalization

    x = tf.random.stateless_normal((16, 6, 6, channels), seed=(3, 4), mean=3.0, stddev=1.0)
    weights = tf.random.stateless_normal(x.shape, seed=(5, 6), dtype=tf.float64)

    def run(layer, images):
        with tf.GradientTape() as tape:
            tape.watch(images)
            output = layer(images, training=True)
            loss = tf.reduce_sum(tf.cast(output, tf.float64) * weights)
        grads = tape.gradient(loss, [images, layer.gamma, layer.beta])
        return [t.numpy().astype(np.float64) for t in (output, *grads, layer.moving_mean, layer.moving_variance)]

    exact = run(keras.layers.BatchNormalization(momentum=0.5, dtype="float64"), tf.cast(x, tf.float64))
    ours = run(BatchNormalization(momentum=0.5), x)
    for got, want in zip(ours[:4], exact[:4]):
        assert np.abs(got - want).max() <= 3e-6 * np.abs(want).max()
    for got, want in zip(ours[4:], exact[4:]):
        assert np.abs(got - want).max() <= 2 ** -23 * np.abs(want).max()
    plain = keras.layers.BatchNormalization()
    plain.build(x.shape)
    layer = BatchNormalization()
    layer.build(x.shape)
    assert [(v.path, v.shape) for v in layer.variables] == [(v.path.replace(plain.name, layer.name), v.shape) for v in plain.variables]
    mixed = BatchNormalization(dtype="mixed_bfloat16")
    assert mixed(tf.cast(x, tf.bfloat16), training=True).dtype == tf.bfloat16 and mixed.moving_mean.dtype == tf.float32
    # momentum 0.99 from 0: 0.01 x the batch mean of the bfloat16 images, taken exactly, to float32 rounding
    rounded = tf.cast(tf.cast(x, tf.bfloat16), tf.float64).numpy()
    np.testing.assert_allclose(mixed.moving_mean.numpy(), 0.01 * rounded.mean(axis=(0, 1, 2)), rtol=2 ** -22)


def test_checkpoints_of_models_with_keras_batch_norm_load_into_dilbench_batch_norm(tmp_path, monkeypatch):
    """Runs saved before dilbench had its own BatchNormalization resume: the Trainer checkpoints `weights` as the
    model's variable list, and a ResNet v2 built with Keras's layer has the same variables, in the same order,
    with the same names and shapes; its checkpoint restores every one of them bit-equal, moving statistics too."""
    from dilbench.models import layers

    ours_bn = layers.BatchNormalization
    ours = build_model(model_cfg("resnet_v2", depth=11), (8, 8, 3), 10, "float32", 0)
    monkeypatch.setattr(layers, "BatchNormalization", keras.layers.BatchNormalization)
    plain = build_model(model_cfg("resnet_v2", depth=11), (8, 8, 3), 10, "float32", 1)  # another seed: other values
    assert sum(type(layer) is keras.layers.BatchNormalization for layer in plain._flatten_layers()) == 10
    assert sum(type(layer) is ours_bn for layer in ours._flatten_layers()) == 10
    strip = lambda model: [(v.path.split("/", 1)[1], tuple(v.shape)) for v in model.variables]  # noqa: E731
    assert strip(ours) == strip(plain)
    for v in plain.variables:
        if "moving_" in v.path:
            v.assign(v + 0.5)
    path = tf.train.Checkpoint(weights=[v.value for v in plain.variables]).write(str(tmp_path / "ckpt"))
    tf.train.Checkpoint(weights=[v.value for v in ours.variables]).read(path).assert_consumed()
    assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(ours.variables, plain.variables))


def test_dropout_on_one_replica_is_keras_dropout():
    """dilbench's Dropout differs from Keras's only on several replicas (tests/replica_check.py): on one device
    it drops exactly what Keras's drops, call after call."""
    from dilbench.models.layers import Dropout

    x = tf.random.stateless_normal((6, 4, 4, 3), seed=(7, 8))
    ours, plain = Dropout(0.5, seed=3), keras.layers.Dropout(0.5, seed=3)
    for _ in range(2):
        assert np.array_equal(ours(x, training=True), plain(x, training=True))
    assert np.array_equal(ours(x, training=False), x)


# ---- context module -----------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["basic", "large"])
def test_identity_init_makes_the_context_module_return_its_input(variant):
    cfg = model_cfg("context_module", variant=variant, channels=2, init_stddev=0.0)
    x = tf.random.uniform((2, 20, 20, 2), seed=0)  # C input channels, non-negative (ReLU passes them)
    model = build_model(cfg, (20, 20, 2), 10, "float32", 0)
    np.testing.assert_allclose(model.group_outputs(x)[-1], x, rtol=1e-6, atol=1e-6)
    one_channel = build_model(cfg, (20, 20, 1), 10, "float32", 0)  # MNIST: the image comes out in channel 0
    out = one_channel.group_outputs(x[..., :1])[-1]
    np.testing.assert_allclose(out[..., :1], x[..., :1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out[..., 1:], 0.0, atol=1e-7)


def test_context_module_receptive_fields():
    from dilbench.models.context import receptive_fields

    assert receptive_fields(model_cfg("context_module")) == [3, 5, 9, 17, 33, 65, 67, 67]
    assert receptive_fields(model_cfg("context_module", dilations=[1, 2, 1])) == [3, 7, 9, 9]


# ---- summary and FLOPs --------------------------------------------------------------------------------
def test_allconv9_group_flops_follow_the_formula():
    from dilbench.models.summary import group_flops

    sizes = [32, 32, 16, 16, 16, 8, 8, 8, 8]  # output side of layers 1..9 (pooling after 3 and 6 is in their group)
    expected = [2 * s * s * k * k * i * o for s, (k, i, o, _) in zip(sizes, ALLCONV9_TABLE)]
    expected[2] = 2 * 32 * 32 * 9 * 256 * 128  # layer 3 convolves at 32x32, then pools
    expected[5] = 2 * 16 * 16 * 9 * 128 * 64
    assert group_flops(model_cfg("allconv9"), (32, 32, 3)) == expected


def test_layer_flops_refuses_a_layer_type_it_does_not_know_and_counts_parameter_free_ones_as_zero():
    import keras

    from dilbench.models.layers import layer_flops

    with pytest.raises(TypeError, match="layer type LayerNormalization .*'ln'"):
        layer_flops(keras.layers.LayerNormalization(name="ln"), (4, 4, 8))
    assert layer_flops(keras.layers.MaxPooling2D(2), (4, 4, 8)) == (0, (2, 2, 8))
    assert layer_flops(keras.layers.Flatten(), (4, 4, 8)) == (0, (128,))
    assert layer_flops(keras.layers.Dense(3), (128,)) == (2 * 128 * 3, (3,))


def test_summary_rows_shapes_match_the_forward_pass_and_head_flops_go_to_the_last_group():
    from dilbench.models.summary import group_flops, summarize

    cfg = model_cfg("resnet_v2", depth=11, groups="unit")
    rows = summarize(cfg, (32, 32, 3), 10)
    model = build_model(cfg, (32, 32, 3), 10, "float32", 0)
    forward = [tuple(o.shape[1:]) for o in model.group_outputs(tf.zeros((1, 32, 32, 3)))[1:]]
    assert [r.output_shape for r in rows] == [*forward, (10,)]
    assert rows[-1].name == "head" and rows[-1].flops == 2 * 256 * 10
    flops = group_flops(model, (32, 32, 3))
    assert flops[:-1] == [r.flops for r in rows[:-2]] and flops[-1] == rows[-2].flops + rows[-1].flops
    assert sum(r.params for r in rows) == count(model.trainable_variables)
    assert sum(r.state for r in rows) == count(model.non_trainable_variables)
    # unit 1 of block 1 at 32x32 (stride 1 ... then 3x3 stride 2): root 3x3x3x16, conv1 16->16, conv2 at 16x16, conv3, 1x1 projection
    root = 2 * 32 * 32 * 9 * 3 * 16
    unit = 2 * 32 * 32 * 16 * 16 + 2 * 16 * 16 * 9 * 16 * 16 + 2 * 16 * 16 * 16 * 64 + 2 * 16 * 16 * 16 * 64
    assert rows[0].flops == root + unit


def test_summary_of_the_context_module_shows_receptive_fields():
    from dilbench.models.summary import format_summary, summarize

    rows = summarize(model_cfg("context_module", channels=4, hidden=[8]), (28, 28, 1), 10)
    assert [r.receptive_field for r in rows] == [3, 5, 9, 17, 33, 65, 67, 67, None]
    text = format_summary(rows)
    assert "receptive field" in text and "a multiply-add counts 2" in text


def test_layers_get_the_mixed_precision_policy():
    model = build_model(model_cfg("resnet_v2", depth=11), (8, 8, 3), 10, "mixed_bfloat16", 0)
    policies = {layer.dtype_policy.name for layer in all_layers(model)}
    assert policies == {"mixed_bfloat16"}
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in all_layers(model))
    assert model(tf.zeros((1, 8, 8, 3))).dtype == tf.float32
    allconv = build_model(model_cfg("allconv9", width=0.05), (8, 8, 3), 10, "mixed_bfloat16", 0)
    assert {layer.dtype_policy.name for layer in all_layers(allconv)} == {"mixed_bfloat16"}


# ---- CLI ----------------------------------------------------------------------------------------------
def test_cli_summary_and_models(tmp_path):
    path = tmp_path / "a.yaml"
    path.write_text("data:\n  dataset: cifar10\nmodel: allconv9\n")
    result = invoke("summary", path, catch_exceptions=True)
    assert result.exit_code == 0, result.output
    assert "allconv9 on 32x32x3 inputs, 10 classes" in result.output and "1,301,888" in result.output
    assert "2,020,163,584" in result.output  # sum of the per-layer formula above
    result = invoke("summary", path, "--set", "model.width=0.5", "--set", "data.dataset=imagefolder", catch_exceptions=True)
    assert result.exit_code == 2 and "--input-shape H,W,C" in result.output
    result = invoke("summary", path, "--set", "model.width=0", catch_exceptions=True)
    assert result.exit_code == 2 and "model.width: must be > 0" in result.output
    result = invoke("models", catch_exceptions=True)
    assert result.exit_code == 0
    assert [line.split()[0] for line in result.output.splitlines()] == list(MODELS)
