"""Augmentation: strict YAML ops, every exposed imgaug op runs, paired batches, reproducibility, preview, runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Union

import numpy as np
import pytest
from toolkit import CONFIGS, QUICKSTART, REPO, error_of, invoke, run_train, the_run, train_tiny, write

from dilbench.augment.config import AugmentationConfig
from dilbench.augment.ops import OPS, Op
from dilbench.augment.pipeline import BatchAugmenter, apply, build_augmenter
from dilbench.config import dump_config, load_config
from dilbench.typed.validate import FieldError, OneKey, build, convert, to_plain

VALID_OPS = ("fliplr, flipud, affine, crop, pad, crop_and_pad, gaussian_blur, additive_gaussian_noise, dropout, "
             "linear_contrast, multiply, cutout, grayscale, sometimes, one_of, some_of, sequence")


def images(n: int = 6, shape=(32, 32, 3), seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


def pipeline(*ops: dict, mode: str = "replace", random_order: bool = False) -> AugmentationConfig:
    return build(AugmentationConfig, {"mode": mode, "random_order": random_order, "ops": list(ops)}, "augmentation")


# ---- config --------------------------------------------------------------------------------------------
def test_unknown_op_lists_the_valid_ones_with_its_line(tmp_path):
    path = write(tmp_path, """\
        augmentation:
          mode: replace
          ops:
            - fliplr: {p: 0.5}
            - flipx: {p: 1.0}
        """)
    assert error_of(path) == (f"{path}:5: augmentation.ops[1].flipx: unknown operation 'flipx' (did you mean 'flipud'?); "
                              f"choose one of {VALID_OPS}")


def test_unknown_parameter_lists_the_valid_ones(tmp_path):
    path = write(tmp_path, """\
        augmentation:
          mode: replace
          ops:
            - sometimes:
                p: 0.1
                ops:
                  - affine: {translate: [-0.2, 0.2]}
        """)
    assert error_of(path) == (f"{path}:7: augmentation.ops[0].sometimes.ops[0].affine.translate: unknown key (did you mean "
                              "'translate_percent'?); valid keys: translate_percent, rotate, scale, shear, order, mode, cval")


def test_bad_values(tmp_path):
    path = write(tmp_path, "augmentation:\n  mode: paired\n  ops:\n    - fliplr: {p: 1.5}\n")
    assert error_of(path) == f"{path}:4: augmentation.ops[0].fliplr.p: must be in [0, 1], got 1.5"
    path = write(tmp_path, "augmentation:\n  mode: paired\n  ops:\n    - affine:\n        rotate: [25, -25]\n")
    assert error_of(path) == f"{path}:5: augmentation.ops[0].affine.rotate: range [25.0, -25.0] is reversed; write [low, high]"
    path = write(tmp_path, "augmentation:\n  mode: paired\n  ops:\n    - affine: {rotate: [1, 2, 3]}\n")
    assert error_of(path) == f"{path}:4: augmentation.ops[0].affine.rotate: expected float or list of 2 float, got [1, 2, 3]"
    path = write(tmp_path, "augmentation:\n  mode: paired\n  ops:\n    - fliplr: 0.5\n")
    assert error_of(path) == f"{path}:4: augmentation.ops[0].fliplr: expected a mapping of parameters (p), got 0.5"
    path = write(tmp_path, "augmentation:\n  mode: paired\n  ops:\n    - {fliplr: {}, flipud: {}}\n")
    assert error_of(path).startswith(f"{path}:4: augmentation.ops[0]: expected a one-key mapping {{operation: {{parameters}}}}")
    path = write(tmp_path, "augmentation:\n  mode: paired\n  ops:\n    - some_of: {n: 3, ops: [fliplr, flipud]}\n")
    assert error_of(path) == f"{path}:4: augmentation.ops[0].some_of.n: must be in [0, 2], got 3"
    path = write(tmp_path, "augmentation:\n  mode: paired\n  ops:\n    - sometimes: {p: 0.5}\n")
    assert error_of(path) == f"{path}:4: augmentation.ops[0].sometimes.ops: sometimes needs at least one operation"


def test_mode_checks(tmp_path):
    path = write(tmp_path, "augmentation:\n  mode: paired\n  ops: [fliplr]\ntrain:\n  batch_size: 9\n")
    assert error_of(path).startswith(f"{path}:5: train.batch_size: must be even with augmentation.mode: paired")
    path = write(tmp_path, "augmentation:\n  mode: replace\n")
    assert error_of(path).startswith(f"{path}:1: augmentation.ops: mode 'replace' needs at least one operation")
    path = write(tmp_path, "augmentation:\n  mode: mirror\n")
    assert error_of(path).startswith(f"{path}:2: augmentation.mode: expected one of none, replace, paired, got 'mirror'")
    assert load_config(path, ["augmentation.mode=none"]).augmentation.mode == "none"


@pytest.mark.parametrize("name", ["allconv_standard_aug", "unfair_back_aug", "unfair_front_aug"])
def test_published_configs_round_trip(name, tmp_path):
    config = load_config(CONFIGS / f"{name}.yaml")
    assert config.augmentation == pipeline(
        {"fliplr": {"p": 1.0}},
        {"sometimes": {"p": 0.1, "ops": [{"affine": {"translate_percent": [-0.2, 0.2], "rotate": [-25, 25]}}]}},
        {"sometimes": {"p": 0.1, "ops": [{"flipud": {"p": 1.0}}]}},
        mode="paired", random_order=True,
    )
    assert config.train.batch_size == 10 and config.model.name == "allconv9"
    saved = tmp_path / "resolved.yaml"
    saved.write_text(dump_config(config))
    assert load_config(saved) == config
    assert "  - fliplr:\n      p: 1.0\n" in saved.read_text()


def test_shorthand_and_every_op_round_trip(tmp_path):
    config = load_config(write(tmp_path, f"""\
        augmentation:
          mode: replace
          ops:
            - fliplr
            - sequence:
                random_order: true
                ops: [{", ".join(sorted(set(OPS) - {"sometimes", "one_of", "some_of", "sequence"}))}]
            - one_of: {{ops: [flipud, {{sometimes: {{ops: [crop]}}}}]}}
            - some_of: {{n: [0, 2], ops: [multiply, dropout]}}
        """))
    assert config.augmentation.ops[0] == convert(Op, {"fliplr": {"p": 1.0}}, "op")
    saved = tmp_path / "resolved.yaml"
    saved.write_text(dump_config(config))
    assert load_config(saved) == config


@dataclass(frozen=True)
class _Square(OneKey):
    name: Literal["square"] = field(default="square", init=False)
    size: tuple[int, int] = (1, 1)


@dataclass(frozen=True)
class _Dot(OneKey):
    name: Literal["dot"] = field(default="dot", init=False)


def test_validate_one_key_and_fixed_length_tuples():
    """The two generic additions to validate.py, on stand-alone dataclasses."""
    shape = Union[_Square, _Dot]
    assert convert(shape, {"square": {"size": [2, 3]}}, "s") == _Square(size=(2, 3))
    assert convert(shape, "dot", "s") == _Dot() == convert(shape, {"dot": None}, "s")
    assert to_plain(_Square(size=(2, 3))) == {"square": {"size": [2, 3]}}
    with pytest.raises(FieldError) as info:
        convert(shape, {"square": {"size": [2]}}, "s")
    assert (info.value.path, info.value.message) == ("s.square.size", "expected a list of 2 int, got [2]")
    with pytest.raises(FieldError) as info:
        convert(shape, {"circle": {}}, "s")
    assert (info.value.path, info.value.message) == ("s.circle", "unknown name 'circle'; choose one of square, dot")


def test_config_loading_and_help_import_neither_imgaug_nor_tensorflow():
    code = textwrap.dedent(f"""\
        import sys
        from dilbench.cli import cli
        from dilbench.config import load_config
        load_config({str(CONFIGS / 'allconv_standard_aug.yaml')!r})
        for args in (['augment', '--help'], ['augment', 'preview', '--help'], ['validate', {str(CONFIGS / 'unfair_back_aug.yaml')!r}]):
            try:
                cli(args, standalone_mode=False)
            except SystemExit:
                pass
        print('imgaug' in sys.modules, 'tensorflow' in sys.modules)
        """)
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False False"


# ---- imgaug ----------------------------------------------------------------------------------------------
EXAMPLES = {
    "fliplr": {"p": 0.5},
    "flipud": {"p": 0.5},
    "affine": {"translate_percent": [-0.2, 0.2], "rotate": [-25, 25], "scale": [0.8, 1.2], "shear": [-10, 10],
               "order": 3, "mode": "edge", "cval": [0, 255]},
    "crop": {"percent": [0.0, 0.2]},
    "pad": {"percent": [0.0, 0.2], "pad_mode": "reflect"},
    "crop_and_pad": {"percent": [-0.2, 0.2], "pad_mode": "constant", "pad_cval": [0, 255]},
    "gaussian_blur": {"sigma": [0.0, 1.0]},
    "additive_gaussian_noise": {"scale": [0, 20], "per_channel": 0.5},
    "dropout": {"p": [0.0, 0.1], "per_channel": True},
    "linear_contrast": {"alpha": [0.75, 1.5], "per_channel": 0.5},
    "multiply": {"mul": [0.8, 1.2], "per_channel": 0.5},
    "cutout": {"nb_iterations": [1, 3], "size": [0.1, 0.3], "squared": False, "fill_mode": "gaussian", "fill_per_channel": 0.5},
    "grayscale": {"alpha": [0.0, 1.0]},
    "sometimes": {"p": 0.5, "ops": [{"fliplr": {}}, {"gaussian_blur": {}}]},
    "one_of": {"ops": [{"fliplr": {}}, {"flipud": {}}, {"affine": {"rotate": 10}}]},
    "some_of": {"n": [0, 2], "ops": [{"multiply": {}}, {"crop": {}}, {"cutout": {}}], "random_order": True},
    "sequence": {"ops": [{"flipud": {}}, {"dropout": {}}], "random_order": True},
}


def test_every_op_has_an_example():
    assert set(EXAMPLES) == set(OPS)


@pytest.mark.parametrize("shape", [(32, 32, 3), (28, 28, 1)], ids=["rgb", "gray"])
@pytest.mark.parametrize("name", list(EXAMPLES))
def test_every_exposed_op_runs(name, shape):
    augmenter = build_augmenter(pipeline({name: EXAMPLES[name]}), shape[-1])
    x = images(shape=shape)
    out = apply(augmenter, x, entropy=1)
    assert out.shape == x.shape and out.dtype == np.uint8


def test_imgaug_import_leaves_numpy_unchanged():
    from dilbench.augment.compat import import_imgaug

    assert import_imgaug().Fliplr and import_imgaug() is import_imgaug()
    assert "sctypes" not in np.__dict__
    with pytest.raises(AttributeError):
        np.sctypes  # noqa: B018  NumPy 2 still has no sctypes for anyone else


def test_fliplr_mirrors_exactly():
    x = images()
    out = apply(build_augmenter(pipeline({"fliplr": {"p": 1.0}}), 3), x, entropy=5)
    np.testing.assert_array_equal(out, x[:, :, ::-1])


def test_grayscale_makes_channels_equal_and_leaves_gray_images():
    x = images()
    out = apply(build_augmenter(pipeline({"grayscale": {}}), 3), x, entropy=0)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    gray = images(shape=(28, 28, 1))
    np.testing.assert_array_equal(apply(build_augmenter(pipeline({"grayscale": {}}), 1), gray, entropy=0), gray)


# ---- batches ---------------------------------------------------------------------------------------------
def test_paired_batch_holds_the_originals_and_their_augmented_copies():
    x, y = images(5), np.arange(5, dtype=np.int64) + 10
    batch, labels = BatchAugmenter(pipeline({"fliplr": {"p": 1.0}}, mode="paired"), 3, seed=3)(x, y, epoch=1, step=4)
    assert batch.shape == (10, 32, 32, 3) and batch.dtype == np.uint8
    assert sorted(labels.tolist()) == sorted(y.tolist() * 2)
    for i in range(5):
        original = [j for j in range(10) if np.array_equal(batch[j], x[i])]
        mirrored = [j for j in range(10) if np.array_equal(batch[j], x[i][:, ::-1])]
        assert len(original) == len(mirrored) == 1
        assert labels[original[0]] == labels[mirrored[0]] == y[i]
    assert labels.tolist() != sorted(labels.tolist())  # shuffled together, not originals first


def _epoch(x, y, config: AugmentationConfig, seed: int, batch_size: int, start_step: int = 0, epoch: int = 0):
    from dilbench.training.batches import epoch_batches, epoch_order

    augmenter = BatchAugmenter(config, x.shape[-1], seed)
    dataset = epoch_batches(x, y, epoch_order(seed, epoch, len(x)), batch_size, start_step, augmenter, epoch)
    return [(b.numpy(), lab.numpy()) for b, lab in dataset]


def test_paired_epoch_covers_every_image_once_as_original_and_once_augmented():
    from dilbench.training.batches import steps_per_epoch

    x, y = images(23, seed=1), np.arange(23, dtype=np.int64)
    batches = _epoch(x, y, pipeline({"flipud": {"p": 1.0}}, mode="paired"), seed=0, batch_size=6)
    assert len(batches) == steps_per_epoch(23, 6, "paired") == 8  # 3 originals per batch
    assert [len(lab) for _, lab in batches] == [6] * 7 + [4]
    seen = np.concatenate([b for b, _ in batches])
    labels = np.concatenate([lab for _, lab in batches])
    assert sorted(labels.tolist()) == sorted(list(range(23)) * 2)
    for i in range(23):
        same = [j for j in np.flatnonzero(labels == i) if np.array_equal(seen[j], x[i])]
        flipped = [j for j in np.flatnonzero(labels == i) if np.array_equal(seen[j], x[i][::-1])]
        assert len(same) == len(flipped) == 1


STOCHASTIC = ({"affine": {"rotate": [-30, 30], "translate_percent": [-0.2, 0.2]}}, {"additive_gaussian_noise": {}},
              {"sometimes": {"p": 0.5, "ops": [{"cutout": {}}]}})


@pytest.mark.parametrize("mode", ["replace", "paired"])
def test_same_seed_same_batches_different_seed_different(mode):
    x, y = images(40, seed=2), np.arange(40, dtype=np.int64) % 10
    config = pipeline(*STOCHASTIC, mode=mode, random_order=True)
    first = _epoch(x, y, config, seed=11, batch_size=8)
    np.random.seed(123)  # the global NumPy state must not matter
    second = _epoch(x, y, config, seed=11, batch_size=8)
    other = _epoch(x, y, config, seed=12, batch_size=8)
    assert len(first) == len(second) == len(other)
    assert all(np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) for a, b in zip(first, second))
    assert not any(np.array_equal(a[0], b[0]) for a, b in zip(first, other))
    same_images = [BatchAugmenter(config, 3, seed)(x[:8], y[:8], epoch=0, step=0)[0] for seed in (11, 11, 12)]
    assert np.array_equal(same_images[0], same_images[1]) and not np.array_equal(same_images[0], same_images[2])
    resumed = _epoch(x, y, config, seed=11, batch_size=8, start_step=3)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first[3:], resumed))
    next_epoch = _epoch(x, y, config, seed=11, batch_size=8, epoch=1)
    assert not np.array_equal(first[0][0], next_epoch[0][0])


# ---- preview and runs --------------------------------------------------------------------------------------
AUG = ["augmentation.mode=paired", "augmentation.random_order=true",
       "augmentation.ops=[{fliplr: {p: 0.5}}, {sometimes: {p: 0.5, ops: [{affine: {rotate: [-15, 15]}}]}}]"]


def test_preview_writes_a_png_without_tensorflow(tmp_path):
    out = tmp_path / "grid.png"
    args = ["augment", "preview", str(QUICKSTART), "--out", str(out), "--images", "3", "--versions", "2"]
    for item in AUG:
        args += ["--set", item]
    code = f"import sys\nfrom dilbench.cli import cli\ncli({args!r}, standalone_mode=False)\nprint('TF', 'tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines() == [f"wrote {out}", "TF False"]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_preview_without_ops_is_a_usage_error(tmp_path):
    result = invoke("augment", "preview", QUICKSTART, "--out", tmp_path / "g.png")
    assert result.exit_code == 2 and result.output == "Error: quickstart: augmentation.ops is empty; there is nothing to preview\n"


STEPS_PER_EPOCH = 10  # ceil(300 / 32): 32 originals + 32 augmented copies per batch; the last holds 12 + 12


def checkpoint_values(run: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(run / "checkpoints" / "latest"))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map() if k.startswith(("weights/", "optimizers/"))}


@pytest.fixture(scope="module")
def paired_run(tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    return train_tiny(runs, *AUG, name="aug")


def test_paired_run_plots_its_augmentation_and_counts_updates(paired_run):
    assert (paired_run / "plots" / "augmentation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    records = [json.loads(line) for line in (paired_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["updates"] for r in records] == [[STEPS_PER_EPOCH] * 8] * 2
    assert records[1]["updates_total"] == [2 * STEPS_PER_EPOCH] * 8
    assert all(r["images_per_s"] * r["train_seconds"] == pytest.approx(600) for r in records)  # 300 originals + 300 copies


def test_interrupted_paired_run_resumes_bit_equal(paired_run, tmp_path, monkeypatch):
    from dilbench.training import progress

    original, calls = progress.Progress.update, []

    def update_then_interrupt(self, **stats):
        original(self, **stats)
        calls.append(1)
        if len(calls) == STEPS_PER_EPOCH + 3:  # epoch 2, step 3
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(progress.Progress, "update", update_then_interrupt)
    assert run_train(tmp_path, *AUG, name="aug").exit_code == 130
    monkeypatch.setattr(progress.Progress, "update", original)
    path = the_run(tmp_path, "aug")
    assert invoke("train", "--resume", path).exit_code == 0
    straight, resumed = checkpoint_values(paired_run), checkpoint_values(path)
    assert straight.keys() == resumed.keys()
    assert all(np.array_equal(straight[k], resumed[k]) for k in straight)
