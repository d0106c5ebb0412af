"""Turn plain YAML data into frozen, typed config dataclasses, or say exactly what is wrong.

The schema is the dataclasses themselves: their field types, defaults and `__post_init__` checks.
This module walks a dataclass's fields and checks the raw value against each annotation, so adding a
config key is adding a field. Errors carry the dotted key path; `loader.py` turns it into a line.
The walk goes on past a wrong value and reports every one it finds (FieldErrors), so a user fixing a
config sees all its problems at once; only a dataclass's own `__post_init__` checks, which need every
field converted, wait until its fields are right.

Why not pydantic: it would be a new run-time dependency and a rewrite of every config dataclass
(models, schedules, augmentation ops), its messages would still need mapping to `FILE:LINE: key:
problem (did you mean ...)`, and the parts specific to dilbench (`schedule: standard` shorthand,
one-key augmentation ops, the registry's first entry as the default `name`) need custom code in its
validators and in its JSON Schema alike. Collecting errors here took a few lines.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import math
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any, ClassVar, Literal, TypeGuard, Union


class FieldError(ValueError):
    """A value is wrong; `path` is the dotted key relative to where it was raised."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path
        self.message = message

    @property
    def errors(self) -> list[FieldError]:
        """Every wrong value this error stands for (one here; FieldErrors holds several)."""
        return [self]


class FieldErrors(FieldError):
    """Several wrong values found in one pass; `errors` lists them, with paths from the same root."""

    def __init__(self, errors: list[FieldError]):
        super().__init__(errors[0].path, errors[0].message)
        self._errors = errors

    @property
    def errors(self) -> list[FieldError]:
        return self._errors

    def __str__(self) -> str:
        return "; ".join(f"{err.path}: {err.message}" for err in self._errors)


INT64 = 2**63  # ints are handed to NumPy and TensorFlow: a value that does not fit is a config error


def _convert_all(steps: Iterable[Callable[[], Any]]) -> list[Any]:
    """Run every conversion step, collecting the errors of all instead of stopping at the first."""
    results, errors = [], []
    for step in steps:
        try:
            results.append(step())
        except FieldError as err:
            errors.extend(err.errors)
    if errors:
        raise FieldErrors(errors)
    return results


class OneKey:
    """Mixin for named dataclasses written as a one-key mapping, `{fliplr: {p: 0.5}}`.

    Lists of operations read better that way than as `{name: fliplr, p: 0.5}`. Subclasses declare
    `name: Literal["fliplr"] = field(default="fliplr", init=False)`, so the name picks the dataclass in a
    union (as for models) but is never a parameter; `to_plain` writes them back in the same form.
    """

    kind: ClassVar[str] = "name"  # what the names are, for "unknown operation 'x'" messages
    name: str  # declared by each subclass as a Literal field
    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]  # every subclass is a dataclass

    @classmethod
    def registered_variants(cls) -> tuple[type[OneKey], ...]:
        """On a base class that is not itself a dataclass, the dataclasses an annotation of it stands for:
        its registry's, as they are when validation runs (so `tuple[AugmentOp, ...]` takes every operation
        registered by then, plugins' included)."""
        raise TypeError(f"{cls.__name__} has no registry of variants")


def _is_registry_base(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, OneKey) and not dataclasses.is_dataclass(tp)


