"""Config loading: strict schema, line-numbered errors, overrides, and a lossless round trip."""

from __future__ import annotations

import subprocess
import sys

import pytest
from toolkit import CONFIGS, QUICKSTART, REPO, error_of, nonempty, write

from dilbench.config import Config, dump_config, load_config
from dilbench.config.schema import RuntimeConfig
from dilbench.optimizers import AdamConfig, SGDConfig


def test_defaults_from_empty_file(tmp_path):
    assert load_config(write(tmp_path, "")) == Config()


def test_unknown_key_names_file_line_key_and_suggestion(tmp_path):
    path = write(tmp_path, """\
        name: a
        model:
          name: context_module
          chanels: 16
        """)
    message = error_of(path)
    assert message.startswith(f"{path}:4: model.chanels: unknown key (did you mean 'channels'?)")


def test_unknown_section_suggests_nearest(tmp_path):
    message = error_of(write(tmp_path, "optimiser:\n  lr: 0.1\n"))
    assert message.startswith(f"{tmp_path / 'c.yaml'}:1: optimiser: unknown key (did you mean 'optimizer'?)")


def test_wrong_type_names_expected_type(tmp_path):
    path = write(tmp_path, "train:\n  epochs: ten\n")
    assert error_of(path) == f"{path}:2: train.epochs: expected int, got 'ten'"


def test_bool_is_not_an_int(tmp_path):
    path = write(tmp_path, "seed: true\n")
    assert error_of(path) == f"{path}:1: seed: expected int, got True"


def test_bad_value_and_bad_choice(tmp_path):
    path = write(tmp_path, "optimizer:\n  name: adam\n  beta1: 1.5\n")
    assert error_of(path).startswith(f"{path}:3: optimizer.beta1: must be in [0, 1)")
    path = write(tmp_path, "precision: bfloat\n")
    assert error_of(path).startswith(f"{path}:1: precision: expected one of float32, bfloat16, float16, got 'bfloat'")
    assert "did you mean 'bfloat16'" in error_of(path)


def test_unknown_model_lists_registered_ones(tmp_path):
    path = write(tmp_path, "model:\n  name: contxt_module\n")
    message = error_of(path)
    assert message.startswith(f"{path}:2: model.name: unknown model 'contxt_module'; choose one of context_module")
    assert "did you mean 'context_module'" in message


def test_list_item_line(tmp_path):
    path = write(tmp_path, "model:\n  dilations:\n    - 1\n    - 2\n    - zero\n")
    assert error_of(path) == f"{path}:5: model.dilations[2]: expected int, got 'zero'"


def test_bad_yaml_reports_line(tmp_path):
    path = write(tmp_path, "name: a\nmodel: {name: x\nseed: 1\n")
    message = error_of(path)
    assert message.startswith(f"{path}:3: invalid YAML")


def test_missing_file(tmp_path):
    assert "cannot read config" in error_of(tmp_path / "nope.yaml")


def test_scientific_notation_is_a_float(tmp_path):
    cfg = load_config(write(tmp_path, "optimizer:\n  name: adam\n  lr: 1e-4\n"))
    assert cfg.optimizer == AdamConfig(lr=1e-4)


def test_overrides_are_typed_and_name_the_flag(tmp_path):
    path = write(tmp_path, "model:\n  name: context_module\n  channels: 8\n")
    cfg = load_config(path, ["model.channels=64", "optimizer=sgd", "optimizer.momentum=0.9", "model.dilations=[1, 2]"])
    assert cfg.model.channels == 64 and cfg.model.dilations == (1, 2)
    assert cfg.optimizer == SGDConfig(momentum=0.9)
    assert error_of(path, ["train.epochs=many"]) == "--set train.epochs: expected int, got 'many'"
    assert error_of(path, ["model.chanels=3"]).startswith("--set model.chanels: unknown key (did you mean 'channels'?)")
    assert "expected KEY=VALUE" in error_of(path, ["model.channels"])


def test_schedule_shorthand(tmp_path):
    cfg = load_config(write(tmp_path, "schedule: standard\n"))
    assert cfg.schedule.name == "standard"


