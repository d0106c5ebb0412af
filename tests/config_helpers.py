"""Helpers shared by the config tests: write a YAML file, and the one-line error loading it gives."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

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
