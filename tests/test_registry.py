""""One file plus one line": a toy model, schedule and data set (tests/toy/, one file each) are registered
with one line each and train end to end through the real CLI; registry keys must match config names."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner
from toy import data as toy_data
from toy import model as toy_model
from toy import schedule as toy_schedule

from dilbench.cli import cli
from dilbench.config.schema import Config
from dilbench.data.registry import READERS
from dilbench.models import MODELS
from dilbench.optimizers import OPTIMIZERS
from dilbench.schedules import SCHEDULES
from dilbench.typed.registry import RegistryError, check_names
from dilbench.typed.validate import FieldError, build

TOY_CONFIG = """\
name: toy
data: {dataset: toy_random}
model: {name: toy_mlp, units: 4}
schedule: toy_top_twice
optimizer: {name: sgd, lr: 0.01}
train: {epochs: 1, batch_size: 8}
runtime: {eval_batch_size: 16}
"""


@pytest.fixture
def toys(monkeypatch):
    """The three toy entries registered, one line each; monkeypatch removes them afterwards."""
    monkeypatch.setitem(MODELS, "toy_mlp", toy_model.ENTRY)
    monkeypatch.setitem(SCHEDULES, "toy_top_twice", toy_schedule.ENTRY)
    monkeypatch.setitem(READERS, "toy_random", toy_data)


def test_toy_model_schedule_and_data_set_train_one_epoch_through_the_cli(toys, tmp_path):
    config = tmp_path / "toy.yaml"
    config.write_text(TOY_CONFIG)
    runs = tmp_path / "runs"
    result = CliRunner().invoke(cli, ["train", str(config), "--runs-dir", str(runs)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # 48 images / batch 8 = 6 batches; per batch group 1 is updated once, group 2 (top) 3 times
    assert record["epoch"] == 1 and record["updates"] == [6, 18]
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["error"] is None


def test_validation_reads_the_registries_as_they_are_when_it_runs(toys, monkeypatch):
    raw = yaml.safe_load(TOY_CONFIG)
    cfg = build(Config, raw)
    assert (cfg.data.dataset, cfg.model.name, cfg.schedule.name) == ("toy_random", "toy_mlp", "toy_top_twice")
    monkeypatch.undo()  # unregistered again: the same config is refused, naming every toy entry
    with pytest.raises(FieldError) as refused:
        build(Config, raw)
    assert [err.path for err in refused.value.errors] == ["data.dataset", "model.name", "schedule.name"]


def test_registry_keys_match_config_names():
    check_names({key: entry.config for key, entry in MODELS.items()}, "model")
    check_names(OPTIMIZERS, "optimizer")
    check_names({"toy_mlp": toy_model.ToyMlpConfig}, "model")
    with pytest.raises(RegistryError, match=r"model registry key 'toy' does not match .*ToyMlpConfig's name default 'toy_mlp'"):
        check_names({"toy": toy_model.ToyMlpConfig}, "model")