def test_cross_field_check(tmp_path):
    path = write(tmp_path, "train:\n  eval: validation\n")
    assert "data.validation is 0" in error_of(path)


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(QUICKSTART, ["optimizer.lr=3.16e-4", "data.validation=0.1"])
    saved = tmp_path / "resolved.yaml"
    saved.write_text(dump_config(cfg))
    assert load_config(saved) == cfg
    assert "dilations: [1, 1, 2, 4, 8, 16, 1]" in saved.read_text()


SHIPPED = nonempty(sorted(CONFIGS.glob("*.yaml")), "configs/*.yaml")


def test_the_shipped_configs_are_found():
    assert {"quickstart.yaml", "unfair_back.yaml", "resnet_v2_cifar.yaml"} <= {path.name for path in SHIPPED}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    load_config(path)


def test_config_loading_does_not_import_tensorflow():
    code = (f"import sys; from dilbench.config import load_config; load_config({str(QUICKSTART)!r}); "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- every problem at once ---------------------------------------------------------------------------
def test_every_problem_of_a_file_is_reported_one_line_each_in_file_order(tmp_path):
    path = write(tmp_path, """\
        seedd: 1
        model:
          name: context_module
          chanels: 16
          dilations: [1, x, 2, y]
        optimizer:
          name: adam
          lr: fast
        train:
          epochs: -1
          batch_size: 0
        augmentation:
          ops:
            - fliplr: {p: 2}
            - flipup: {p: 1}
        precision: bfloat
        """)
    assert error_of(path, ["train.xla=maybe"]).splitlines() == [
        f"{path}:1: seedd: unknown key (did you mean 'seed'?); valid keys: name, seed, precision, data, model, "
        "schedule, optimizer, augmentation, train, runtime",
        f"{path}:4: model.chanels: unknown key (did you mean 'channels'?); valid keys: name, variant, channels, dilations, "
        "init, init_stddev, head, hidden",
        f"{path}:5: model.dilations[1]: expected int, got 'x'",
        f"{path}:5: model.dilations[3]: expected int, got 'y'",
        f"{path}:8: optimizer.lr: expected float, got 'fast'",
        f"{path}:10: train.epochs: must be > 0, got -1",  # train's own checks run: its fields are right
        f"{path}:11: train.batch_size: must be > 0, got 0",
        f"{path}:14: augmentation.ops[0].fliplr.p: must be in [0, 1], got 2.0",
        f"{path}:15: augmentation.ops[1].flipup: unknown operation 'flipup' (did you mean 'flipud'?); choose one of "
        "fliplr, flipud, affine, crop, pad, crop_and_pad, gaussian_blur, additive_gaussian_noise, dropout, linear_contrast, "
        "multiply, cutout, grayscale, sometimes, one_of, some_of, sequence",
        f"{path}:16: precision: expected one of float32, bfloat16, float16, got 'bfloat' (did you mean 'bfloat16'?)",
        "--set runtime.xla: expected bool, got 'maybe'",
    ]


def test_value_checks_of_one_section_report_every_key(tmp_path):
    path = write(tmp_path, "train:\n  epochs: -1\n  batch_size: 0\n  lr_schedule: cosine\n")
    assert error_of(path).splitlines() == [
        f"{path}:2: train.epochs: must be > 0, got -1",
        f"{path}:3: train.batch_size: must be > 0, got 0",
    ]


# ---- values that cannot be right -----------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    ("optimizer: {lr: .nan}\n", "1: optimizer.lr: expected a finite number, got nan"),
    ("optimizer: {lr: .inf}\n", "1: optimizer.lr: expected a finite number, got inf"),
    ("data: {validation: -.inf}\n", "1: data.validation: expected a finite number, got -inf"),
    ("optimizer: {lr: 1e999}\n", "1: optimizer.lr: expected a finite number, got inf"),
    ("augmentation: {mode: replace, ops: [{affine: {rotate: [-.inf, 10]}}]}\n",
     "1: augmentation.ops[0].affine.rotate: expected float or list of 2 float, got [-inf, 10]"),
    ("model: {init_stddev: .nan}\n", "1: model.init_stddev: expected float or null, got nan"),
    ("seed: -1\n", "1: seed: must be >= 0, got -1"),
    ("model: {channels: 100000000000000000000000}\n",
     "1: model.channels: 100000000000000000000000 is too large: integers must fit in 64 bits"),
    ("optimizer: {lr: " + "9" * 400 + "}\n", "1: optimizer.lr: expected a finite number, got 999999999999... (400 digits)"),
])
def test_nan_infinite_and_out_of_range_numbers_are_refused(tmp_path, text, expected):
    path = write(tmp_path, text)
    assert error_of(path) == f"{path}:{expected}"


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf", "1e999"])
def test_nan_and_infinity_through_set_are_refused(tmp_path, value):
    assert error_of(write(tmp_path, ""), [f"optimizer.lr={value}"]).startswith("--set optimizer.lr: expected a finite number, got ")


