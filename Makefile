# Two commands on a fresh machine: `make demo` and `make test`.
# TORCH_SPEC picks the torch build. The default, torch==2.13.0, is the CPU wheel that this
# project's CPU machines carry; a GPU user runs e.g. `make demo TORCH_SPEC="torch==2.13.0"
# TORCH_INDEX=https://download.pytorch.org/whl/cu128` (or any CUDA index) to get the CUDA build.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PY := $(VENV)/bin/python
STAMP := $(VENV)/.lightreg-installed

.PHONY: setup demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(PY) pyproject.toml
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[dev,plot]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(VENV)/bin/lightreg fit recipes/mlp.yaml

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info
