"""The manual's generated pages are current, deterministic and made without TensorFlow (dilbench/docs.py)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from toolkit import REPO

from dilbench import docs
from dilbench.config.schema import Config
from dilbench.models import MODELS


def test_generated_pages_are_current():
    stale = docs.stale_pages(REPO)
    assert not stale, f"stale generated pages: {', '.join(stale)}; the code changed: run `make docs` and commit them"


def test_generation_is_deterministic_and_needs_no_tensorflow():
    code = ("import sys\nfrom dilbench import docs\n"
            "pages = {name: render() for name, render in docs.PAGES.items()}\n"
            "assert pages == {name: render() for name, render in docs.PAGES.items()}\n"
            "print('TF', 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "COLUMNS": "37", "LINES": "10"})
    assert out.stdout.strip().splitlines()[-1] == "TF False"


def test_config_reference_lists_every_key():
    page = docs.config_reference()
    keys = set(re.findall(r"^\| `([^`]+)` \|", page, re.M))
    top = {name for name in Config.__dataclass_fields__}
    assert top <= keys
    assert {"runtime.checkpoint_every", "train.batch_size_is", "schedule.freezeout.t0", "model.blocks[].stride",
            "optimizer.momentum", "augmentation.ops", "affine.rotate", "some_of.n"} <= keys
    for name in MODELS:
        assert f"### model: {name}" in page
    for name in ("adam", "adam_published", "sgd"):
        assert f"### optimizer: {name}" in page
    assert "| `runtime.eval_batch_size` | int | `500` | evaluation batch size |" in page


def test_cli_reference_has_every_command_and_option():
    page = docs.cli_reference()
    for path in ("dilbench train", "dilbench compare", "dilbench sweep", "dilbench check dilation", "dilbench augment preview",
                 "dilbench plugins"):
        assert f"\n## {path}\n" in page
    assert "--at-flops FLOPS" in page and "--sbatch-option OPTION" in page
    assert max(len(line) for line in page.split("```text")[1].splitlines()) <= docs.WIDTH


def test_check_mode_names_the_stale_page(tmp_path):
    (tmp_path / "mkdocs.yml").write_text("site_name: x\n")
    assert docs.main(["--root", str(tmp_path), "--check"]) == 1
    assert docs.main(["--root", str(tmp_path)]) == 0
    assert docs.main(["--root", str(tmp_path), "--check"]) == 0
    assert (tmp_path / "docs/reference/config.md").read_text() == docs.config_reference()


def test_an_installed_plugin_does_not_enter_the_manual(tmp_path):
    """`make docs` documents dilbench's own entries: with a plugin installed (tests/toy, registering a model,
    a data set, a schedule and an operation) the committed pages are still current, and `dilbench models`
    in the same environment does see the plugin."""
    info = tmp_path / "dilbench_toys-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dilbench-toys\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[dilbench.plugins]\ntoys = toy:register\n")
    env = {k: v for k, v in os.environ.items() if k != "DILBENCH_NO_PLUGINS"}
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(REPO / "tests"), env.get("PYTHONPATH", "")])
    check = subprocess.run([sys.executable, "-m", "dilbench.docs", "--check"], cwd=REPO, env=env, capture_output=True, text=True)
    assert (check.returncode, check.stderr) == (0, "")
    listing = subprocess.run([sys.executable, "-m", "dilbench", "models"], cwd=REPO, env=env, capture_output=True, text=True)
    assert "toy_mlp" in listing.stdout