def test_duplicate_keys_are_reported_at_the_second_with_the_first_line(tmp_path):
    path = write(tmp_path, """\
        name: a
        train:
          epochs: 3
          batch_size: 8
          epochs: 30
        model:
          channels: 1
        model:
          channels: 2
        name: b
        """)
    assert error_of(path).splitlines() == [
        f"{path}:5: train.epochs: duplicate key (first at line 3); keep one of them",
        f"{path}:8: model: duplicate key (first at line 6); keep one of them",
        f"{path}:10: name: duplicate key (first at line 1); keep one of them",
    ]


def test_duplicates_come_with_the_other_problems(tmp_path):
    path = write(tmp_path, "seed: 1\nseed: 2\ntrain: {epochs: ten}\n")
    assert error_of(path).splitlines() == [
        f"{path}:2: seed: duplicate key (first at line 1); keep one of them",
        f"{path}:3: train.epochs: expected int, got 'ten'",
    ]


def test_aliases_and_merge_keys_are_not_duplicates(tmp_path):
    """A mapping reached twice through an alias is checked once; keys beside a merge key override it."""
    path = write(tmp_path, """\
        data: &d {dataset: mnist_bundled, dataset: mnist}
        optimizer:
          <<: {name: adam, lr: 0.1}
          lr: 0.01
        train: {<<: *d}
        """)
    assert error_of(path).splitlines() == [
        f"{path}:1: data.dataset: duplicate key (first at line 1); keep one of them",
        f"{path}:5: train.dataset: unknown key; valid keys: epochs, batch_size, eval, lr_schedule, "
        "batch_size_is",
    ]
    path = write(tmp_path, "train: &t {epochs: 2}\noptimizer:\n  <<: {name: adam, lr: 0.1}\n  lr: 0.01\n")
    cfg = load_config(path)
    assert cfg.optimizer.lr == 0.01 and cfg.train.epochs == 2


def test_duplicate_key_in_a_set_value(tmp_path):
    assert error_of(write(tmp_path, ""), ["model={hidden: [1], hidden: [2]}"]) == (
        "--set model: duplicate key 'hidden' in the value; keep one of them")


BILLION_LAUGHS = "".join(
    ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"]
    + [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 10)}]\n" for i in range(1, 10)]
)


def test_alias_bomb_fails_fast_with_a_clear_message(tmp_path):
    """10^10 values once expanded: refused from the node count, in a subprocess that would otherwise never end."""
    path = write(tmp_path, BILLION_LAUGHS)
    code = f"from dilbench.cli import main; import sys; sys.argv = ['dilbench', 'validate', {str(path)!r}]; main()"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert out.stderr == (f"Error: {path}:5: more than 100,000 values here once aliases are expanded (an alias bomb?); "
                          "a config holds a few hundred, so write them out or nest fewer aliases\n")


def test_a_smaller_alias_bomb_under_a_known_key(tmp_path):
    path = write(tmp_path, "".join(BILLION_LAUGHS.splitlines(keepends=True)[:6]).replace("l0:", "name:", 1))
    assert "values here once aliases are expanded (an alias bomb?)" in error_of(path)


