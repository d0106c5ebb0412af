"""The run config: composes the sections that data, models, schedules, optimizers and augment own,
reads YAML (with `--set` overrides) and reports every problem as `FILE:LINE: key: problem`.
No TensorFlow import."""

from dilbench.config.loader import dump_config, load_config
from dilbench.config.schema import Config
from dilbench.config.yamlfile import ConfigError

__all__ = ["Config", "ConfigError", "dump_config", "load_config"]
