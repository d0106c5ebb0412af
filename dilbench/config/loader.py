"""Read a YAML config, apply `--set` overrides, validate, and report errors as `FILE:LINE: key: problem`.

Every problem found is reported, one line each, in file order (then the `--set` ones), so a user fixing
a config sees them all at once.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dilbench.config.schema import Config
from dilbench.config.yamlfile import ConfigError, InvalidYaml, parse_yaml, read_yaml
from dilbench.registry import missing_hint
from dilbench.typed.validate import FieldError, build, to_plain

log = logging.getLogger("dilbench")
# keys that moved to `runtime:` (how a run executes, not what it computes): configs written before still load
MOVED = {"deterministic": "runtime.deterministic", "train.distribute": "runtime.distribute",
         "train.devices": "runtime.devices", "train.xla": "runtime.xla", "train.eval_batch_size": "runtime.eval_batch_size",
         "train.checkpoint_every": "runtime.checkpoint_every"}
_noted: set[str] = set()  # each note once per process: a sweep loads the same files many times


def parse_value(text: str, source: str = "value") -> Any:
    """A `--set` value, read as YAML so `64`, `1e-4`, `true`, `[1, 2]` get their natural types.

    Text that is not YAML stays a string; duplicate keys and alias bombs are ConfigErrors, as in files.
    """
    try:
        value = parse_yaml(text, source)
    except InvalidYaml:
        return text
    if value.duplicates:
        raise ConfigError(f"{source}: duplicate key {value.duplicates[0][0]!r} in the value; keep one of them")
    return value.data


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
        return cls(key, parse_value(text, f"--set {key}"))

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


def load_config(path: str | Path, overrides: Sequence[str | Override] = ()) -> Config:
    """Load, override and validate a config file; ConfigError naming file, line and key of every problem.

    Overrides are `--set` texts (`KEY=VALUE`) or Override objects, applied in order.
    """
    path = Path(path)
    document = read_yaml(path)
    raw = {} if document.data is None else document.data
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: the config must be a mapping of sections (name, data, model, ...)")
    problems = [((0, line), text) for line, text in document.duplicate_problems()]
    problems += _move_to_runtime(raw, path, document.lines)
    applied = [moved(item if isinstance(item, Override) else Override.parse(item)) for item in overrides]
    for item in applied:
        item.apply(raw)
    try:
        config = build(Config, raw)
    except FieldError as err:
        problems += [locate(_with_plugin_hint(e), path, document.lines, applied) for e in err.errors]
    if problems:
        raise report(problems)
    return config


REGISTRY_KEYS = ("data.dataset", "model.name", "schedule.name")  # where a config names a registry entry


def _with_plugin_hint(err: FieldError) -> FieldError:
    """An unknown registry name, when a plugin failed to load, says so: the name may be that plugin's."""
    names_entry = err.path in REGISTRY_KEYS or err.message.startswith("unknown operation")
    hint = missing_hint() if names_entry else ""
    return FieldError(err.path, err.message + hint) if hint else err


def _move_to_runtime(raw: dict, path: Path, lines: dict[str, int]) -> list[tuple[tuple[int, int], str]]:
    """Move the keys of a config written before `runtime:` existed to their new place (noting each once);
    a key written in both places is a problem, since one of the two would be ignored."""
    problems = []
    for old, new in MOVED.items():
        *parents, leaf = old.split(".")
        section = raw.get(parents[0]) if parents else raw
        if not isinstance(section, dict) or leaf not in section:
            continue
        runtime = raw.setdefault("runtime", {})
        if not isinstance(runtime, dict):
            continue  # validation reports that runtime is not a mapping
        line = lines.get(old, 1)
        value = section.pop(leaf)
        if new.split(".")[1] in runtime:
            problems.append(((0, line), f"{path}:{line}: {old}: is now {new}, which this file sets too; keep only {new}"))
            continue
        runtime[new.split(".")[1]] = value
        lines.setdefault(new, line)  # a bad value is still reported at the line that wrote it
        _note(f"{path}:{line}: {old} is now {new} (how a run executes, not what it computes; --resume may change it)")
    return problems


def moved(item: Override) -> Override:
    """A `--set` of a key that moved to `runtime:`, set at its new place (noted once)."""
    new = MOVED.get(item.key)
    if new is None:
        return item
    _note(f"{item.located(item.key)} is now {new} (how a run executes, not what it computes; --resume may change it)")
    return Override(new, item.value, item.where)


def _note(text: str) -> None:
    if text not in _noted:
        _noted.add(text)
        log.warning("note: %s", text)


def report(problems: Iterable[tuple[tuple[int, int], str]]) -> ConfigError:
    """One ConfigError of many problems given as (sort key, text): one line each, sorted, without repeats."""
    return ConfigError("\n".join(dict.fromkeys(text for _, text in sorted(problems, key=lambda problem: problem[0]))))


def locate(err: FieldError, path: Path, lines: dict[str, int], overrides: Sequence[Override] = ()) -> tuple[tuple[int, int], str]:
    """(sort key, `WHERE: KEY: problem`): where the last override that set the key was written (after the
    file's lines, in the order given), else `FILE:LINE` at the key or its nearest enclosing key."""
    key = err.path
    for index in reversed(range(len(overrides))):
        name = overrides[index].key
        if key == name or key.startswith(name + ".") or name.startswith(key + "."):
            return (1, index), f"{overrides[index].located(key)}: {err.message}"
    line = line_of(key, lines)
    return (0, line), f"{path}:{line}: {key}: {err.message}"


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
