"""Typed, frozen run configuration loaded from YAML (no TensorFlow import)."""

from dilbench.config.loader import ConfigError, dump_config, load_config
from dilbench.config.schema import Config

__all__ = ["Config", "ConfigError", "dump_config", "load_config"]
