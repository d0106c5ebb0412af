"""The installed package is complete: its run-time imports are declared, its Python floor is true,
and the wheel carries the example configs, experiments, bundled data and licence."""

from __future__ import annotations

import ast
import configparser
import re
import subprocess
import sys
import zipfile
from importlib.metadata import packages_distributions

from toolkit import REPO, nonempty

SETUP = configparser.ConfigParser()
SETUP.read(REPO / "setup.cfg")


def _requirement_names(text: str) -> set[str]:
    names = set()
    for line in text.strip().splitlines():
        match = re.match(r"\s*([A-Za-z0-9_.-]+)", line)
        if match and not line.strip().startswith("#"):
            names.add(match.group(1).lower().replace("_", "-"))
    return names


def _imported_modules() -> set[str]:
    """Top-level modules the package imports anywhere (function-level imports and import_module too)."""
    modules = set()
    for path in nonempty((REPO / "dilbench").rglob("*.py"), "the package's modules"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
            elif (isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module"
                  and node.args and isinstance(node.args[0], ast.Constant)):
                modules.add(str(node.args[0].value).split(".")[0])
    return modules - set(sys.stdlib_module_names) - {"dilbench"}


def _optional_requirements() -> set[str]:
    """What the user-facing extras add (`pip install 'dilbench[dashboard]'`); not dev's test and lint tools."""
    extras = SETUP["options.extras_require"]
    return set().union(*(_requirement_names(extras[name]) for name in extras if name != "dev"))


def _distributions_of(module: str) -> set[str]:
    return {name.lower().replace("_", "-") for name in packages_distributions().get(module, [module])}


def _unguarded_imports(module: str) -> list[str]:
    """Places that import `module` outside a `try` whose handler catches ImportError."""
    places = []
    for path in (REPO / "dilbench").rglob("*.py"):
        tree = ast.parse(path.read_text())
        guarded = {id(inner) for node in ast.walk(tree) if isinstance(node, ast.Try)
                   and any("ImportError" in ast.unparse(handler.type or ast.Name("BaseException")) for handler in node.handlers)
                   for statement in node.body for inner in ast.walk(statement)}
        for node in ast.walk(tree):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            if any(name.split(".")[0] == module for name in names) and id(node) not in guarded:
                places.append(f"{path.relative_to(REPO)}:{node.lineno}")
    return places


def test_every_run_time_import_is_an_install_requirement():
    """Each import is required, or comes with a user-facing extra and is guarded, so that without the extra
    the one command that needs it says how to install it (e.g. sweep --dashboard)."""
    required = _requirement_names(SETUP["options"]["install_requires"])
    optional = _optional_requirements()
    missing, unguarded = {}, {}
    for module in sorted(_imported_modules()):
        names = _distributions_of(module)
        if names & required:
            continue
        if names & optional:
            if _unguarded_imports(module):
                unguarded[module] = _unguarded_imports(module)
            continue
        missing[module] = sorted(names)
    assert not missing, f"imported at run time but not in install_requires: {missing}"
    assert not unguarded, f"an extra's module imported without an ImportError guard: {unguarded}"
    assert "optuna-dashboard" in optional and "optuna-dashboard" not in required
    # tf.summary writes events only with tensorboard installed, and TensorFlow 2.21 no longer requires it
    assert {"tensorboard", "keras", "tensorflow"} <= required


def test_python_floor_is_what_the_code_needs():
    floor = re.fullmatch(r">=\s*3\.(\d+)", SETUP["options"]["python_requires"].strip())
    assert floor, "python_requires should be a plain >=3.N floor"
    minor = int(floor.group(1))
    assert minor >= 11, "the code uses datetime.UTC (3.11)"
    pyproject = (REPO / "pyproject.toml").read_text()
    assert f'target-version = "py3{minor}"' in pyproject, "ruff must check against the same floor"
    for path in nonempty((REPO / "dilbench").rglob("*.py"), "the package's modules"):
        ast.parse(path.read_text(), feature_version=(3, minor))  # no syntax newer than the floor


def test_readme_and_licence_agree_with_metadata():
    assert SETUP["metadata"]["license"] == "MIT"
    assert "MIT License" in (REPO / "LICENSE").read_text()
    readme = (REPO / "README.md").read_text()
    for target in re.findall(r"`make ([a-z-]+)`", readme):
        assert re.search(rf"^{target}:", (REPO / "Makefile").read_text(), re.M), f"README names `make {target}`: no rule"


def test_files_the_readme_names_exist():
    readme = (REPO / "README.md").read_text()
    named = set(re.findall(r"`((?:[A-Za-z0-9_.-]+/)*[A-Z][A-Za-z0-9_.-]*\.md|(?:[a-z0-9_.-]+/)+[a-z0-9_.-]+\.(?:py|json|sh))`", readme))
    assert "DESIGN.md" in named
    missing = sorted(name for name in named if not (REPO / name).exists())
    assert not missing, f"README names files that are not in the repository: {missing}"


def test_wheel_carries_examples_data_and_licence(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(REPO)],
                   check=True, capture_output=True)
    (wheel,) = tmp_path.glob("dilbench-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    # every tracked example file, mapped from the top level into the package; never a sweep's runs or smoke pages
    tracked = subprocess.run(["git", "ls-files", "configs", "experiments"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.split()
    assert any(path.endswith("configs/quickstart.yaml") for path in tracked)
    assert any(path.endswith("unfair_backprop/results/compute/RESULTS.md") for path in tracked)
    bundled = {name.removeprefix("dilbench/bundled/") for name in names if name.startswith("dilbench/bundled/")}
    assert set(tracked) <= bundled
    assert not [name for name in bundled if {"runs", "smoke"} & set(name.split("/"))]
    assert "dilbench/data/bundled/mnist_t10k.npz" in names
    assert any(name.endswith("/LICENSE") for name in names)
