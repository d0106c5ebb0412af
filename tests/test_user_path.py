"""What a new user meets first: bundled configs by name, `configs`, `init`, global flags anywhere,
one-line errors for the unexpected, stdout that carries only the run directory, and a sweep that
checks its data before starting any run."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest
from toolkit import REPO, invoke, nonempty

import dilbench.cli as cli_module
from dilbench import tfquiet
from dilbench.data.locate import keras_download
from dilbench.examples import CONFIGS, EXPERIMENTS, bundled_configs, bundled_experiments

CONFIG_NAMES = nonempty(sorted(path.stem for path in CONFIGS.glob("*.yaml")), "the bundled configs")
EXPERIMENT_NAMES = nonempty(sorted(path.parent.name for path in EXPERIMENTS.glob("*/experiment.yaml")), "the bundled experiments")


@pytest.fixture
def in_tmp(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_configs_lists_every_bundled_config_and_experiment_once():
    assert len(CONFIG_NAMES) == 10 and len(EXPERIMENT_NAMES) == 3
    result = invoke("configs")
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.output.splitlines() if line.startswith("  ")]
    assert names == CONFIG_NAMES + EXPERIMENT_NAMES
    assert "  quickstart            context_module, standard schedule, mnist_bundled, 5 epochs, bfloat16\n" in result.output


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_every_bundled_config_loads_by_name_from_anywhere(in_tmp, name):
    result = invoke("train", name, "--dry-run")
    assert result.exit_code == 0, result.output
    assert (CONFIGS / f"{name}.yaml").read_text().count("\nname: ") == 1
    assert "\nseed: " in result.output


def test_a_path_wins_over_a_bundled_name(in_tmp):
    (in_tmp / "quickstart").write_text("name: mine\ndata: {dataset: mnist_bundled}\n")
    assert invoke("train", "quickstart", "--dry-run").output.startswith("name: mine\n")
    assert invoke("train", "quickstart.yaml", "--dry-run").output.startswith("name: quickstart\n")


def test_unknown_name_or_missing_path_is_one_line_exit_2(in_tmp):
    result = invoke("validate", "quickstrat")
    assert result.exit_code == 2
    assert "quickstrat: no such file, nor a bundled config name (" in result.output
    assert "Traceback" not in result.output
    result = invoke("train", "configs/quickstart.yaml")  # meant as a path: not looked up by name
    assert result.exit_code == 2 and "configs/quickstart.yaml: cannot read config" in result.output


@pytest.mark.parametrize("command", [["summary"], ["bench"], ["augment", "preview"]])
def test_other_config_commands_take_names(in_tmp, command):
    result = invoke(*command, "nosuch", *(["--out", "x.png"] if "preview" in command else []))
    assert result.exit_code == 2 and "nosuch: no such file, nor a bundled config name" in result.output


def test_init_copies_editable_examples_and_never_overwrites(in_tmp):
    result = invoke("init", "mine")
    assert result.exit_code == 0, result.output
    copied = sorted(p.relative_to(in_tmp / "mine").as_posix() for p in (in_tmp / "mine").rglob("*") if p.is_file())
    assert [f"configs/{n}.yaml" for n in CONFIG_NAMES] == [c for c in copied if c.startswith("configs/") and c.endswith(".yaml")]
    for name in EXPERIMENT_NAMES:
        assert f"experiments/{name}/experiment.yaml" in copied
        assert not any(c.startswith(f"experiments/{name}/results") for c in copied)
    # the copies work where they are: an experiment's relative base path still resolves
    result = invoke("sweep", "mine/experiments/context_module", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "in mine/experiments/context_module/runs/quick" in result.output
    edited = in_tmp / "mine" / "configs" / "quickstart.yaml"
    edited.write_text(edited.read_text().replace("name: quickstart", "name: edited"))
    again = invoke("init", "mine")
    assert again.exit_code == 2 and "exists already" in again.output
    assert "name: edited" in edited.read_text()


def test_sweep_by_name_writes_under_the_working_directory(in_tmp):
    result = invoke("sweep", "context_module", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "12 runs in experiments/context_module/runs/quick" in result.output


@pytest.mark.parametrize("flag", ["--quiet", "-q", "--debug"])
def test_global_flags_work_after_the_command(in_tmp, flag):
    result = invoke("validate", "quickstart", flag)
    assert result.exit_code == 0, result.output
    assert invoke(flag, "validate", "quickstart").exit_code == 0


def test_tensorflow_start_up_chatter_is_silenced_unless_debug(in_tmp, monkeypatch, capfd):
    """TensorFlow writes its start-up notices straight to file descriptor 2; --debug, before or after the
    command, keeps them, and the next command without it silences them again."""
    fake = types.ModuleType("tensorflow")
    fake.config = types.SimpleNamespace(list_logical_devices=lambda: os.write(2, b"oneDNN notice\n"))
    monkeypatch.setitem(sys.modules, "tensorflow", fake)
    monkeypatch.setattr(tfquiet, "_verbose", False)
    for args, shown in [(["validate", "quickstart"], False), (["--debug", "validate", "quickstart"], True),
                        (["validate", "quickstart"], False), (["validate", "quickstart", "--debug"], True)]:
        assert invoke(*args).exit_code == 0
        tfquiet.import_tensorflow()
        assert ("oneDNN notice" in capfd.readouterr().err) == shown, args


def test_unexpected_errors_are_one_line_unless_debug(in_tmp, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(cli_module, "load_config", broken)
    result = invoke("train", "quickstart", "--dry-run")
    assert result.exit_code == 1
    assert result.output == "Error: RuntimeError: disk on fire (run with --debug for the traceback)\n"
    debug = invoke("train", "quickstart", "--dry-run", "--debug", catch_exceptions=True)
    assert isinstance(debug.exception, RuntimeError)


def test_keras_download_messages_go_to_stderr(monkeypatch, capfd, tmp_path):
    """Keras prints `Downloading data from ...` on stdout; stdout must carry only the run directory."""
    fake_utils = types.ModuleType("keras.utils")

    def get_file(name, origin, file_hash):
        print(f"Downloading data from {origin}")
        return str(tmp_path / name)

    fake_utils.get_file = get_file
    monkeypatch.setitem(sys.modules, "keras", types.ModuleType("keras"))
    monkeypatch.setitem(sys.modules, "keras.utils", fake_utils)
    assert keras_download("mnist.npz", "https://example.invalid/mnist.npz", "0" * 64) == tmp_path / "mnist.npz"
    out, err = capfd.readouterr()
    assert out == "" and "Downloading data from https://example.invalid/mnist.npz" in err


def test_sweep_checks_data_once_before_starting_any_run(in_tmp):
    missing = in_tmp / "no-data-here"
    (in_tmp / "exp.yaml").write_text(
        f"name: nodata\nbase: {CONFIGS / 'quickstart.yaml'}\n"
        f"cases:\n  a: {{data.dataset: mnist, data.root: {missing}}}\n  b: {{data.dataset: mnist, data.root: {missing}, seed: 1}}\n")
    result = invoke("sweep", "exp.yaml")
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and f"mnist data root {missing} does not exist" in errors[0]
    assert "no run started; 2 run(s) need it" in errors[0]
    assert not list((in_tmp / "runs").glob("*/*"))  # no run directory was created


def test_a_checkout_runs_the_cards_commands_from_its_top_level(monkeypatch):
    """DESIGN.md 12: configs/ and experiments/ at the top are the one copy, and the card's paths work as written."""
    assert REPO / "configs" == CONFIGS and REPO / "experiments" == EXPERIMENTS
    assert not (REPO / "dilbench" / "configs").exists() and not (REPO / "dilbench" / "experiments").exists()
    monkeypatch.chdir(REPO)
    result = invoke("train", "configs/unfair_back.yaml", "--dry-run", "--set", "train.epochs=1")
    assert result.exit_code == 0, result.output
    assert "name: allconv_unfair_back\n" in result.output and "schedule:\n  name: unfair_back\n" in result.output
    result = invoke("sweep", "experiments/unfair_backprop", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "30 runs in experiments/unfair_backprop/runs/quick" in result.output


def test_every_model_family_has_a_bundled_config():
    from dilbench.config import load_config
    from dilbench.models import MODELS

    families = {load_config(example.path).model.name for example in bundled_configs()}
    assert families == set(MODELS) and len(families) == 4


def test_bundled_example_lists_match_the_package():
    assert [e.name for e in bundled_configs()] == CONFIG_NAMES
    assert [e.name for e in bundled_experiments()] == EXPERIMENT_NAMES
