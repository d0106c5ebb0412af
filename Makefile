# Targets CI and people call. PYTHON picks the interpreter (CI passes its virtualenv's).
PYTHON ?= python3
# Real data for tests and examples: ../shared/data beside the checkout, unless already set.
export DILBENCH_DATA ?= $(abspath $(CURDIR)/../shared/data)

.PHONY: install test test-slow test-faults lint quickstart bench clean

install:
	$(PYTHON) -m pip install -e '.[dev]'

test:
	$(PYTHON) -m pytest -q

test-slow:
	$(PYTHON) -m pytest -q -m slow

# kill -9, full disk (a tmpfs), read-only and non-writable run dirs, racing writers; mounts need root
test-faults:
	$(PYTHON) -m pytest -q -m faults tests/faults

lint:
	$(PYTHON) -m ruff check dilbench tests benchmarks

quickstart:
	$(PYTHON) -m dilbench train quickstart

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache
