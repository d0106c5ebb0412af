# Targets CI and people call. PYTHON picks the interpreter (CI passes its virtualenv's).
PYTHON ?= python3
# Real data for tests and examples: ../shared/data beside the checkout, unless already set.
export DILBENCH_DATA ?= $(abspath $(CURDIR)/../shared/data)

.PHONY: install test test-slow test-faults test-slurm lint docs docs-check quickstart bench wheel-check clean

install:
	$(PYTHON) -m pip install -e '.[dev]'

test:
	$(PYTHON) -m pytest -q

test-slow:
	$(PYTHON) -m pytest -q -m slow

# kill -9, full disk (a tmpfs), read-only and non-writable run dirs, racing writers, managing (tag, note, rm,
# prune, trash) live and killed runs, racing taggers, hooks that fail or hang; mounts need root
test-faults:
	$(PYTHON) -m pytest -q -rs -m faults tests/faults

# Sweeps and multi-worker runs on a real Slurm: the cluster that answers, else one `.ci/slurm up` starts (root).
test-slurm:
	$(PYTHON) -m pytest -q -rs -m slurm tests/test_slurm.py

lint:
	$(PYTHON) -m ruff check dilbench tests benchmarks
	$(PYTHON) -m mypy dilbench

# The manual (mkdocs.yml, docs/): regenerate the reference pages and the JSON Schema from the code, then build
# the site into site/ with warnings as errors. `mkdocs serve` shows it while you edit.
docs:
	$(PYTHON) -m dilbench.docs
	$(PYTHON) -m mkdocs build --strict

# What CI runs: the generated pages are current, and the site builds without a warning.
docs-check:
	$(PYTHON) -m dilbench.docs --check
	site=$$(mktemp -d) && $(PYTHON) -m mkdocs build --strict --site-dir "$$site"; status=$$?; rm -rf "$$site"; exit $$status

quickstart:
	$(PYTHON) -m dilbench train quickstart

# The schedule/precision benchmarks of benchmarks/RESULTS.md (about 20 minutes on 2 cores; prints to stdout).
bench:
	PYTHON=$(PYTHON) bash benchmarks/bench_schedules.sh

# What a user gets from `pip install <wheel>` (no extras, empty directory, no network): CI runs it.
wheel-check:
	bash .ci/wheel-check $(PYTHON)

clean:
	rm -rf build dist site *.egg-info .pytest_cache .ruff_cache
