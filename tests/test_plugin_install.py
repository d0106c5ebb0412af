"""A plugin installed with pip trains through the CLI (issue 21): the plugins guide's plugin, as written there plus a
data set and an augmentation operation, is built and pip-installed into a fresh virtualenv, whose own
`dilbench` validates, lists, trains and sweeps with it.

Offline and without downloading TensorFlow again: the fresh virtualenv sees this interpreter's
site-packages through a .pth file (TensorFlow, pip, setuptools), dilbench is installed into it from
this checkout (editable, no dependencies, no index) and the plugin from its directory the same way.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from toolkit import REPO

pytestmark = pytest.mark.slow

EXTRA = '''

# ---- added by tests/test_plugin_install.py: a data set and an augmentation operation ----
from dataclasses import field

import numpy as np

from dilbench.plugins import AugmentOp, Decoded, Source, register_augmentation, register_dataset


def _decode():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 8, 8, 1), dtype=np.uint8)
    labels = np.arange(64, dtype=np.int64) % 3
    return Decoded(images[:48], labels[:48], images[48:], labels[48:], class_names=("a", "b", "c"))


register_dataset("tiny_random", lambda root, download: Source("tiny random images", (), _decode, cacheable=False),
                 description="48 train / 16 test random 8x8x1 images of 3 classes", image_shape=(8, 8, 1), num_classes=3)


@dataclass(frozen=True)
class TinyInvert(AugmentOp):
    """Invert the image with probability p."""

    name: Literal["tiny_invert"] = field(default="tiny_invert", init=False)
    p: float = key(1.0, "probability of inverting")


register_augmentation("tiny_invert", TinyInvert, lambda op, ctx: ctx.iaa.Invert(op.p))
'''
CONFIG = """\
name: tiny
data: {dataset: tiny_random}
model: {name: tiny_cnn, channels: 4}
schedule: top_first
augmentation: {mode: replace, ops: [{tiny_invert: {p: 0.5}}]}
train: {epochs: 1, batch_size: 8}
runtime: {eval_batch_size: 16}
"""
EXPERIMENT = """\
name: tiny
base: tiny.yaml
cases:
  narrow: {model.channels: 2}
profiles:
  quick: {}
"""


def guide_plugin() -> dict[str, str]:
    """The files of docs/guides/plugins.md's complete plugin: each code block whose first line is `# FILENAME`."""
    section = (REPO / "docs/guides/plugins.md").read_text().split("\n## A complete plugin\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```(?:toml|python)\n# (\S+)\n(.*?)```", section, re.S)
    assert [name for name, _ in blocks] == ["pyproject.toml", "dilbench_tiny.py"]
    assert sum(body.count("\n") + 1 for _, body in blocks) < 40, "the guide's plugin is no longer under 40 lines"
    return dict(blocks)


def run(*args: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{args}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def test_the_guides_plugin_pip_installed_into_a_fresh_venv_trains_and_sweeps_through_its_cli(tmp_path):
    files = guide_plugin()
    plugin = tmp_path / "dilbench-tiny"
    plugin.mkdir()
    (plugin / "pyproject.toml").write_text(files["pyproject.toml"])
    (plugin / "dilbench_tiny.py").write_text(files["dilbench_tiny.py"] + EXTRA)

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = (venv / "lib").glob("python*/site-packages")
    (site / "parent.pth").write_text(f"import site; site.addsitedir({sysconfig.get_paths()['purelib']!r})\n")
    env = {k: v for k, v in os.environ.items() if k not in ("DILBENCH_NO_PLUGINS", "PYTHONPATH")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    python, dilbench = venv / "bin" / "python", venv / "bin" / "dilbench"
    pip = (python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index")
    run(*pip, "-e", REPO, cwd=tmp_path, env=env)
    run(*pip, plugin, cwd=tmp_path, env=env)

    work = tmp_path / "work"
    work.mkdir()
    (work / "tiny.yaml").write_text(CONFIG)
    assert run(dilbench, "validate", "tiny.yaml", cwd=work, env=env).stdout == "ok: tiny.yaml\n"
    # the guide's command line: the bundled quickstart with the plugin's model and schedule
    quickstart = run(dilbench, "validate", "quickstart", "--set", "model=tiny_cnn", "--set", "schedule=top_first", cwd=work, env=env)
    assert quickstart.stdout == f"ok: {REPO / 'configs' / 'quickstart.yaml'}\n"
    listing = run(dilbench, "plugins", cwd=work, env=env).stdout.splitlines()
    assert listing[2].split(None, 3) == ["tiny", "dilbench-tiny", "0.1", "model 'tiny_cnn', schedule 'top_first', "
                                         "data set 'tiny_random', augmentation op 'tiny_invert'"]
    schema = json.loads(run(dilbench, "schema", cwd=work, env=env).stdout)
    assert "tiny_cnn" in schema["properties"]["model"]["anyOf"][0]["enum"] and "TinyInvert" in schema["$defs"]

    result = run(dilbench, "train", "tiny.yaml", "--runs-dir", "runs", cwd=work, env=env)
    assert result.stderr.count("\n") < 10 and "Traceback" not in result.stderr, result.stderr
    (record,) = [json.loads(line) for line in (work / result.stdout.strip() / "metrics.jsonl").read_text().splitlines()]
    # 48 images / batch 8 = 6 batches; top_first updates group 1 once per batch and group 2 (top) twice
    assert record["epoch"] == 1 and record["updates"] == [6, 12]

    # a sweep trains in child processes (`python -m dilbench train`): they load the plugin too
    (work / "experiment.yaml").write_text(EXPERIMENT)
    run(dilbench, "sweep", "experiment.yaml", cwd=work, env=env)
    (run_dir,) = (work / "runs" / "quick").glob("narrow-*")
    assert json.loads((run_dir / "meta.json").read_text())["status"] == "completed"
    compare = run(dilbench, "compare", "runs", "--columns", "model,schedule,data.dataset,model.channels,last:updates",
                  "--format", "csv", "--sort", "model.channels", cwd=work, env=env).stdout
    assert compare.splitlines()[1:] == ['tiny_cnn,top_first,tiny_random,2,"[6, 12]"', 'tiny_cnn,top_first,tiny_random,4,"[6, 12]"']
