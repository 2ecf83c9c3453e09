# The two entry points of the README: `make demo` (main job) and `make test`.
# Setting up is idempotent: a stamp keyed on pyproject.toml + constraints makes the second run a no-op.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= dev,dask,graphs,pde,weather,spiderwebs,medseg
KEY    := $(shell (cat pyproject.toml constraints-cpu.txt; echo "$(EXTRAS)") | sha256sum | cut -c1-16)
STAMP  := $(VENV)/.diffusci-setup-$(KEY)
# Small models run fastest single-threaded on small CPUs; export OMP_NUM_THREADS to change it.
export OMP_NUM_THREADS ?= 1

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints-cpu.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
	  echo "CUDA GPU found: installing torch's default (CUDA) build"; \
	  $(BIN)/pip install -q 'torch>=2.8'; \
	else \
	  echo "no GPU: installing the CPU build of torch (constraints-cpu.txt)"; \
	  $(BIN)/pip install -q -c constraints-cpu.txt torch; \
	fi
	$(BIN)/pip install -q -c constraints-cpu.txt -e '.[$(EXTRAS)]'
	@rm -f $(VENV)/.diffusci-setup-*
	@touch $@

demo: setup
	$(BIN)/diffusci run all --preset smoke

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check core domains flows tests bench
	$(BIN)/mypy

bench: setup
	$(BIN)/python -m bench.samplers
	$(BIN)/python -m bench.orchestration

clean:
	rm -rf $(VENV) .prefect .pytest_cache
