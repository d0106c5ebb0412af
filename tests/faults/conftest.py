"""The fault-injection suite (`make test-faults`): real `dilbench train` processes, real signals, a real
full disk, read-only and non-writable directories, damaged checkpoints and racing writers.

Every test here gets the `faults` marker (excluded from `make test`). The children run
tests/faults/inject.py, which runs the CLI with faults placed at exact moments (see its docstring),
on a tiny deterministic config, so a resumed run can be compared bit for bit with an uninterrupted one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from faultlib import RISING, train
from toolkit import the_run


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted run: what every killed-and-resumed run must end equal to."""
    runs = tmp_path_factory.mktemp("reference")
    result = train(runs, specs=(RISING,))
    assert result.returncode == 0, result.stderr
    return the_run(runs)


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs (root only): `mount(size)` returns its path; unmounted afterwards."""
    mounted: list[Path] = []

    def mount(size: str, options: str = "") -> Path:
        if os.geteuid() != 0 or not shutil.which("mount"):
            pytest.skip("needs root to mount a tmpfs (a real full or read-only file system); run as root, e.g. in CI")
        point = Path(tempfile.mkdtemp(prefix="dilbench-faults-"))
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}{options}", "tmpfs", str(point)],
                                capture_output=True, text=True)
        if result.returncode:
            pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}): needs root with CAP_SYS_ADMIN")
        mounted.append(point)
        point.chmod(0o755)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", "-l", str(point)], capture_output=True)
        point.rmdir()
