# `make train` and `make test` build .venv from nothing on first use (Python 3.11 + pip).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install train test test-fast lint bench bench-quick results docs docs-serve clean

$(STAMP): pyproject.toml
	@echo "installing the project and its dependencies (torch, Lightning, Hydra...) into $(VENV): a few minutes the first time, quiet"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## the main job: U-Net on eliret (extra overrides: make train ARGS="model=fcn seed=1")
train: install
	$(BIN)/python -m src.train $(ARGS)

## the whole suite, slow tests included (what CI runs); `ARGS="-n 2 --dist loadgroup"` tries two pytest-xdist workers
test: install
	$(BIN)/python -m pytest -m "" $(ARGS)

## the unit tests only, on tiny tensors (the default of a bare `pytest`; about a minute on 2 cores)
test-fast: install
	$(BIN)/python -m pytest $(ARGS)

# the type checker's baseline may only shrink: lower this with every sync that removes lines
MYPY_BASELINE_LINES := 149

## ruff's lint and format checks and mypy's type check of src/ (CI runs them before the tests)
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy | $(BIN)/mypy-baseline filter --sort-baseline --no-colors --hide-stats
	@test $$(wc -l < mypy-baseline.txt) -le $(MYPY_BASELINE_LINES) || { echo "mypy-baseline.txt has more than $(MYPY_BASELINE_LINES) lines: fix the new type errors, do not add them to the baseline"; exit 1; }

## speed and memory against a plain PyTorch loop (about 10 min): bench/measured/latest.{json,md}
bench: install
	$(BIN)/python -m bench $(ARGS)

## the short version (under 2 min), same outputs
bench-quick: install
	$(BIN)/python -m bench --quick $(ARGS)

## rerun the runs behind every results table (35 min to 1 h on 2 cores): docs/results.md, results/latest.json
results: install
	$(BIN)/python -m results $(ARGS)

## the docs site (MkDocs + Material, API reference from docstrings), strict: site/index.html
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

## the docs site served at http://127.0.0.1:8000, rebuilt on every edit (its search box needs a server)
docs-serve: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve

clean:
	rm -rf outputs site .pytest_cache .hypothesis
