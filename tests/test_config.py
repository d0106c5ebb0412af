"""Config loading: strict schema, line-numbered errors, overrides, and a lossless round trip."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from config_helpers import error_of, write

from dilbench.config import Config, dump_config, load_config
from dilbench.config.schema import AdamConfig, SGDConfig

REPO = Path(__file__).resolve().parents[1]


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
    cfg = load_config(REPO / "dilbench" / "configs" / "quickstart.yaml", ["optimizer.lr=3.16e-4", "data.validation=0.1"])
    saved = tmp_path / "resolved.yaml"
    saved.write_text(dump_config(cfg))
    assert load_config(saved) == cfg
    assert "dilations: [1, 1, 2, 4, 8, 16, 1]" in saved.read_text()


@pytest.mark.parametrize("path", sorted((REPO / "dilbench" / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    load_config(path)


def test_config_loading_does_not_import_tensorflow():
    code = ("import sys; from dilbench.config import load_config; load_config('dilbench/configs/quickstart.yaml'); "
            "print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
