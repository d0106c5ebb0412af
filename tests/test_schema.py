"""`dilbench schema`: the JSON Schema of a run config, generated from the dataclasses and shipped with the configs.

The schema and dilbench's own validation must agree: every shipped config passes both, and the cases
below are accepted or refused by both alike.
"""

from __future__ import annotations

import json
import textwrap

import jsonschema
import pytest
from toolkit import CONFIGS, invoke, nonempty

from dilbench.config import ConfigError, load_config
from dilbench.config.json_schema import run_config_schema, schema_text
from dilbench.config.yamlfile import parse_yaml

SHIPPED = CONFIGS / "dilbench.schema.json"
SCHEMA_LINE = "# yaml-language-server: $schema=dilbench.schema.json\n"


def data_of(text: str):
    """YAML as dilbench reads it (and as editors do, YAML 1.2: `1e-3` is a number, not PyYAML's string)."""
    return parse_yaml(text, "test").data


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = run_config_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_shipped_schema_is_the_generated_one():
    assert SHIPPED.read_text() == schema_text(), (
        "configs/dilbench.schema.json is stale: the config dataclasses changed. Regenerate it (built-ins only) with\n"
        "    DILBENCH_NO_PLUGINS=1 python -m dilbench schema > configs/dilbench.schema.json"
    )


def test_schema_command_prints_draft_2020_12_json():
    result = invoke("schema")
    assert result.exit_code == 0 and result.stdout == schema_text()
    schema = json.loads(result.stdout)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert list(schema["properties"]) == ["name", "seed", "precision", "data", "model", "schedule",
                                          "optimizer", "augmentation", "train", "runtime"]


def _objects(schema: dict) -> list[tuple[str, dict]]:
    """Every object schema with properties: the root and each `$defs` entry."""
    return [("(root)", schema)] + [(name, d) for name, d in schema["$defs"].items() if "properties" in d]


def test_every_key_has_a_description_a_type_and_a_default():
    schema = run_config_schema()
    for owner, obj in _objects(schema):
        assert obj["additionalProperties"] is False, owner
        for key, prop in obj["properties"].items():
            assert prop.get("description"), f"{owner}.{key} has no description: give it one with config.fields.key(default, help)"
            assert {"type", "enum", "$ref", "anyOf"} & set(prop), f"{owner}.{key} has no type"
            assert "default" in prop or key in obj.get("required", []), f"{owner}.{key} has neither a default nor is required"


def test_defaults_and_allowed_values_come_from_the_dataclasses():
    schema = run_config_schema()
    train = schema["$defs"]["TrainConfig"]["properties"]
    assert train["epochs"] == {"description": "epochs to train", "type": "integer", "default": 10}
    runtime = schema["$defs"]["RuntimeConfig"]["properties"]
    assert runtime["distribute"]["enum"] == ["none", "mirrored", "multi_worker"] and runtime["distribute"]["default"] == "none"
    assert schema["$defs"]["DataConfig"]["properties"]["root"]["type"] == ["string", "null"]
    assert schema["$defs"]["AdamConfig"]["properties"]["lr"]["default"] == 0.001
    assert schema["$defs"]["Crop"]["properties"]["percent"]["default"] == [0.0, 0.1]
    assert schema["$defs"]["BlockSpec"]["required"] == ["depth", "bottleneck", "units"]


@pytest.mark.parametrize("path", nonempty(sorted(CONFIGS.glob("*.yaml")), "configs/*.yaml"), ids=lambda p: p.name)
def test_shipped_configs_name_the_schema_and_validate_against_it(path, validator):
    text = path.read_text()
    assert text.startswith(SCHEMA_LINE), f"{path.name}: the first line must be {SCHEMA_LINE.strip()!r} (editor support)"
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(data_of(text))]
    assert errors == []
    load_config(path)


# (YAML, valid): dilbench and the schema must both accept or both refuse each.
CASES = [
    ("schedule: unfair_back\n", True),  # the string shorthand
    ("model: allconv9\noptimizer: sgd\n", True),
    ("model: {channels: 8}\n", True),  # no name: the registry's first entry, context_module
    ("model: {name: allconv9, width: 0.5}\n", True),
    ("model: {name: resnet_v2, blocks: [{depth: 64, bottleneck: 16, units: 3, stride: 2}]}\n", True),
    ("augmentation: {mode: replace, ops: [fliplr, {flipud: null}, {affine: {rotate: [-25, 25]}},"
     " {sometimes: {p: 0.1, ops: [{crop: {percent: 0.1}}]}}]}\n", True),
    ("data: {root: null, validation: 0.1}\ntrain: {eval: validation}\nruntime: {devices: [CPU:0]}\n", True),
    ("seedd: 1\n", False),  # unknown key
    ("model: {name: context_module, chanels: 16}\n", False),  # unknown key in a registry section
    ("model: {name: allconv9, channels: 16}\n", False),  # another family's key
    ("model: {channels: 8, width: 2}\n", False),  # no name: context_module's keys only
    ("model: {name: contxt_module}\n", False),  # unknown registry name
    ("schedule: unfair\n", False),  # unknown shorthand
    ("precision: bfloat\n", False),  # bad enum value
    ("train: {lr_schedule: linear}\n", False),
    ("train: {epochs: ten}\n", False),  # wrong type
    ("seed: true\n", False),  # a bool is not an int
    ("optimizer: {name: adam, lr: fast}\n", False),
    ("model: {dilations: [1, x]}\n", False),
    ("augmentation: {ops: [{fliplr: {p: 1}, flipud: {p: 1}}]}\n", False),  # an op is a one-key mapping
    ("augmentation: {ops: [{flipup: {p: 1}}]}\n", False),  # unknown op
    ("augmentation: {ops: [{affine: {bogus: 1}}]}\n", False),  # unknown parameter
    ("augmentation: {ops: [{crop: {percent: [0, 0.1, 0.2]}}]}\n", False),  # a range is [low, high]
    ("model: {name: resnet_v2, blocks: [{depth: 64}]}\n", False),  # required keys of a block
]


@pytest.mark.parametrize(("text", "valid"), CASES, ids=[text.strip() for text, _ in CASES])
def test_schema_and_dilbench_agree(tmp_path, validator, text, valid):
    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(text))
    schema_errors = list(validator.iter_errors(data_of(text)))
    assert (not schema_errors) == valid, [e.message for e in schema_errors]
    if valid:
        load_config(path)
    else:
        with pytest.raises(ConfigError):
            load_config(path)
