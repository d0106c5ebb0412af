"""Extension without forking: a toy model, data set, schedule and augmentation operation (tests/toy/, one
file each) registered through the public API, dilbench.plugins, as a plugin registers them; they train end
to end through the real CLI. Every registration runs the checks the built-ins get (they register through
the same functions): a taken name, or a config validation could not read, is refused where it is registered."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Literal

import jsonschema
import numpy as np
import pytest
import toy
import yaml
from toolkit import invoke
from toy import model as toy_model

from dilbench.augment.config import AugmentationConfig
from dilbench.augment.ops import OPS
from dilbench.config.json_schema import run_config_schema
from dilbench.config.schema import Config
from dilbench.data.registry import READERS
from dilbench.models import MODELS
from dilbench.optimizers import OPTIMIZERS
from dilbench.plugins import (
    AugmentOp,
    RegistryError,
    key,
    register_augmentation,
    register_dataset,
    register_model,
    register_schedule,
    registered,
)
from dilbench.schedules import SCHEDULES
from dilbench.typed.registry import check_names
from dilbench.typed.validate import FieldError, build

TOY_CONFIG = """\
name: toy
data: {dataset: toy_random}
model: {name: toy_mlp, units: 4}
schedule: toy_top_twice
optimizer: {name: sgd, lr: 0.01}
augmentation: {mode: replace, ops: [{toy_invert: {p: 0.5}}]}
train: {epochs: 1, batch_size: 8}
runtime: {eval_batch_size: 16}
"""
REGISTRIES = (MODELS, READERS, SCHEDULES, OPS)


def names() -> list[list[str]]:
    return [list(registry) for registry in REGISTRIES]


def test_toy_entries_train_one_epoch_through_the_cli_and_compare_shows_them(tmp_path):
    config = tmp_path / "toy.yaml"
    config.write_text(TOY_CONFIG)
    runs = tmp_path / "runs"
    with registered(toy.register):
        result = invoke("train", config, "--runs-dir", runs)
        assert result.exit_code == 0, result.output
    (run,) = [p for p in runs.iterdir() if p.is_dir()]
    (record,) = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    # 48 images / batch 8 = 6 batches; per batch group 1 is updated once, group 2 (top) 3 times
    assert record["epoch"] == 1 and record["updates"] == [6, 18]
    meta = json.loads((run / "meta.json").read_text())
    assert meta["status"] == "completed" and meta["error"] is None
    assert (run / "plots" / "augmentation.png").is_file()
    # compare reads run directories, not registries: the entries show, with the plugin gone as well
    result = invoke("compare", runs, "--columns", "model,data.dataset,schedule,augmentation.ops",
                                      "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1].startswith("toy_mlp,toy_random,toy_top_twice,")
    assert "toy_invert" in result.stdout


def test_validation_reads_the_registries_as_they_are_when_it_runs():
    raw = yaml.safe_load(TOY_CONFIG)
    with registered(toy.register):
        cfg = build(Config, raw)
    assert (cfg.data.dataset, cfg.model.name, cfg.schedule.name) == ("toy_random", "toy_mlp", "toy_top_twice")
    assert cfg.augmentation.ops[0].name == "toy_invert"
    with pytest.raises(FieldError) as refused:  # unregistered again: the same config is refused, naming every toy entry
        build(Config, raw)
    assert [err.path for err in refused.value.errors] == [
        "data.dataset", "model.name", "schedule.name", "augmentation.ops[0].toy_invert"]


def test_registered_removes_what_its_block_registered():
    before = names()
    with registered(toy.register):
        assert [n[-1] for n in names()] == ["toy_mlp", "toy_random", "toy_top_twice", "toy_invert"]
        assert MODELS.origin("toy_mlp") == "by toy.model" and MODELS.origin("resnet_v2") == "built in"
        register_schedule("toy_bottom", lambda num_groups: [1], "the bottom group only")  # in the block itself
        assert "toy_bottom" in SCHEDULES
    assert names() == before


def test_a_plugin_augmentation_op_is_validated_nested_and_runs_in_the_pipeline():
    from dilbench.augment.pipeline import build_augmenter

    with registered(toy.register):
        config = build(AugmentationConfig, {"mode": "replace", "ops": [
            {"toy_invert": {"p": 1.0}}, {"sometimes": {"p": 0.0, "ops": ["toy_invert"]}}]})
        with pytest.raises(FieldError, match="must be in"):
            build(AugmentationConfig, {"mode": "replace", "ops": [{"toy_invert": {"p": 2}}]})
        images = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 4, 4, 1)
        augmented = build_augmenter(config, channels=1)(images=images)
    assert np.array_equal(augmented, 255 - images)


def test_schema_and_cli_listings_know_registered_entries():
    with registered(toy.register):
        schema = run_config_schema()
        models_listing = invoke("models", "--keys").output
    defs = schema["$defs"]
    assert "toy_mlp" in schema["properties"]["model"]["anyOf"][0]["enum"]
    assert "toy_random" in defs["DataConfig"]["properties"]["dataset"]["enum"]
    assert "toy_top_twice" in defs["ScheduleConfig"]["properties"]["name"]["enum"]
    assert "toy_invert" in defs["Operation"]["anyOf"][0]["enum"] and "ToyInvert" in defs
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(TOY_CONFIG))
    assert "toy_mlp" in models_listing and "a two-group MLP for the registry test" in models_listing
    assert '  units: 4' in models_listing
    assert "toy_mlp" not in run_config_schema()["properties"]["model"]["anyOf"][0]["enum"]


@dataclass(frozen=True)
class ToyNormConfig:
    name: Literal["toy_norm"] = "toy_norm"
    declare_flops: bool = key(False, "give the normalisation layer a flops() method")


def build_toy_norm(cfg: ToyNormConfig, input_shape, num_classes, dtype, seed):
    import keras

    from dilbench.models.grouped import GroupedModel

    class CountedNorm(keras.layers.LayerNormalization):
        def flops(self, input_shape):
            return 0, input_shape  # parameter-free of matmuls, like batch norm

    norm = (CountedNorm if cfg.declare_flops else keras.layers.LayerNormalization)(name="norm")
    group = keras.Sequential([keras.layers.Flatten(), keras.layers.Dense(4, name="dense"), norm], name="group1")
    return GroupedModel([group], keras.layers.Dense(num_classes, name="head"), input_shape)


def test_a_layer_the_flop_count_does_not_know_is_a_clear_error_and_a_flops_method_declares_it(tmp_path):
    config = tmp_path / "norm.yaml"
    config.write_text("data: {dataset: mnist_bundled}\nmodel: toy_norm\n")
    with registered(lambda: register_model("toy_norm", ToyNormConfig, build_toy_norm, "dense + layer norm")):
        refused = invoke("summary", config, catch_exceptions=True)
        counted = invoke("summary", config, "--set", "model.declare_flops=true", catch_exceptions=True)
    assert refused.exit_code == 1 and refused.stderr == (
        "Error: the FLOP count does not know layer type LayerNormalization (layer 'norm'); give it a method "
        "flops(input_shape) returning (forward FLOPs per example, output shape), both without the batch axis, or wrap it "
        "in a layer that has one (dilbench's own layers: list it in dilbench/models/layers.py's UNCOUNTED if it has no matmul)\n")
    assert counted.exit_code == 0, counted.output
    total = next(line for line in counted.stdout.splitlines() if line.startswith("total"))
    assert total.split()[-1] == f"{2 * 784 * 4 + 2 * 4 * 10:,}"  # dense + head; the normalisation counts 0


@dataclass(frozen=True)
class Crop(AugmentOp):  # named like dilbench's own `crop` operation's class
    """The lab's crop."""

    name: Literal["lab_crop"] = field(default="lab_crop", init=False)


def test_a_registered_class_named_like_a_built_in_one_gets_its_own_schema_definition():
    with registered(lambda: register_augmentation("lab_crop", Crop, _build)):
        schema = run_config_schema()
    assert schema["$defs"]["test_registry.Crop"]["description"] == "The lab's crop."
    assert schema["$defs"]["Crop"]["description"].startswith("Crop each side")
    jsonschema.Draft202012Validator.check_schema(schema)


def test_a_taken_name_is_refused_and_the_first_entry_kept():
    builtin = MODELS["context_module"]
    with registered(toy.register):
        refusals = [
            (lambda: register_model("context_module", toy_model.ToyMlpConfig, toy_model.build, "x"),
             "model 'context_module' is already registered (built in); give the new model another name"),
            (toy_model.register, "model 'toy_mlp' is already registered (by toy.model); give the new model another name"),
            (lambda: register_schedule("standard", lambda num_groups: ["all"], "x"), "schedule 'standard' is already registered"),
            (lambda: register_dataset("mnist", toy.data.source, description="x"), "data set 'mnist' is already registered"),
            (lambda: register_augmentation("fliplr", toy.augment.ToyInvert, toy.augment.build),
             "augmentation op 'fliplr' is already registered"),
        ]
        for register, message in refusals:
            with pytest.raises(RegistryError) as refused:
                register()
            assert str(refused.value).startswith(message)
        assert MODELS["context_module"] is builtin


@dataclass(frozen=True)
class NoDefault:
    units: int
    name: Literal["no_default"] = "no_default"


@dataclass(frozen=True)
class ListKey:
    name: Literal["list_key"] = "list_key"
    widths: list[int] = field(default_factory=lambda: [4])


@dataclass(frozen=True)
class BadDefault:
    name: Literal["bad_default"] = "bad_default"
    units: int = key(0, "> 0")

    def __post_init__(self) -> None:
        if self.units <= 0:
            raise FieldError("units", f"must be > 0, got {self.units}")


@dataclass(frozen=True)
class PlainName:
    name: str = "plain_name"


@dataclass
class Mutable:
    name: Literal["mutable"] = "mutable"


@dataclass(frozen=True)
class Unresolved:
    name: Literal["unresolved"] = "unresolved"
    spec: Missing = None  # type: ignore[name-defined]  # noqa: F821


@dataclass(frozen=True)
class NotAnOp:
    """Not derived from AugmentOp."""

    name: Literal["not_an_op"] = field(default="not_an_op", init=False)


@dataclass(frozen=True)
class NameParameter(AugmentOp):
    """Its name is a parameter."""

    name: Literal["name_parameter"] = "name_parameter"


def _build(*args):
    raise AssertionError("never built")


BAD = {
    "name differs from the config's": (lambda: register_model("toy", toy_model.ToyMlpConfig, _build, "x"),
                                       r"model registry key 'toy' does not match toy\.model\.ToyMlpConfig's name default "
                                       r"'toy_mlp'; make them equal"),
    "not a name": (lambda: register_model("my model", toy_model.ToyMlpConfig, _build, "x"),
                   r"model name 'my model' is not a name; use letters, digits"),
    "not a dataclass": (lambda: register_model("x", dict, _build, "x"), r"model 'x': its config <class 'dict'> is not a dataclass"),
    "not frozen": (lambda: register_model("mutable", Mutable, _build, "x"),
                   r"Mutable is not frozen; declare it with @dataclass\(frozen=True\)"),
    "name not a Literal": (lambda: register_model("plain_name", PlainName, _build, "x"),
                           r"PlainName's name is annotated <class 'str'>; declare name: Literal\['plain_name'\]"),
    "a key without default": (lambda: register_model("no_default", NoDefault, _build, "x"),
                              r"NoDefault\.units has no default; give every key a default"),
    "a list annotation": (lambda: register_model("list_key", ListKey, _build, "x"),
                          r"ListKey\.widths is annotated list\[int\], which a config cannot hold: .*write tuple\[X, \.\.\.\] for a list"),
    "defaults refused": (lambda: register_model("bad_default", BadDefault, _build, "x"),
                         r"BadDefault's defaults are refused by its own checks \(units: must be > 0, got 0\)"),
    "unresolved annotation": (lambda: register_model("unresolved", Unresolved, _build, "x"),
                              r"Unresolved's annotations cannot be evaluated \(NameError: name 'Missing' is not defined\)"),
    "builder not callable": (lambda: register_model("toy_mlp", toy_model.ToyMlpConfig, "build", "x"),  # type: ignore[arg-type]
                             r"model 'toy_mlp': its builder 'build' is not callable"),
    "description of two lines": (lambda: register_model("toy_mlp", toy_model.ToyMlpConfig, _build, "a\nb"),
                                 r"model 'toy_mlp': its description 'a\\nb' is not one line"),
    "empty schedule": (lambda: register_schedule("empty", lambda num_groups: [], "x"),
                       r"schedule 'empty': pattern\(1\): needs at least one sub-step"),
    "bad group selector": (lambda: register_schedule("bottom", lambda num_groups: ["bottom"], "x"),
                           r"schedule 'bottom': pattern\(1\)\[0\]: "),
    "pattern raises": (lambda: register_schedule("two", lambda num_groups: [1 // (num_groups - 1)], "x"),
                       r"schedule 'two': pattern\(1\) raised ZeroDivisionError: integer division or modulo by zero"),
    "image shape of two": (lambda: register_dataset("flat", toy.data.source, description="x", image_shape=(8, 8)),  # type: ignore[arg-type]
                           r"data set 'flat': image_shape \(8, 8\) is not \(height, width, channels\)"),
    "op not an AugmentOp": (lambda: register_augmentation("not_an_op", NotAnOp, _build),
                            r"augmentation op 'not_an_op': its config .* does not subclass dilbench\.plugins\.AugmentOp"),
    "op name a parameter": (lambda: register_augmentation("name_parameter", NameParameter, _build),
                            r"NameParameter's name is a parameter; declare name: Literal\['name_parameter'\] = field\(default="),
}


@pytest.mark.parametrize("case", list(BAD))
def test_an_entry_validation_could_not_read_is_refused_where_it_is_registered(case):
    register, message = BAD[case]
    before = names()
    with pytest.raises(RegistryError, match=message):
        register()
    assert names() == before


def test_optimizer_keys_match_config_names():
    check_names(OPTIMIZERS, "optimizer")
