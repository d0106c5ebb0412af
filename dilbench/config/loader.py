"""Read a YAML config, apply `--set` overrides, validate, and report errors as `FILE:LINE: key: problem`."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dilbench.config.schema import Config
from dilbench.config.validate import FieldError, build, to_plain
from dilbench.errors import UsageError


class ConfigError(UsageError):
    """A config file or override is invalid; the message says where and how to fix it."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-4` as a float (YAML 1.1 wants `1.0e-4`, a classic trap)."""


_FLOAT = re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$|^[-+]?(?:\d[\d_]*)?\.\d*(?:[eE][-+]?\d+)?$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def _lines(node: yaml.Node, path: str = "", out: dict[str, int] | None = None) -> dict[str, int]:
    """Map each dotted key path in a composed YAML tree to its 1-based line."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = f"{path}.{key_node.value}" if path else str(key_node.value)
            out[child] = key_node.start_mark.line + 1
            _lines(value_node, child, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = f"{path}[{i}]"
            out[child] = item.start_mark.line + 1
            _lines(item, child, out)
    return out


def parse_value(text: str) -> Any:
    """A `--set` value, read as YAML so `64`, `1e-4`, `true`, `[1, 2]` get their natural types."""
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError:
        return text


@dataclass(frozen=True)
class Override:
    """One dotted config key set on top of a config file, and where it was written.

    `--set KEY=VALUE` has `where=None`; an experiment file gives `FILE:LINE`, so a bad value in a sweep
    is reported at the line that wrote it rather than in the base config.
    """

    key: str
    value: Any
    where: str | None = None

    @classmethod
    def parse(cls, assignment: str) -> Override:
        """`KEY=VALUE` as given to --set."""
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set {assignment}: expected KEY=VALUE, e.g. --set model.channels=64")
        return cls(key, parse_value(text))

    def apply(self, raw: dict) -> None:
        """Set the key in the raw YAML data; a copy of the value, so shared values never change."""
        parts = self.key.split(".")
        node = raw
        for part in parts[:-1]:
            child = node.get(part)
            if isinstance(child, str) and part in ("model", "schedule", "optimizer"):
                child = {"name": child}  # `schedule: standard` shorthand, expanded so a sub-key can be set
            if not isinstance(child, dict):
                child = {}
            node[part] = child
            node = child
        node[parts[-1]] = copy.deepcopy(self.value)

    def located(self, key: str) -> str:
        return f"--set {key}" if self.where is None else f"{self.where}: {key}"


def read_yaml(path: Path, what: str = "config") -> tuple[Any, dict[str, int]]:
    """The parsed YAML file and the line of each dotted key path in it; ConfigError if unreadable."""
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read {what} ({err.strerror}); check the path") from None
    try:
        root = yaml.compose(text, Loader=_Loader)
        raw = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"{where}: invalid YAML: {problem}; fix the syntax (indentation, colons, quotes)") from None
    return raw, _lines(root) if root is not None else {}


def load_config(path: str | Path, overrides: Sequence[str | Override] = ()) -> Config:
    """Load, override and validate a config file; raise ConfigError naming file, line and key.

    Overrides are `--set` texts (`KEY=VALUE`) or Override objects, applied in order.
    """
    path = Path(path)
    raw, lines = read_yaml(path)
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: the config must be a mapping of sections (name, data, model, ...)")
    applied = [item if isinstance(item, Override) else Override.parse(item) for item in overrides]
    for item in applied:
        item.apply(raw)
    try:
        return build(Config, raw)
    except FieldError as err:
        raise ConfigError(f"{_where(err.path, path, lines, applied)}: {err.message}") from None


def _where(key: str, path: Path, lines: dict[str, int], overrides: list[Override]) -> str:
    """Where the last override that set this key was written, else `FILE:LINE: KEY` at the nearest enclosing key."""
    for item in reversed(overrides):
        name = item.key
        if key == name or key.startswith(name + ".") or name.startswith(key + "."):
            return item.located(key)
    return f"{path}:{line_of(key, lines)}: {key}"


def line_of(key: str, lines: dict[str, int]) -> int:
    """The line of a dotted key, or of its nearest enclosing key that has one (1 if none)."""
    probe = key
    while probe in lines or "." in probe or probe.endswith("]"):
        if probe in lines:
            return lines[probe]
        probe = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", probe)
    return 1


class _Dumper(yaml.SafeDumper):
    """Block-style sections, but lists of plain values on one line: `dilations: [1, 1, 2, 4]`."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = all(not isinstance(item, (dict, list)) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump_config(config: Config) -> str:
    """The fully resolved config as YAML; loading it back gives an equal Config."""
    return yaml.dump(to_plain(config), Dumper=_Dumper, sort_keys=False, default_flow_style=False)
