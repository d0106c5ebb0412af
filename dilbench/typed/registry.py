"""The checks a registry entry's config dataclass passes, built in or from a plugin, where it is registered.

Validation picks a section's dataclass by the `name` written in YAML (validate.named_variants reads the
`name` Literal), while code looks entries up by registry key; if the two differed, a config would
validate and then fail at lookup, or the reverse. A dataclass validation cannot read (an annotation it
does not know, a name that is not a Literal, a key without a default) would fail later, in some other
user's command, or break `dilbench schema` for every config: so it is refused when it is registered.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any, Literal

from dilbench.typed.validate import FieldError, check_annotation


class RegistryError(Exception):
    """A registry entry is malformed or its name is taken: raised where it is registered.

    `problem` says what is wrong and `fix` what to change; str() is both on one line.
    """

    def __init__(self, problem: str, fix: str = ""):
        super().__init__(f"{problem}; {fix}" if fix else problem)
        self.problem = problem
        self.fix = fix


def check_names(configs: Mapping[str, type], kind: str) -> None:
    """Raise RegistryError naming the key and the dataclass if any key differs from its `name` default."""
    for key, config in configs.items():
        name = getattr(config, "name", None)
        if name != key:
            raise RegistryError(f"{kind} registry key {key!r} does not match {_qualname(config)}'s name default {name!r}",
                                "make them equal")


def check_config(config: Any, key: str, kind: str, *, one_key: bool = False, construct: bool = True) -> None:
    """RegistryError unless `config` is a frozen dataclass that validation and `dilbench schema` can read as
    the `key` entry: `name: Literal[key]` defaulting to `key` (not a parameter when `one_key`: an
    augmentation operation is written `{key: {parameters}}`), every other key with a default and a type the
    validator knows, and (when `construct`) its defaults valid, as `model: NAME` alone needs."""
    if not (isinstance(config, type) and dataclasses.is_dataclass(config)):
        raise RegistryError(f"{kind} {key!r}: its config {config!r} is not a dataclass", "decorate it with @dataclass(frozen=True)")
    where = f"{kind} {key!r}: {_qualname(config)}"
    if not config.__dataclass_params__.frozen:  # type: ignore[attr-defined]  # every dataclass has them
        raise RegistryError(f"{where} is not frozen", "declare it with @dataclass(frozen=True), as configs never change")
    check_names({key: config}, kind)
    try:
        hints = typing.get_type_hints(config)
    except Exception as err:  # NameError, SyntaxError, TypeError: whatever evaluating an annotation raises
        raise RegistryError(f"{where}'s annotations cannot be evaluated ({type(err).__name__}: {err})",
                            "import every name its annotations use at module level") from None
    fields = {field.name: field for field in dataclasses.fields(config)}
    if typing.get_origin(hints.get("name")) is not Literal or typing.get_args(hints["name"]) != (key,):
        raise RegistryError(f"{where}'s name is annotated {hints.get('name')!r}", f"declare name: Literal[{key!r}]")
    if one_key and fields["name"].init:
        raise RegistryError(f"{where}'s name is a parameter", f"declare name: Literal[{key!r}] = field(default={key!r}, init=False)")
    for name, field in fields.items():
        if not field.init:
            continue
        if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise RegistryError(f"{where}.{name} has no default", "give every key a default (every config key is optional)")
        try:
            check_annotation(hints[name], name)
        except TypeError as err:
            raise RegistryError(f"{where}.{err}", "configs are read from YAML into these types only") from None
    if construct:
        try:
            config()
        except Exception as err:  # FieldError from its __post_init__ checks, or a bug in them
            problem = f"{err.path}: {err.message}" if isinstance(err, FieldError) else f"{type(err).__name__}: {err}"
            raise RegistryError(f"{where}'s defaults are refused by its own checks ({problem})",
                                "make the defaults a valid config") from None


def _qualname(config: Any) -> str:
    return f"{getattr(config, '__module__', '?')}.{getattr(config, '__qualname__', config)}"