def one_key_variants(variants: dict[str, type]) -> TypeGuard[dict[str, type[OneKey]]]:
    """Whether a union's named variants are all written as one-key mappings (augmentation operations)."""
    return bool(variants) and all(issubclass(cls, OneKey) for cls in variants.values())


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """' (did you mean X?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def type_name(tp: Any) -> str:
    """A short human name for an annotation: 'int', 'list of float', 'one of a, b'."""
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is tuple:
        args = typing.get_args(tp)
        if args[-1] is not Ellipsis:
            return f"list of {len(args)} {' or '.join(sorted({type_name(a) for a in args}))}"
        return f"list of {type_name(args[0])}"
    if dataclasses.is_dataclass(tp) or origin is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def union_members(tp: Any) -> tuple[Any, ...]:
    return typing.get_args(tp) if typing.get_origin(tp) in (Union, types.UnionType) else ()


def named_variants(members: tuple[Any, ...]) -> dict[str, type]:
    """Dataclasses in a union that are told apart by their `name: Literal[...]` field."""
    variants: dict[str, type] = {}
    for member in members:
        if _is_registry_base(member):
            variants.update(named_variants(member.registered_variants()))
        elif isinstance(member, type) and dataclasses.is_dataclass(member):
            hints = typing.get_type_hints(member)
            for choice in typing.get_args(hints.get("name", None)) or ():
                variants[choice] = member
    return variants


def convert(tp: Any, value: Any, path: str) -> Any:
    """Check `value` against annotation `tp` and return the typed value."""
    members = union_members(tp)
    if value is None and type(None) in members:
        return None
    variants = named_variants(members or (tp,))
    if one_key_variants(variants):
        return _convert_one_key(variants, value, path)
    if variants:  # a registry section (model, schedule, optimizer): the `name` picks the dataclass
        return _convert_variant(variants, value, path)
    if members:
        others = [m for m in members if m is not type(None)]
        if len(others) == 1 and dataclasses.is_dataclass(others[0]):  # an optional section: its own errors say more
            return convert(others[0], value, path)
        for member in others:
            try:
                return convert(member, value, path)
            except FieldError:
                continue
        raise FieldError(path, f"expected {type_name(tp)}, got {value!r}")
    origin = typing.get_origin(tp)
    if origin is Literal:
        choices = typing.get_args(tp)
        if value in choices and type(value) is type(choices[0]):
            return value
        names = ", ".join(str(c) for c in choices)
        raise FieldError(path, f"expected one of {names}, got {value!r}{did_you_mean(value, map(str, choices))}")
    if origin is tuple:
        args = typing.get_args(tp)
        if args[-1] is Ellipsis:
            if not isinstance(value, (list, tuple)):
                raise FieldError(path, f"expected a list of {type_name(args[0])}, got {value!r}")
            args = (args[0],) * len(value)
        elif not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise FieldError(path, f"expected a {type_name(tp)}, got {value!r}")
        return tuple(_convert_all(functools.partial(convert, item_type, item, join(path, i))
                                  for i, (item_type, item) in enumerate(zip(args, value))))
    if origin is dict:  # a mapping whose keys the user names (experiment cases, profiles)
        key_type, value_type = typing.get_args(tp)
        if not isinstance(value, dict):
            raise FieldError(path, f"expected a mapping, got {value!r}")
        pairs = _convert_all(functools.partial(_convert_pair, key_type, value_type, key, item, path) for key, item in value.items())
        return dict(pairs)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return build(tp, value, path)
    if tp is Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            if not -INT64 <= value < INT64:
                raise FieldError(path, f"{_long(value)} is too large: integers must fit in 64 bits")
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return _finite(value, path)
    elif tp is str:
        if isinstance(value, str):
            return value
    else:
        raise TypeError(f"unsupported annotation {tp!r} at {path}")
    raise FieldError(path, f"expected {type_name(tp)}, got {value!r}")


def check_annotation(tp: Any, path: str, seen: set[type] | None = None) -> None:
    """TypeError (naming `path`) unless `convert` and the JSON Schema can read annotation `tp`: the types a
    registered config dataclass may use, nested dataclasses included."""
    seen = set() if seen is None else seen
    members = union_members(tp)
    if members:
        for member in members:
            check_annotation(member, path, seen)
        return
    origin = typing.get_origin(tp)
    if _is_registry_base(tp) or origin is Literal or tp is Any or tp in (bool, int, float, str, type(None)):
        return
    if origin in (tuple, dict):
        for i, arg in enumerate(typing.get_args(tp)):
            if arg is not Ellipsis:
                check_annotation(arg, path if origin is tuple else f"{path} ({'keys' if i == 0 else 'values'})", seen)
        return
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if tp not in seen:
            seen.add(tp)
            hints = typing.get_type_hints(tp)
            for field in dataclasses.fields(tp):
                if field.init:
                    check_annotation(hints[field.name], join(path, field.name), seen)
        return
    hint = "; write tuple[X, ...] for a list" if origin is list else ""
    raise TypeError(f"{path} is annotated {tp!r}, which a config cannot hold: use bool, int, float, str, None, Literal, "
                    f"tuple, dict, a frozen dataclass or a union of them{hint}")


def _finite(value: int | float, path: str) -> float:
    """A float that is a real number: NaN and infinities (YAML `.nan`, `.inf`, `1e999`) are rejected."""
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise FieldError(path, f"expected a finite number, got {value if isinstance(value, float) else _long(value)}")
    return number


def _long(value: int) -> str:
    """An integer as written, or its first digits and length when it is too long to show."""
    text = str(value)
    return text if len(text) <= 24 else f"{text[:12]}... ({len(text.lstrip('-'))} digits)"


def _convert_variant(variants: dict[str, type], value: Any, path: str) -> Any:
    if isinstance(value, str):  # `schedule: unfair_back` is short for `schedule: {name: unfair_back}`
        value = {"name": value}
    if not isinstance(value, dict):
        raise FieldError(path, f"expected a mapping with a 'name' key, got {value!r}")
    name = value.get("name", next(iter(variants)))  # the registry's first entry is the default
    if name not in variants:
        raise FieldError(
            join(path, "name"),
            f"unknown {path.rsplit('.', 1)[-1] or 'name'} {name!r}; choose one of {', '.join(variants)}{did_you_mean(name, variants)}",
        )
    return build(variants[name], value, path)


def _convert_pair(key_type: Any, value_type: Any, key: Any, item: Any, path: str) -> tuple[Any, Any]:
    return convert(key_type, key, join(path, str(key))), convert(value_type, item, join(path, str(key)))


def _convert_one_key(variants: dict[str, type[OneKey]], value: Any, path: str) -> Any:
    """`{fliplr: {p: 1.0}}` (or `fliplr` alone, for the defaults) to the dataclass named by the key."""
    kind = next(iter(variants.values())).kind
    if isinstance(value, str):
        value = {value: None}
    if not isinstance(value, dict) or len(value) != 1:
        raise FieldError(path, f"expected a one-key mapping {{{kind}: {{parameters}}}}, got {value!r}; {kind}s: {', '.join(variants)}")
    ((key, params),) = value.items()
    if key not in variants:
        raise FieldError(join(path, str(key)), f"unknown {kind} {key!r}{did_you_mean(key, variants)}; choose one of {', '.join(variants)}")
    if params is not None and not isinstance(params, dict):
        keys = ", ".join(f.name for f in dataclasses.fields(variants[key]) if f.init)
        raise FieldError(join(path, key), f"expected a mapping of parameters ({keys}), got {params!r}")
    return build(variants[key], params, join(path, key))


def build(cls: type, raw: Any, path: str = "") -> Any:
    """Build dataclass `cls` from a mapping, rejecting unknown keys and bad values."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise FieldError(path, f"expected a mapping, got {raw!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    errors = [FieldError(join(path, str(key)), f"unknown key{did_you_mean(key, fields)}; valid keys: {', '.join(fields)}")
              for key in raw if key not in fields]
    kwargs = {}
    for name, field in fields.items():
        if name in raw:
            try:
                kwargs[name] = convert(hints[name], raw[name], join(path, name))
            except FieldError as err:
                errors.extend(err.errors)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            errors.append(FieldError(join(path, name), f"missing required key ({type_name(hints[name])})"))
    if errors:
        raise FieldErrors(errors)
    try:
        return cls(**kwargs)
    except FieldError as err:
        raise FieldErrors([FieldError(join(path, e.path), e.message) for e in err.errors]) from None


def to_plain(obj: Any) -> Any:
    """Dataclasses and tuples to dicts and lists, in field order, for YAML and JSON."""
    if isinstance(obj, OneKey):
        return {obj.name: {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}}
    if dataclasses.is_dataclass(obj):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj
