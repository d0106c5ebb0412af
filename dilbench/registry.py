"""The registries of models, data sets, schedules and augmentation operations, and the plugins that fill them.

A Registry maps a config name to its entry. Every entry, built in or from a plugin, comes in through
`Registry.add`, which refuses a malformed or taken name and runs the registry's own check of the entry
(for a config dataclass, typed/registry.py's `check_config`), so a bad entry fails where it is
registered, naming itself, rather than later in another command. `dilbench.plugins` is the public API.

Installed plugins are distributions with an entry point in the group `dilbench.plugins`, naming a module
(which registers when imported) or a callable (called once, without arguments). They are loaded on the
first read of any registry, once per process: config validation reads the registries (the section
unions are evaluated when it runs), so `train`, `validate`, `schema`, `summary` and `sweep` (and the
sweep's child processes and Slurm tasks, which validate too) see the plugins' entries, while
`dilbench --help` and `compare`, which read no registry, import no plugin. A plugin that fails to
import, raises, or registers a bad or taken name is skipped as a whole (what it registered before the
failure is removed again) with one warning line naming it and the fix; the built-ins and the other
plugins are unaffected, and `--debug` adds the traceback. DILBENCH_NO_PLUGINS=1 turns discovery off
(the test suite sets it, so that plugins installed in a developer's environment cannot change its results).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import inspect
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from dilbench.typed.registry import RegistryError

GROUP = "dilbench.plugins"  # the entry-point group plugins register under
DISABLE = "DILBENCH_NO_PLUGINS"  # set (to anything but '' or 0) to load no installed plugin
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")  # a YAML key, a --set value, a path component and a column value alike
log = logging.getLogger("dilbench")
E = TypeVar("E")


class Registry(Mapping[str, E]):
    """Config name -> entry. Reading it (lookup, iteration, len) first loads the installed plugins, once."""

    instances: ClassVar[list[Registry[Any]]] = []

    def __init__(self, kind: str, check: Callable[[str, E], None]):
        self.kind = kind  # what an entry is, in messages: "model", "data set", "schedule", "augmentation op"
        self._check = check
        self._entries: dict[str, E] = {}
        self._origins: dict[str, str] = {}
        Registry.instances.append(self)

    def add(self, name: str, entry: E, where: str) -> None:
        """Register `entry` as `name` after the registry's checks; `where` is the module defining it (a module
        under `dilbench.` is built in). RegistryError if the name is malformed or taken, or the entry is bad."""
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise RegistryError(f"{self.kind} name {name!r} is not a name",
                                "use letters, digits, '_', '.' or '-', starting with a letter")
        if name in self._entries:
            raise RegistryError(f"{self.kind} {name!r} is already registered ({self._origins[name]})",
                                f"give the new {self.kind} another name")
        self._check(name, entry)
        builtin = where.startswith("dilbench.")
        plugin = None if builtin else _state.current  # a built-in module first imported while a plugin loads is still built in
        self._entries[name] = entry
        self._origins[name] = plugin.label if plugin else "built in" if builtin else f"by {where}"
        if plugin:
            plugin.added.append((self, name))

    def origin(self, name: str) -> str:
        """Who registered `name`: 'built in', "plugin 'x' (dist 1.0)", or 'by MODULE'."""
        load_plugins()
        return self._origins[name]

    def current(self) -> dict[str, E]:
        """The entries registered so far, without loading plugins: for code that runs at import (the built-ins)."""
        return dict(self._entries)

    def _remove(self, name: str) -> None:
        del self._entries[name], self._origins[name]

    def __getitem__(self, name: str) -> E:
        load_plugins()
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        load_plugins()
        return iter(list(self._entries))

    def __len__(self) -> int:
        load_plugins()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {list(self._entries)})"


def check_callable(value: Any, kind: str, name: str, what: str) -> None:
    if not callable(value):
        raise RegistryError(f"{kind} {name!r}: its {what} {value!r} is not callable", f"pass the {what} function itself")


def check_description(value: Any, kind: str, name: str) -> None:
    if not isinstance(value, str) or not value.strip() or "\n" in value.strip():
        raise RegistryError(f"{kind} {name!r}: its description {value!r} is not one line of text",
                            "describe it in one line (shown by `dilbench models`, `plugins` and the JSON Schema)")


# ---- installed plugins ---------------------------------------------------------------------------
@dataclass
class Plugin:
    """An installed plugin (one entry point of the group) and what became of it."""

    name: str  # the entry point's name
    target: str  # what it names: `module` or `module:callable`
    dist: str  # the distribution providing it, with its version
    problem: str = ""  # why it was skipped ('' when loaded)
    added: list[tuple[Registry[Any], str]] = field(default_factory=list)  # (registry, name) it registered

    @property
    def label(self) -> str:
        return f"plugin {self.name!r} ({self.dist})"

    @property
    def entries(self) -> list[str]:
        """What it registered, e.g. "model 'tiny_cnn'"."""
        return [f"{registry.kind} {name!r}" for registry, name in self.added]


class _State:
    def __init__(self) -> None:
        self.status = "new"  # new | loading | done
        self.plugins: list[Plugin] = []
        self.current: Plugin | None = None  # the plugin being loaded: what registers now is its


_state = _State()
_lock = threading.RLock()


def load_plugins() -> list[Plugin]:
    """Load every installed plugin (entry-point group `dilbench.plugins`) once; the plugins, loaded or
    skipped. Reading a registry calls this, so it is rarely needed by hand. Reads during loading see
    what is registered so far (a plugin may read the registries while it registers)."""
    if _state.status != "done":
        with _lock:  # another thread (a tf.data worker building ops) waits for the loading; this one reads on
            if _state.status == "new":
                _state.status = "loading"
                try:
                    if os.environ.get(DISABLE, "") in ("", "0"):
                        for entry_point in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda ep: (ep.name, ep.value)):
                            _state.plugins.append(_load(entry_point))
                finally:
                    _state.status = "done"
    return _state.plugins


def _load(entry_point: importlib.metadata.EntryPoint) -> Plugin:
    dist = entry_point.dist
    plugin = Plugin(entry_point.name, entry_point.value, f"{dist.name} {dist.version}" if dist else "unknown distribution")
    uninstall = f"uninstall it ({'pip uninstall ' + dist.name if dist else 'pip uninstall its distribution'})"
    tensorflow_before = "tensorflow" in sys.modules
    _state.current = plugin
    imported = False
    try:
        target = entry_point.load()
        imported = True
        if not inspect.ismodule(target):
            if not callable(target):
                return _skip(plugin, None, f"{entry_point.value} is neither a module nor a callable",
                             f"point its entry point at a module that registers when imported, or at a register function; or {uninstall}")
            target()
    except RegistryError as err:  # a bad or taken name, while its module was imported or its function ran
        return _skip(plugin, err, err.problem, f"{err.fix + ' in the plugin' if err.fix else 'correct the plugin'}, or {uninstall}")
    except Exception as err:
        if not imported:
            return _skip(plugin, err, f"importing {entry_point.value} failed: {_one_line(err)}", f"install what it needs, or {uninstall}")
        return _skip(plugin, err, f"{entry_point.value}() raised {_one_line(err)}", f"report it to the plugin's authors, or {uninstall}")
    finally:
        _state.current = None
    if not tensorflow_before and "tensorflow" in sys.modules:
        log.warning("dilbench: %s imports TensorFlow when it is loaded, which slows down every command; fix: import "
                    "keras or tensorflow inside its builders, as dilbench's own models do", plugin.label)
    return plugin


def _skip(plugin: Plugin, err: BaseException | None, problem: str, fix: str) -> Plugin:
    """Remove what the plugin registered so far, and say so in one line (the traceback with --debug)."""
    for registry, name in plugin.added:
        registry._remove(name)
    plugin.added.clear()
    plugin.problem = problem
    log.warning("dilbench: %s skipped: %s; fix: %s%s", plugin.label, problem, fix,
                " (--debug shows the traceback)" if err and not log.isEnabledFor(logging.DEBUG) else "")
    if err is not None:
        log.debug("the traceback of %s:", plugin.label, exc_info=err)
    return plugin


def _one_line(err: BaseException) -> str:
    return " ".join(f"{type(err).__name__}: {err}".split())


def failed_plugins() -> list[Plugin]:
    """The installed plugins that were skipped (after loading them, if not yet)."""
    return [plugin for plugin in load_plugins() if plugin.problem]


def missing_hint() -> str:
    """For an unknown name in a config: which plugins failed to load, as their entries may be the ones missing."""
    failed = failed_plugins()
    if not failed:
        return ""
    names = ", ".join(plugin.label for plugin in failed)
    return f"; {names} failed to load (see the warning above), so {'its' if len(failed) == 1 else 'their'} entries are missing"


@contextlib.contextmanager
def registered(*register: Callable[[], Any]) -> Iterator[None]:
    """Call each `register` function, then run the block; afterwards every registry is as it was before.

    Everything registered inside the block, by those functions or in it, is removed again: for tests and
    notebooks. The installed plugins are loaded first, so they stay registered.
    """
    load_plugins()
    saved = [(registry, dict(registry._entries), dict(registry._origins)) for registry in Registry.instances]
    state = (_state.status, list(_state.plugins))
    try:
        for function in register:
            function()
        yield
    finally:
        for registry, entries, origins in saved:
            registry._entries.clear()
            registry._entries.update(entries)
            registry._origins.clear()
            registry._origins.update(origins)
        _state.status, _state.plugins = state[0], state[1]
        _state.current = None
