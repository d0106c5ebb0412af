"""Read a YAML file (a run config, an experiment) safely, keeping the line of every key.

Beyond YAML syntax errors, this refuses what YAML lets through but cannot be right: text that is not
UTF-8, a key written twice in one mapping (YAML keeps the last silently, hiding a typo), and aliases
that expand into an enormous tree (an "alias bomb") or an endless one (`&a [*a]`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dilbench.errors import UsageError
from dilbench.typed.validate import join

MAX_NODES = 100_000  # values after alias expansion; a config has a few hundred
MAX_DEPTH = 100  # nesting after alias expansion; a config nests a few levels


class ConfigError(UsageError):
    """A config file, experiment file or override is invalid; one line per problem, each saying where and how to fix it."""


class InvalidYaml(ConfigError):
    """The text is not YAML at all (a syntax error)."""


class _Loader(yaml.SafeLoader):
    """SafeLoader that also reads `1e-4` as a float (YAML 1.1 wants `1.0e-4`, a classic trap)."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        """A value Python cannot make (`2026-13-45` as a date, an integer of 5,000 digits) is a YAML error at its line."""
        try:
            return super().construct_object(node, deep)
        except ValueError as err:
            problem = f"cannot read {str(node.value)[:24]!r} ({str(err).split(';')[0]})"
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from None


_FLOAT = re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$|^[-+]?(?:\d[\d_]*)?\.\d*(?:[eE][-+]?\d+)?$")
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


@dataclass
class YamlFile:
    """A parsed YAML document: its data, the line of each dotted key path, and the keys written twice."""

    source: str  # the file name, or `--set KEY` for a value on the command line
    data: Any
    lines: dict[str, int] = field(default_factory=dict)
    duplicates: list[tuple[str, int, int]] = field(default_factory=list)  # (dotted key, line, line of the first)

    def duplicate_problems(self) -> list[tuple[int, str]]:
        """(line, message) of every duplicate key, as `FILE:LINE: key: duplicate key (first at line N)`."""
        return [(line, f"{self.source}:{line}: {key}: duplicate key (first at line {first}); keep one of them")
                for key, line, first in self.duplicates]


def read_yaml(path: Path, what: str = "config") -> YamlFile:
    """Read and parse a YAML file; ConfigError naming the file (and line or byte) if it cannot be."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"{path}: cannot read {what} ({err.strerror}); check the path") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text: byte 0x{data[err.start]:02x} at byte offset {err.start} "
                          f"cannot be decoded; save the {what} as UTF-8") from None
    return parse_yaml(text.removeprefix("\ufeff"), str(path))


def parse_yaml(text: str, source: str) -> YamlFile:
    """Parse one YAML document from text; `source` names it in messages (a file, or `--set KEY`)."""
    try:
        loader = _Loader(text)  # refuses control characters such as NUL right away
    except yaml.YAMLError as err:
        raise _invalid(err, text, source) from None
    try:
        root = loader.get_single_node()
        if root is None:
            return YamlFile(source, None)
        _check_expansion(root, source)
        lines = {path: node.start_mark.line + 1 for path, node, _ in _walk(root)}
        duplicates = _duplicates(root)
        return YamlFile(source, loader.construct_document(root), lines, duplicates)
    except yaml.YAMLError as err:
        raise _invalid(err, text, source) from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply for a config; a config nests a few levels") from None
    finally:
        loader.dispose()


def _invalid(err: yaml.YAMLError, text: str, source: str) -> InvalidYaml:
    mark = getattr(err, "problem_mark", None)
    position = getattr(err, "position", None)  # a ReaderError's character offset
    line = mark.line + 1 if mark else text.count("\n", 0, position) + 1 if position is not None else None
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return InvalidYaml(f"{source}{f':{line}' if line else ''}: invalid YAML: {problem}; fix the syntax (indentation, colons, quotes)")


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _check_expansion(root: yaml.Node, source: str) -> None:
    """ConfigError if the tree the aliases expand to is too large, too deep or endless.

    PyYAML shares an aliased node rather than copying it, so composing a "billion laughs" document is
    cheap; whatever walks the values afterwards (line numbers, validation, dumping) pays for every
    expanded node. Sizes are counted over the shared nodes, each once, without recursion.
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        line = node.start_mark.line + 1
        if children_done:
            on_path.discard(key)
            children = _children(node)
            size[key] = 1 + sum(size[id(child)] for child in children)
            depth[key] = 1 + max((depth[id(child)] for child in children), default=0)
            if size[key] > MAX_NODES:
                raise ConfigError(f"{source}:{line}: more than {MAX_NODES:,} values here once aliases are expanded "
                                  "(an alias bomb?); a config holds a few hundred, so write them out or nest fewer aliases")
            if depth[key] > MAX_DEPTH:
                raise ConfigError(f"{source}:{line}: nested more than {MAX_DEPTH} levels deep; a config nests a few levels")
        elif key in on_path:
            raise ConfigError(f"{source}:{line}: this alias refers to a node that contains it, so it never ends; "
                              "remove the recursive alias")
        elif key not in size:
            on_path.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))


def _walk(node: yaml.Node, path: str = "") -> Iterator[tuple[str, yaml.Node, yaml.Node]]:
    """(dotted path, key node or list item, value node) of every key and item of the expanded tree."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = join(path, str(key_node.value))
            yield child, key_node, value_node
            yield from _walk(value_node, child)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            child = join(path, i)
            yield child, item, item
            yield from _walk(item, child)


def _duplicates(root: yaml.Node) -> list[tuple[str, int, int]]:
    """Keys written twice in one mapping, checked once per mapping (an aliased one is seen only once).

    Merge keys (`<<: *defaults`) are not duplicates: keys written beside them override them by design.
    """
    found = []
    checked: set[int] = set()
    for path, _, node in [("", root, root), *_walk(root)]:
        if not isinstance(node, yaml.MappingNode) or id(node) in checked:
            continue
        checked.add(id(node))
        first: dict[str, int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            line = key_node.start_mark.line + 1
            if key_node.value in first:
                found.append((join(path, key_node.value), line, first[key_node.value]))
            else:
                first[key_node.value] = line
    return found
