"""Helpers shared by the tests: write a YAML config, the one-line error loading it gives, and a tiny
real training run."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from dilbench.cli import cli
from dilbench.config import ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def error_of(path: Path, overrides=()) -> str:
    """The ConfigError message of loading `path`; a config error always exits with code 2."""
    with pytest.raises(ConfigError) as info:
        load_config(path, overrides)
    assert info.value.exit_code == 2
    return str(info.value)


def train_tiny(runs: Path, overrides: Sequence[str]) -> Path:
    """`dilbench train quickstart --name tiny` with `overrides` into `runs` (trained for real); its run directory."""
    args = ["train", "configs/quickstart.yaml", "--runs-dir", str(runs), "--name", "tiny"]
    for item in overrides:
        args += ["--set", item]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (path,) = runs.glob("tiny-*")
    return path
