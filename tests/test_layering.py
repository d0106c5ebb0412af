"""The layering of CONTRIBUTING.md, enforced: no import cycle, and no module imports a
layer above its own. Function-level imports and `importlib` strings count, since they hide a
dependency from Python, not from a reader."""

from __future__ import annotations

import ast
from pathlib import Path

from toolkit import REPO, nonempty

PACKAGE = REPO / "dilbench"

# bottom to top; a module may import its own layer's modules (without cycles) and any layer below
LAYERS: list[tuple[str, ...]] = [
    ("errors", "signals", "tfquiet", "typed", "registry", "tables", "dilation"),
    ("data", "models", "augment"),
    ("schedules", "optimizers", "plugins"),
    ("config",),
    ("training", "checks"),
    ("runs",),
    ("report",),
    ("launch",),
    ("sweep",),
    ("examples", "cli", "docs", "__main__", "__init__"),
]
LAYER_OF = {part: i for i, parts in enumerate(LAYERS) for part in parts}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in nonempty(PACKAGE.rglob("*.py"), "the package's modules"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


MODULES = _modules()


def _owner(name: str) -> str:
    """The module a dotted import name refers to (`dilbench.data.load.x` -> `dilbench.data.load`)."""
    while name not in MODULES:
        name = name.rsplit(".", 1)[0]
    return name


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(_owner(a.name) for a in node.names if a.name.startswith("dilbench"))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("dilbench"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in MODULES else _owner(node.module))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("dilbench")):
            found.add(_owner(str(node.args[0].value)))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith("dilbench.") \
                and ":" in node.value:  # a "module:function" registry entry, imported later
            found.add(_owner(node.value.split(":")[0]))
    return found


GRAPH = {name: _imports(path) - {name} for name, path in MODULES.items()}


def _layer(module: str) -> int:
    parts = module.split(".")
    key = parts[1] if len(parts) > 1 else "__init__"
    assert key in LAYER_OF, f"{module}: not in any layer; add it to LAYERS and CONTRIBUTING.md's layering"
    return LAYER_OF[key]


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


def test_no_module_imports_a_layer_above_its_own():
    upward = sorted(f"{m} -> {d}" for m, deps in GRAPH.items() for d in deps
                    if d != "dilbench" and _layer(d) > _layer(m))
    assert not upward, "imports against the layering:\n" + "\n".join(upward)


def test_no_import_cycles():
    cycles = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for dep in sorted(GRAPH[module]):
            if dep == "dilbench":
                continue
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[module] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_each_run_file_has_one_writer():
    """meta.json is written by runs/writer.py's RunWriter only (under the run's lock), metrics.jsonl by
    runs/metrics.py's MetricsWriter only."""
    writers: dict[str, set[str]] = {"write_meta": set(), "update_meta": set(), "write_metrics": set()}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in writers:
                writers[node.func.attr].add(name)
    assert writers == {"write_meta": {"dilbench.runs.rundir"}, "update_meta": {"dilbench.runs.writer"},
                       "write_metrics": {"dilbench.runs.metrics"}}
