"""Build hook: the top-level configs/ and experiments/ go into the wheel as dilbench/bundled/.

They are tracked once, at the repository's top level (DESIGN.md: the card's layout is the repository's),
and an installed dilbench finds them by name (`dilbench train quickstart`, `dilbench sweep
unfair_backprop`) inside the package. Only the example files are copied: a sweep's runs/ and its smoke
pages, which a checkout may hold but git ignores, stay out. An editable install copies nothing and
reads the checkout itself (dilbench/examples.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
EXAMPLES = ("configs/*.yaml", "configs/*.json", "experiments/*/*.yaml", "experiments/*/*.md", "experiments/*/results/*/*")
LOCAL_ONLY = {"smoke"}  # results profiles that are pipeline checks, git-ignored


def example_files() -> list[Path]:
    """The example files, relative to the repository root."""
    files = {path.relative_to(ROOT) for pattern in EXAMPLES for path in ROOT.glob(pattern) if path.is_file()}
    return sorted(path for path in files if not LOCAL_ONLY & set(path.parts))


class BuildPyWithExamples(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        target = Path(self.build_lib) / "dilbench" / "bundled"
        shutil.rmtree(target, ignore_errors=True)  # an in-tree build/ may hold an older copy
        for path in example_files():
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / path, target / path)


setup(cmdclass={"build_py": BuildPyWithExamples})
