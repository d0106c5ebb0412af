"""The CLI through Click's CliRunner: exit codes, one-line errors, and no TensorFlow where none is needed."""

from __future__ import annotations

import subprocess
import sys

import pytest
from toolkit import CONFIGS, REPO, invoke

from dilbench import __version__


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.strip() == f"dilbench, version {__version__}"


def test_dry_run_prints_resolved_config_with_overrides():
    result = invoke("train", "quickstart", "--dry-run", "--set", "model.channels=8", "--name", "tiny")
    assert result.exit_code == 0
    assert "name: tiny\n" in result.output and "  channels: 8\n" in result.output


def test_config_error_is_one_line_with_exit_code_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  epoch: 3\n")
    result = invoke("train", str(bad), "--dry-run")
    assert result.exit_code == 2
    assert result.output == (
        f"Error: {bad}:2: train.epoch: unknown key (did you mean 'epochs'?); "
        "valid keys: epochs, batch_size, eval, lr_schedule, batch_size_is\n"
    )


def test_validate_reports_each_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: x\n")
    result = invoke("validate", "quickstart", str(bad))
    assert result.exit_code == 2
    assert "ok: " + str(CONFIGS / "quickstart.yaml") in result.output
    assert f"Error: {bad}:1: seed: expected int, got 'x'" in result.output


BAD = """\
name: a
seed: -3
model: {name: allconv9, width: 0, channels: 8}
optimizer: {name: adam, beta1: 1.5}
data: {dataset: minst}
augmentation:
  ops: [{fliplr: {p: 2}}, {affine: {rotat: 10}}]
"""
BAD_LINES = [
    ":3: model.channels: unknown key; valid keys: name, width",
    ":4: optimizer.beta1: must be in [0, 1), got 1.5",
    ":5: data.dataset: expected one of mnist, cifar10, imagefolder, mnist_bundled, got 'minst' (did you mean 'mnist'?)",
    ":7: augmentation.ops[0].fliplr.p: must be in [0, 1], got 2.0",
    ":7: augmentation.ops[1].affine.rotat: unknown key (did you mean 'rotate'?); valid keys: translate_percent, rotate, "
    "scale, shear, order, mode, cval",
]


@pytest.mark.parametrize("command", [["validate"], ["train", "--dry-run"]])
def test_every_problem_of_a_config_is_one_error_line(tmp_path, command):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    result = invoke(command[0], str(bad), *command[1:])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"Error: {bad}{line}" for line in BAD_LINES]


def test_seed_error_comes_once_the_sections_are_right(tmp_path):
    """Config's own checks (seed, name, cross-section ones) need every section built, so they come on the next pass."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: -3\ntrain: {epochs: 0}\n")
    result = invoke("validate", str(bad))
    assert result.stderr == f"Error: {bad}:2: train.epochs: must be > 0, got 0\n"
    bad.write_text("seed: -3\n")
    assert invoke("validate", str(bad)).stderr == f"Error: {bad}:1: seed: must be >= 0, got -3\n"


def test_train_needs_a_config():
    result = invoke("train")
    assert result.exit_code == 2 and "give a CONFIG file" in result.output


def test_resume_of_a_non_run_directory(tmp_path):
    result = invoke("train", "--resume", str(tmp_path))
    assert result.exit_code == 2
    assert result.output.startswith(f"Error: {tmp_path}: not a dilbench run directory")


NO_TF_COMMANDS = [
    ["--help"], ["train", "--help"], ["train", "quickstart", "--dry-run"], ["validate", "quickstart"], ["schema"],
]


@pytest.mark.parametrize("args", NO_TF_COMMANDS)
def test_no_tensorflow_import(args):
    code = (
        "import sys\nfrom dilbench.cli import cli\n"
        f"try:\n    cli({args!r}, standalone_mode=False)\nfinally:\n    print('TF', 'tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "TF False"


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "dilbench", "--version"], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"dilbench, version {__version__}"


def test_distribution_config_errors(tmp_path, monkeypatch):
    result = invoke("train", "quickstart", "--dry-run", "--set", "runtime.devices=[TPU:0]")
    assert result.exit_code == 2 and "runtime.devices[0]: expected a device like GPU:0 or CPU:1, got 'TPU:0'" in result.output
    result = invoke("train", "quickstart", "--dry-run", "--set", "train.xla=true", "--set", "runtime.distribute=mirrored")
    assert result.exit_code == 2 and "XLA compilation is supported on one device only" in result.output
    monkeypatch.delenv("TF_CONFIG", raising=False)
    monkeypatch.delenv("SLURM_STEP_NUM_TASKS", raising=False)  # nor inside an srun step
    result = invoke("train", "quickstart", "--runs-dir", str(tmp_path), "--set", "runtime.distribute=multi_worker")
    assert result.exit_code == 2 and "multi_worker but there is no cluster: start every worker with `srun`" in result.output
    assert not any(tmp_path.iterdir())  # refused before any run directory exists
