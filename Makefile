# kinship_eval — every target sets itself up: `make report` and `make test` work on a fresh clone.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SPEC ?= analysis/specs/primary.yaml
OUT ?= reports/build
REFERENCE ?= ../shared/reference

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the package with pinned dependencies

SOURCES := $(shell find kinship_eval reports/templates -type f \( -name '*.py' -o -name '*.csv' -o -name '*.j2' -o -name '*.css' \) 2>/dev/null)
GRID ?= analysis/specs/sensitivity.yaml

$(OUT)/grid/grid_results.csv: $(STAMP) $(GRID) $(SPEC) $(SOURCES)
	$(VENV)/bin/kinship-eval grid --spec $(GRID) --out $(OUT)/grid

$(OUT)/report.html: $(STAMP) $(SPEC) $(OUT)/grid/grid_results.csv $(SOURCES)
	$(VENV)/bin/kinship-eval run --spec $(SPEC) --out $(OUT) \
	  --set report.spec_curve=$(abspath $(OUT))/grid/grid_results.csv

report: $(OUT)/report.html ## Run the whole evaluation on the bundled data: reports/build/ (HTML, PDF, ODS, CSV, figures)

NOTEBOOK_JOBS ?= 2

notebooks: $(STAMP) $(OUT)/grid/grid_results.csv ## Execute the analysis notebooks into $(OUT)/notebooks/ as HTML
	$(VENV)/bin/kinship-eval notebooks --out $(OUT)/notebooks --jobs $(NOTEBOOK_JOBS) \
	  --set spec_path=$(abspath $(SPEC)) --set grid_path=$(abspath $(GRID)) \
	  --set grid_cache_dir=$(abspath $(OUT))/grid/cache

test: $(STAMP) ## Run the whole test suite
	$(PY) -m pytest

lint: $(STAMP) ## Lint and check formatting with ruff
	$(VENV)/bin/ruff check kinship_eval tests scripts analysis benchmarks
	$(VENV)/bin/ruff format --check kinship_eval tests scripts analysis benchmarks

format: $(STAMP) ## Format the code with ruff
	$(VENV)/bin/ruff check --fix kinship_eval tests scripts analysis benchmarks
	$(VENV)/bin/ruff format kinship_eval tests scripts analysis benchmarks

bundled-data: $(STAMP) ## Rebuild the bundled default panel from the real DfE/ONS files in $(REFERENCE)
	$(PY) scripts/build_default_data.py --reference $(REFERENCE)/dfe

BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml requirements.lock benchmarks/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	$(BENCH_VENV)/bin/python -m pip install --quiet -r benchmarks/requirements.txt
	touch $@

bench: $(BENCH_VENV)/.installed ## Time our estimators against peer packages; writes benchmarks/results.json
	$(BENCH_VENV)/bin/python -m benchmarks.run --out benchmarks/results.json

calibration: $(STAMP) ## Monte Carlo size and coverage of each inference method (docs/calibration.md)
	$(PY) -m kinship_eval.did.calibration --draws 1000 --out docs/calibration.md

lock: ## Re-resolve and pin the dependencies into requirements.lock
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv && .lockenv/bin/pip install --quiet -e ".[dev]" && \
	  .lockenv/bin/pip freeze --exclude-editable | grep -v '^kinship' > requirements.lock && rm -rf .lockenv

clean: ## Remove built outputs (reports/build)
	rm -rf $(OUT)

.PHONY: help install report test lint format bundled-data bench calibration notebooks lock clean
