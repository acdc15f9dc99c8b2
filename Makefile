# Two commands on a fresh machine: `make demo` and `make test`. `make test-lowest` runs the same
# tests against the oldest versions that pyproject.toml allows (CI runs both).
# TORCH_SPEC picks the torch build. The default, torch==2.13.0, is the CPU wheel that this
# project's CPU machines carry; elsewhere add an index, e.g. for CUDA:
#   make demo TORCH_INDEX=https://download.pytorch.org/whl/cu128
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
# test-only, without its torchvision requirement (see pyproject.toml)
TIMM_SPEC ?= timm==1.0.31
PY := $(VENV)/bin/python
CORE := $(VENV)/.lightreg-core
DEV := $(VENV)/.lightreg-dev
LOWEST ?= .venv-lowest
LOWEST_PY := $(LOWEST)/bin/python
LOWEST_DEV := $(LOWEST)/.lightreg-lowest

.PHONY: setup demo test test-lowest lint clean

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
	$(PY) -m pip install -q --no-deps "$(TIMM_SPEC)"
	touch $(DEV)

setup: $(DEV)

demo: $(CORE)
	$(VENV)/bin/lightreg fit recipes/mlp.yaml

test: $(DEV)
	$(VENV)/bin/lint-imports --no-cache
	$(PY) -m pytest

# Every direct dependency at the lowest version that pyproject.toml allows (uv's lowest-direct
# resolution), beside the same torch build as above, pinned to the exact version installed.
$(LOWEST_DEV): pyproject.toml
	rm -rf $(LOWEST)
	$(PYTHON) -m venv $(LOWEST)
	$(LOWEST_PY) -m pip install -q "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(LOWEST_PY) -m pip install -q uv
	$(LOWEST_PY) -c "from importlib.metadata import version; print('torch==' + version('torch'))" > $(LOWEST)/torch-pin.txt
	$(LOWEST)/bin/uv pip install -q --python $(LOWEST_PY) --resolution lowest-direct \
	  --constraint $(LOWEST)/torch-pin.txt -e ".[dev,plot]"
	$(LOWEST_PY) -m pip install -q --no-deps "$(TIMM_SPEC)"
	touch $(LOWEST_DEV)

test-lowest: $(LOWEST_DEV)
	$(LOWEST)/bin/lint-imports --no-cache
	$(LOWEST_PY) -m pytest

lint: $(DEV)
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) $(LOWEST) build *.egg-info
