# Front door of the study. `make study` and `make test` set up the environment first.
# RAW=/path/to/data links the raw-data location (data/raw -> RAW); alternatively export RISKSTUDY_RAW_DIR.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
RAW ?=
PROFILE ?=
ARGS ?=
# DVC runs each stage's `python -m ...` through the shell: the project's interpreter must come first on PATH.
WITH_VENV := PATH="$(CURDIR)/$(BIN):$$PATH" VIRTUAL_ENV="$(CURDIR)/$(VENV)"

.PHONY: setup link-data study dvc smoke test test-fast bench lab clean-outputs

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:3] < (3, 11, 5))' 2>/dev/null || { \
	  echo "Python >= 3.11.5 is needed: '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo missing). Use make ... PYTHON=/path/to/python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

link-data:
ifneq ($(RAW),)
	mkdir -p data && ln -sfn "$(abspath $(RAW))" data/raw
endif

# The whole study (dvc repro). PROFILE=smoke|paper|default renders that profile into params.yaml first.
study: setup link-data
ifneq ($(PROFILE),)
	$(BIN)/python -m riskstudy.config $(PROFILE)
endif
	$(WITH_VENV) dvc repro

# Any dvc command with the project's interpreter on PATH, e.g. make dvc ARGS="exp run -S drm.lambda=0.1"
dvc: setup link-data
	$(WITH_VENV) dvc $(ARGS)

# Quick look at the whole pipeline with the smoke profile, in a scratch copy (params.yaml untouched).
smoke: setup link-data
	$(BIN)/python -m pytest -q -m slow tests/test_pipeline.py

test: setup link-data
	$(BIN)/python -m pytest -q

test-fast: setup link-data
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup link-data
	$(BIN)/python -m riskstudy.bench_data
	$(BIN)/python -m riskstudy.bench_drm
	$(BIN)/python -m riskstudy.bench_portfolio
	$(BIN)/python -m riskstudy.bench_cae --market us --out reports/benchmarks/ipca_us.json
	$(BIN)/python -m riskstudy.bench_checkpointing --out reports/benchmarks/checkpointing.json
	$(BIN)/python -m riskstudy.studies.drm_protocol --market us --recipes "paper recipe (bounded)" params "linear probe (params)" --out reports/benchmarks/drm_protocol_us.json

lab: setup
	$(BIN)/jupyter lab notebooks/
