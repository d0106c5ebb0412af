"""The tests' fixtures; the helpers that are not fixtures are in toolkit.py (`from toolkit import ...`).

Every test runs in a fresh empty working directory, so none depends on being started from the checkout:
paths to the checkout's files come from toolkit.py (REPO, CONFIGS, QUICKSTART, ...), absolute.

The suite sees dilbench's own registries only: plugins installed in a developer's environment (entry
points of `dilbench.plugins`) are not loaded, so they cannot change its results or the committed JSON
Schema. Child processes inherit this; the plugin tests (test_plugins.py) turn discovery back on.

Ctrl-C reaches the suite's children whoever started it: a suite started in the background by a script (`bash
.ci/run &`) inherits SIGINT ignored, its children would too, and every test that stops a child with SIGINT
would wait out its timeout instead.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from toolkit import QUICKSTART, tiny_profile

os.environ["DILBENCH_NO_PLUGINS"] = "1"
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # children start with SIGINT at its default


@pytest.fixture(autouse=True)
def _in_a_fresh_directory(tmp_path_factory, monkeypatch) -> None:
    """Run the test with a new empty directory (not its tmp_path) as the working directory."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture
def make_experiment(tmp_path: Path) -> Callable[..., Path]:
    """Write an experiment file into a new folder of tmp_path (exp/, then exp1/, exp2/, ...); its path.

    `make_experiment(text)` writes `text`; `make_experiment(name=..., cases=..., grid=..., profiles=..., **sections)`
    writes those sections (mappings, as in the file) around the quickstart config: by default one case `a`
    (the standard schedule), no grid, and one profile `tiny` of the tiny config (toolkit.tiny_profile()).
    """
    written: list[Path] = []

    def make(text: str | None = None, *, name: str = "tiny", cases: dict | None = None, grid: dict | None = None,
             profiles: dict | None = None, **sections) -> Path:
        if text is None:
            spec = {"name": name, "base": str(QUICKSTART), "cases": cases or {"a": {"schedule": "standard"}},
                    **({"grid": grid} if grid else {}), "profiles": {"tiny": tiny_profile()} if profiles is None else profiles,
                    **sections}
            text = yaml.safe_dump(spec, sort_keys=False, default_flow_style=None)
        path = tmp_path / (f"exp{len(written)}" if written else "exp") / "experiment.yaml"
        path.parent.mkdir()
        path.write_text(text)
        written.append(path)
        return path

    return make
