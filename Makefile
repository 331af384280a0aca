# elulab: the two commands a new user needs are `make reproduce` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# The CPU build of torch: on a machine without CUDA, install it before anything
# else so that no dependency pulls a multi-GB CUDA build.
TORCH_VERSION ?= 2.13.0
# Extra pip arguments for the torch install, e.g. a CPU wheel index elsewhere.
TORCH_PIP_ARGS ?=
PROFILE ?= quick
OUT ?= elulab-report
STORE ?= elulab-results/elulab.sqlite

.PHONY: setup setup-test reproduce ledger test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
	  echo "CUDA found: installing torch $(TORCH_VERSION)"; \
	else \
	  echo "no CUDA: installing torch $(TORCH_VERSION) first (the CPU wheel where pip finds one)"; \
	fi
	$(BIN)/python -m pip install -q $(TORCH_PIP_ARGS) "torch==$(TORCH_VERSION)"

$(VENV)/.setup: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e ".[ray,dp,gnn]"
	touch $@

$(VENV)/.setup-test: $(VENV)/.setup
	$(BIN)/python -m pip install -q -e ".[ray,dp,gnn,test]"
	touch $@

setup: $(VENV)/.setup

setup-test: $(VENV)/.setup-test

## Set up, run every experiment in the quick profile, and build the HTML report.
reproduce: setup
	$(BIN)/elulab reproduce --profile $(PROFILE) --store $(STORE) --out $(OUT)

## After the full profiles (make reproduce PROFILE=full): write the shipped reference
## verdicts from the store's full-profile summaries (--merge keeps the experiments the
## store lacks), then the README's verdict table from them (between
## <!-- verdicts:begin --> and <!-- verdicts:end -->). Never typed by hand.
ledger: setup
	$(BIN)/elulab reference --store $(STORE) --merge
	$(BIN)/elulab ledger --format markdown --update README.md

## Set up with the test extras, lint, and run the whole test suite.
test: setup-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: setup
	$(BIN)/python benchmarks/bench_ops.py
	$(BIN)/python benchmarks/bench_lab.py
	$(BIN)/python benchmarks/bench_audit.py
	$(BIN)/python benchmarks/bench_flows.py
	$(BIN)/python benchmarks/bench_kernels.py
	$(BIN)/python benchmarks/bench_fused.py --repeats 7
	OMP_NUM_THREADS=1 $(BIN)/python benchmarks/bench_pinn.py
	$(BIN)/python benchmarks/bench_dp.py

clean:
	rm -rf $(VENV) elulab-results elulab-report