def test_recursive_alias_and_deep_nesting(tmp_path):
    path = write(tmp_path, "model: &m {name: context_module, hidden: [*m]}\n")
    assert error_of(path) == f"{path}:1: this alias refers to a node that contains it, so it never ends; remove the recursive alias"
    path = write(tmp_path, "name: " + "[" * 150 + "]" * 150 + "\n")
    assert error_of(path) == f"{path}:1: nested more than 100 levels deep; a config nests a few levels"
    path = write(tmp_path, "name: " + "[" * 5000 + "]" * 5000 + "\n")
    assert error_of(path) == f"{path}: nested too deeply for a config; a config nests a few levels"


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: a\n# caf\xe9 au lait\nseed: 1\n".encode("latin-1"))
    assert error_of(path) == (f"{path}:2: not UTF-8 text: byte 0xe9 at byte offset 13 cannot be decoded; "
                              "save the config as UTF-8")
    path.write_bytes(b"\xef\xbb\xbfname: bom\n")  # a UTF-8 byte-order mark is UTF-8
    assert load_config(path).name == "bom"


def test_values_python_cannot_make_are_one_line_not_a_traceback(tmp_path):
    path = write(tmp_path, "name: a\nseed: 2026-13-45\n")  # YAML reads this as a date
    assert error_of(path) == (f"{path}:2: invalid YAML: cannot read '2026-13-45' (month must be in 1..12); "
                              "fix the syntax (indentation, colons, quotes)")
    path = write(tmp_path, "seed: " + "9" * 5000 + "\n")
    assert error_of(path).startswith(f"{path}:1: invalid YAML: cannot read '999999999999999999999999' (Exceeds the limit")
    path.write_bytes(b"name: a\nseed: 1\x00\n")  # UTF-8, but a control character YAML refuses
    assert error_of(path) == (f"{path}:2: invalid YAML: unacceptable character #x0000: special characters are not allowed; "
                              "fix the syntax (indentation, colons, quotes)")


# ---- runtime: how a run executes, apart from what it computes ------------------------------------------
def test_configs_of_the_old_form_load_with_a_note_of_each_new_place(tmp_path, caplog):
    path = write(tmp_path, "deterministic: true\ntrain:\n  epochs: 2\n  distribute: mirrored\n  devices: [CPU:0, CPU:1]\n"
                           "  eval_batch_size: 50\n  xla: false\n")
    with caplog.at_level("WARNING", logger="dilbench"):
        config = load_config(path)
    assert config.runtime == RuntimeConfig(distribute="mirrored", devices=("CPU:0", "CPU:1"), xla=False,
                                           eval_batch_size=50, deterministic=True)
    assert config.train.epochs == 2
    notes = [record.getMessage() for record in caplog.records]
    assert notes == [f"note: {path}:{line}: {old} is now runtime.{new} (how a run executes, not what it computes; "
                     "--resume may change it)"
                     for line, old, new in [(1, "deterministic", "deterministic"), (4, "train.distribute", "distribute"),
                                            (5, "train.devices", "devices"), (7, "train.xla", "xla"),
                                            (6, "train.eval_batch_size", "eval_batch_size")]]
    assert "runtime:\n  distribute: mirrored\n" in dump_config(config) and "deterministic" not in dump_config(config).split("runtime:")[0]
    assert load_config(path, ["train.devices=[CPU:1]"]).runtime.devices == ("CPU:1",)  # an old --set, too


def test_a_key_in_both_places_is_refused_and_bad_old_values_keep_their_line(tmp_path):
    path = write(tmp_path, "train:\n  xla: true\nruntime:\n  xla: false\n")
    assert error_of(path) == f"{path}:2: train.xla: is now runtime.xla, which this file sets too; keep only runtime.xla"
    path = write(tmp_path, "train:\n  epochs: 2\n  eval_batch_size: 0\n")
    assert error_of(path) == f"{path}:3: runtime.eval_batch_size: must be > 0, got 0"


def test_the_experiment_is_the_config_without_its_runtime(tmp_path):
    one = load_config(write(tmp_path, "runtime: {distribute: mirrored, devices: [CPU:0, CPU:1], eval_batch_size: 9}\n"))
    assert one != Config() and one.experiment() == Config().experiment() == Config()
    assert load_config(write(tmp_path, "seed: 1\n")).experiment() != Config()
