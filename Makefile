# Two commands on a fresh machine: `make demo` and `make test`.
# TORCH_SPEC picks the torch build. The default, torch==2.13.0, is the CPU wheel that this
# project's CPU machines carry; elsewhere add an index, e.g. for CUDA:
#   make demo TORCH_INDEX=https://download.pytorch.org/whl/cu128
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
PY := $(VENV)/bin/python
CORE := $(VENV)/.lightreg-core
DEV := $(VENV)/.lightreg-dev

.PHONY: setup demo test lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)

# torch first, from the chosen build, so that lightning's requirement never pulls another one
$(CORE): $(PY) pyproject.toml
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e .
	touch $(CORE)

# the test tools, tensorboard, matplotlib and ray (for the sweep's Ray backend tests)
$(DEV): $(CORE)
	$(PY) -m pip install -q -e ".[dev,plot]"
	touch $(DEV)

setup: $(DEV)

demo: $(CORE)
	$(VENV)/bin/lightreg fit recipes/mlp.yaml

test: $(DEV)
	$(PY) -m pytest

lint: $(DEV)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) build *.egg-info
