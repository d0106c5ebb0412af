"""The JSON Schema (draft 2020-12) of a run config, generated from the config dataclasses.

`dilbench schema` prints it, and configs/dilbench.schema.json is its committed copy (a test
keeps the two equal), which the shipped configs name in their first line so that editors with a YAML
language server complete and check keys. Nothing is written by hand: types, defaults and allowed
values come from the fields' annotations, descriptions from `typed.fields.key` (and, for a registry
entry, its registry description), and the shapes follow `typed.validate.convert`: registry sections
are told apart by `name` (a bare name is short for `{name: NAME}`, no name means the registry's first
entry), augmentation operations are one-key mappings, and unknown keys are refused.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from collections.abc import Callable
from typing import Any, Literal

from dilbench.config.schema import Config
from dilbench.models import MODELS
from dilbench.typed.fields import help_of
from dilbench.typed.validate import named_variants, one_key_variants, to_plain, union_members

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SIMPLE = {bool: "boolean", int: "integer", float: "number", str: "string", type(None): "null"}


def run_config_schema() -> dict[str, Any]:
    """The schema of a run config YAML file, as a JSON-ready dict."""
    registered = {entry.config: entry.description for entry in MODELS.values()}
    builder = _Builder(registered)
    root = builder.object_schema(Config)
    return {"$schema": DRAFT, "title": "dilbench run config", **root, "$defs": builder.defs}


def schema_text() -> str:
    """What `dilbench schema` prints and configs/dilbench.schema.json holds."""
    return json.dumps(run_config_schema(), indent=2) + "\n"


class _Builder:
    """Turns annotations into schemas; every dataclass (and the operation union) becomes one `$defs` entry."""

    def __init__(self, descriptions: dict[type, str]):
        self.descriptions = descriptions
        self.defs: dict[str, dict[str, Any]] = {}
        self.owners: dict[str, object] = {}

    def describe(self, cls: type) -> str:
        """A dataclass's registry description, else its docstring (not the signature dataclass puts there)."""
        doc = self.descriptions.get(cls) or cls.__doc__ or ""
        return "" if doc.startswith(f"{cls.__name__}(") else " ".join(doc.split())

    def object_schema(self, cls: type) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        properties, required = {}, []
        for field in (f for f in dataclasses.fields(cls) if f.init):
            schema = self.type_schema(hints[field.name])
            description = help_of(field) or self._tag_help(cls, field.name, hints[field.name])
            default = _default(field)
            if default is dataclasses.MISSING:
                required.append(field.name)
            properties[field.name] = {**({"description": description} if description else {}), **schema,
                                      **({} if default is dataclasses.MISSING else {"default": to_plain(default)})}
        schema = {"description": self.describe(cls)} if self.describe(cls) else {}
        schema.update(type="object", properties=properties, additionalProperties=False)
        if required:
            schema["required"] = required
        return schema

    def _tag_help(self, cls: type, name: str, tp: Any) -> str:
        """A registry entry's `name: Literal["x"]` is described by the entry itself."""
        choices = typing.get_args(tp) if typing.get_origin(tp) is Literal else ()
        if name == "name" and len(choices) == 1 and self.describe(cls):
            return f"{choices[0]}: {self.describe(cls)}"
        return ""

    def ref(self, key: str, owner: object, make: Callable[[], dict[str, Any]]) -> dict[str, str]:
        """A `$ref` to `$defs/key`, made once (recursive types see the reference while it is being made)."""
        if self.owners.setdefault(key, owner) != owner:
            raise ValueError(f"two schema definitions are both called {key!r}; rename one of the classes")
        if key not in self.defs:
            self.defs[key] = {}
            self.defs[key] = make()
        return {"$ref": f"#/$defs/{key}"}

    def dataclass_ref(self, cls: type) -> dict[str, str]:
        """Named by the class; a second class of the same name (a plugin's `Config`) by its module too."""
        key = cls.__name__ if self.owners.get(cls.__name__, cls) is cls else f"{cls.__module__}.{cls.__qualname__}"
        return self.ref(key, cls, lambda: self.object_schema(cls))

    def type_schema(self, tp: Any) -> dict[str, Any]:
        members = union_members(tp)
        variants = named_variants(members or (tp,))
        if one_key_variants(variants):
            kind = next(iter(variants.values())).kind
            return self.ref(kind.capitalize(), tuple(variants.values()), lambda: self._one_key(kind, variants))
        if variants:
            return self._by_name(variants)
        if members:
            schemas = [self.type_schema(member) for member in members]
            if all(list(schema) == ["type"] for schema in schemas):
                return {"type": [schema["type"] for schema in schemas]}
            return {"anyOf": schemas}
        origin = typing.get_origin(tp)
        if origin is Literal:
            return {"enum": list(typing.get_args(tp))}
        if origin is tuple:
            args = typing.get_args(tp)
            if args[-1] is Ellipsis:
                return {"type": "array", "items": self.type_schema(args[0])}
            return {"type": "array", "prefixItems": [self.type_schema(arg) for arg in args], "minItems": len(args),
                    "maxItems": len(args)}
        if origin is dict:
            return {"type": "object", "additionalProperties": self.type_schema(typing.get_args(tp)[1])}
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return self.dataclass_ref(tp)
        if tp is Any:
            return {}
        if tp in SIMPLE:
            return {"type": SIMPLE[tp]}
        raise TypeError(f"no JSON Schema for annotation {tp!r}")

    def _by_name(self, variants: dict[str, type]) -> dict[str, Any]:
        """A registry section: `{name: X, ...}` checked as X's keys, a bare `X`, or no name for the first entry."""
        names = list(variants)
        branches = [{"if": {"properties": {"name": {"const": name}}, "required": ["name"]}, "then": self.dataclass_ref(cls)}
                    for name, cls in variants.items()]
        branches.append({"if": {"not": {"required": ["name"]}}, "then": self.dataclass_ref(variants[names[0]])})
        return {"anyOf": [
            {"type": "string", "enum": names},
            {"type": "object", "properties": {"name": {"enum": names}}, "allOf": branches},
        ]}

    def _one_key(self, kind: str, variants: dict[str, type]) -> dict[str, Any]:
        """`{fliplr: {p: 0.5}}`, `{fliplr: null}` or `fliplr`: exactly one key, the name, over its parameters."""
        names = list(variants)
        return {
            "description": f"an {kind}: a one-key mapping {{NAME: {{parameters}}}}, or NAME alone for the defaults",
            "anyOf": [
                {"type": "string", "enum": names},
                {"type": "object", "minProperties": 1, "maxProperties": 1, "additionalProperties": False, "properties": {
                    name: {"description": self.describe(cls), "anyOf": [{"type": "null"}, self.dataclass_ref(cls)]}
                    for name, cls in variants.items()
                }},
            ],
        }


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING
