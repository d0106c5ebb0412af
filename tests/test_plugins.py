"""Installed plugins: distributions with an entry point in the group `dilbench.plugins`, found by
importlib.metadata on sys.path. Here each is a `*.dist-info` directory written into a temporary
site directory (what pip leaves), so discovery, loading and every failure run for real without pip;
test_plugin_install.py (slow) builds and pip-installs one into a fresh virtualenv.

A broken plugin is one warning line naming it and the fix, never a traceback (but with --debug), and is
skipped whole; the built-ins and the other plugins work on. `--help` and `compare` import no plugin and
no TensorFlow."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from toolkit import REPO, TESTS, invoke

from dilbench import registry
from dilbench.config.json_schema import run_config_schema
from dilbench.models import MODELS
from dilbench.plugins import load_plugins, registered
from dilbench.schedules import SCHEDULES

TOY_CONFIG = """\
name: toy
data: {dataset: toy_random}
model: {name: toy_mlp, units: 4}
schedule: toy_top_twice
augmentation: {mode: replace, ops: [toy_invert]}
train: {epochs: 1, batch_size: 8}
"""
BROKEN_LINE = ("dilbench: plugin 'broken' (dilbench-broken 0.1) skipped: importing broken_plugin failed: ModuleNotFoundError: "
               "No module named 'numpyy'; fix: install what it needs, or uninstall it (pip uninstall dilbench-broken)")


class Site:
    """A site directory on sys.path to install fake distributions into."""

    def __init__(self, path: Path):
        self.path = path
        self.modules: list[str] = []

    def install(self, dist: str, entry_points: dict[str, str], modules: dict[str, str] | None = None) -> None:
        info = self.path / f"{dist.replace('-', '_')}-0.1.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
        (info / "entry_points.txt").write_text("[dilbench.plugins]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
        for name, text in (modules or {}).items():
            (self.path / f"{name}.py").write_text(textwrap.dedent(text))
            self.modules.append(name)

    def env(self) -> dict[str, str]:
        """The environment of a child process that sees these plugins (and tests/toy)."""
        env = {k: v for k, v in os.environ.items() if k != registry.DISABLE}
        env["PYTHONPATH"] = os.pathsep.join([str(self.path), str(TESTS), env.get("PYTHONPATH", "")])
        return env


@pytest.fixture
def site(tmp_path, monkeypatch):
    """Discovery on, over a fresh site directory; afterwards the registries and the loaded plugins are as before."""
    path = tmp_path / "site"
    path.mkdir()
    installed = Site(path)
    with registered():
        monkeypatch.syspath_prepend(str(path))
        monkeypatch.delenv(registry.DISABLE, raising=False)
        registry._state.status, registry._state.plugins = "new", []  # discovered again on the next read
        yield installed
    for name in installed.modules:
        sys.modules.pop(name, None)


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "dilbench" and r.levelno >= logging.WARNING]


def test_an_installed_plugin_is_loaded_on_the_first_read_and_every_command_knows_its_entries(site, tmp_path):
    site.install("dilbench-toys", {"toys": "toy:register"})
    assert registry._state.status == "new"  # nothing read a registry yet
    config = tmp_path / "toy.yaml"
    config.write_text(TOY_CONFIG)
    result = invoke("validate", config)
    assert result.exit_code == 0 and result.output == f"ok: {config}\n"
    assert MODELS.origin("toy_mlp") == "plugin 'toys' (dilbench-toys 0.1)"
    listing = invoke("plugins").output.splitlines()
    assert listing[2].split(None, 3) == ["toys", "dilbench-toys", "0.1", "model 'toy_mlp', data set 'toy_random', "
                                         "schedule 'toy_top_twice', augmentation op 'toy_invert'"]
    models = invoke("models").output
    assert "a two-group MLP for the registry test [plugin 'toys' (dilbench-toys 0.1)]" in models
    schema = json.loads(invoke("schema").output)
    assert schema["properties"]["model"]["anyOf"][0]["enum"][-1] == "toy_mlp"
    assert schema == run_config_schema()


def test_a_module_entry_point_registers_when_imported(site):
    site.install("dilbench-bottom", {"bottom": "bottom_plugin"}, {"bottom_plugin": """
        from dilbench.plugins import register_schedule

        register_schedule("bottom_only", lambda num_groups: [1], "the bottom group only")
    """})
    assert SCHEDULES.origin("bottom_only") == "plugin 'bottom' (dilbench-bottom 0.1)"
    (plugin,) = load_plugins()
    assert (plugin.name, plugin.target, plugin.problem, plugin.entries) == ("bottom", "bottom_plugin", "", ["schedule 'bottom_only'"])


def test_a_plugin_that_registers_a_taken_name_is_skipped_whole_and_the_others_load(site, caplog):
    site.install("dilbench-dup", {"dup": "dup_plugin:register"}, {"dup_plugin": """
        from dilbench.plugins import register_model, register_schedule
        from toy.model import ToyMlpConfig, build

        def register():
            register_schedule("dup_first", lambda num_groups: ["all"], "registered before the failure")
            register_model("context_module", ToyMlpConfig, build, "a second context_module")
    """})
    site.install("dilbench-toys", {"toys": "toy:register"})
    builtin = MODELS.current()["context_module"]
    with caplog.at_level(logging.INFO, logger="dilbench"):
        plugins = load_plugins()
    assert [(p.name, p.problem) for p in plugins] == [
        ("dup", "model 'context_module' is already registered (built in)"), ("toys", "")]
    assert warnings(caplog) == [
        "dilbench: plugin 'dup' (dilbench-dup 0.1) skipped: model 'context_module' is already registered (built in); fix: "
        "give the new model another name in the plugin, or uninstall it (pip uninstall dilbench-dup) (--debug shows the traceback)"]
    assert "dup_first" not in SCHEDULES and MODELS["context_module"] is builtin and "toy_mlp" in MODELS


def test_a_register_function_that_raises_or_an_entry_point_that_is_neither_is_one_line(site, caplog):
    site.install("dilbench-raiser", {"raiser": "raiser_plugin:register", "number": "raiser_plugin:NUMBER"},
                 {"raiser_plugin": """
        NUMBER = 3

        def register():
            raise ValueError("boom\\non two lines")
    """})
    with caplog.at_level(logging.INFO, logger="dilbench"):
        load_plugins()
    assert warnings(caplog) == [
        "dilbench: plugin 'number' (dilbench-raiser 0.1) skipped: raiser_plugin:NUMBER is neither a module nor a callable; fix: "
        "point its entry point at a module that registers when imported, or at a register function; or uninstall it "
        "(pip uninstall dilbench-raiser)",
        "dilbench: plugin 'raiser' (dilbench-raiser 0.1) skipped: raiser_plugin:register() raised ValueError: boom on two lines; "
        "fix: report it to the plugin's authors, or uninstall it (pip uninstall dilbench-raiser) (--debug shows the traceback)"]


def test_a_plugin_that_imports_tensorflow_when_loaded_is_warned_about(site, caplog):
    site.install("dilbench-heavy", {"heavy": "heavy_plugin"}, {"heavy_plugin": """
        import sys, types

        sys.modules["tensorflow"] = types.ModuleType("tensorflow")  # stands in for `import tensorflow` (seconds)
    """})
    saved = sys.modules.pop("tensorflow", None)
    try:
        with caplog.at_level(logging.INFO, logger="dilbench"):
            (plugin,) = load_plugins()
    finally:
        sys.modules.pop("tensorflow", None)
        if saved is not None:
            sys.modules["tensorflow"] = saved
    assert plugin.problem == ""
    assert warnings(caplog) == ["dilbench: plugin 'heavy' (dilbench-heavy 0.1) imports TensorFlow when it is loaded, which slows "
                                "down every command; fix: import keras or tensorflow inside its builders, as dilbench's own "
                                "models do"]


def dilbench(site: Site, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dilbench", *args], cwd=cwd, env=site.env(), capture_output=True, text=True)


def test_a_plugin_that_fails_to_import_is_one_line_without_traceback_and_the_builtins_work(site, tmp_path):
    site.install("dilbench-broken", {"broken": "broken_plugin"}, {"broken_plugin": "import numpyy\n"})
    result = dilbench(site, "validate", "quickstart")
    assert result.returncode == 0 and result.stdout.startswith("ok: ")
    assert result.stderr == BROKEN_LINE + " (--debug shows the traceback)\n"
    debug = dilbench(site, "--debug", "validate", "quickstart")
    assert debug.returncode == 0 and debug.stderr.startswith(BROKEN_LINE + "\n")
    assert "Traceback (most recent call last)" in debug.stderr and "import numpyy" in debug.stderr
    listing = dilbench(site, "plugins")
    assert listing.stdout.splitlines()[2].split(None, 3)[3] == ("skipped: importing broken_plugin failed: ModuleNotFoundError: "
                                                                "No module named 'numpyy'")
    # a config naming what may be the broken plugin's model: the usual error, and which plugin failed
    config = tmp_path / "mine.yaml"
    config.write_text("model: {name: tiny_cnn}\n")
    refused = dilbench(site, "validate", str(config))
    assert refused.returncode == 2 and refused.stderr.splitlines()[1] == (
        f"Error: {config}:1: model.name: unknown model 'tiny_cnn'; choose one of context_module, allconv9, allcnn_c, resnet_v2; "
        "plugin 'broken' (dilbench-broken 0.1) failed to load (see the warning above), so its entries are missing")


def test_help_and_compare_import_neither_plugins_nor_tensorflow_and_validate_no_tensorflow(site, tmp_path):
    site.install("dilbench-toys", {"toys": "toy:register"})
    run = tmp_path / "runs" / "toy-20261204-120000-abcd"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(TOY_CONFIG.replace("schedule: toy_top_twice", "schedule: {name: toy_top_twice}"))  # as resolved
    (run / "meta.json").write_text(json.dumps({"status": "completed", "config_name": "toy"}))
    (run / "metrics.jsonl").write_text(json.dumps({"epoch": 1, "eval_acc": 0.5, "train_acc": 0.4, "seconds": 1.0}) + "\n")
    config = tmp_path / "toy.yaml"
    config.write_text(TOY_CONFIG)
    for args, plugin_loaded in ((["--help"], False), (["compare", str(run.parent)], False), (["validate", str(config)], True)):
        code = ("import sys\nfrom dilbench.cli import cli\n"
                f"try:\n    cli({args!r}, standalone_mode=False)\n"
                "finally:\n    print('TF', 'tensorflow' in sys.modules, 'plugin', 'toy' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=site.env(), capture_output=True, text=True, check=True)
        assert out.stdout.splitlines()[-1] == f"TF False plugin {plugin_loaded}", (args, out.stderr)
        if args[0] == "compare":
            assert "toy_mlp" in out.stdout and "toy_top_twice" in out.stdout


def test_plugins_can_be_turned_off(site):
    site.install("dilbench-toys", {"toys": "toy:register"})
    env = site.env()
    off = subprocess.run([sys.executable, "-m", "dilbench", "plugins"], env={**env, registry.DISABLE: "1"},
                         capture_output=True, text=True, check=True)
    assert off.stdout == "plugins are off: $DILBENCH_NO_PLUGINS is set\n"
    on = subprocess.run([sys.executable, "-m", "dilbench", "models"], env=env, capture_output=True, text=True, check=True)
    assert "toy_mlp" in on.stdout


def test_builtins_first_imported_by_a_plugin_stay_built_in_and_survive_its_failure(site, tmp_path):
    # In a fresh `dilbench plugins` process the registries' modules may first be imported by a plugin's own
    # `from dilbench.plugins import ...`: their built-in entries must not become the plugin's, nor go when it fails.
    site.install("dilbench-early", {"early": "early_plugin"}, {"early_plugin": """
        from dilbench.plugins import register_schedule

        register_schedule("early_top", lambda num_groups: [-1], "the top group only")
    """})
    site.install("dilbench-late", {"late": "late_plugin"}, {"late_plugin": """
        from dilbench.plugins import register_schedule

        register_schedule("late_top", lambda num_groups: [-1], "the top group only")
        raise RuntimeError("late fails after registering")
    """})
    listing = dilbench(site, "plugins").stdout.splitlines()
    assert [line.split(None, 3) for line in listing[2:4]] == [
        ["early", "dilbench-early", "0.1", "schedule 'early_top'"],
        ["late", "dilbench-late", "0.1", "skipped: importing late_plugin failed: RuntimeError: late fails after registering"],
    ]
    schedules = dilbench(site, "validate", "quickstart", "--set", "schedule=unfair_back")
    assert schedules.returncode == 0 and schedules.stdout.startswith("ok: ")
    augmented = dilbench(site, "validate", "unfair_back_aug")  # fliplr, affine, ... registered by dilbench, kept
    assert augmented.returncode == 0 and augmented.stdout.startswith("ok: ")
