# `make demo` and `make test` work from a clean clone: they create .venv and install what they need.
# GPU users: override the torch spec, e.g. `make demo TORCH="torch==2.13.0 --index-url <your CUDA wheel index>"`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.personaforge-installed

.PHONY: demo test bench install clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# The whole pipeline on this machine: bundled transcripts → dataset → SmolLM2 LoRA (demo profile) →
# merge → eval + untuned baseline → leaderboard. outputs/demo belongs to the demo and starts fresh.
demo: $(STAMP)
	$(BIN)/persona data build configs/data/default.yaml
	rm -rf outputs/demo
	$(BIN)/persona run configs/train/demo.yaml --leaderboard-out outputs/demo/leaderboard

test: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/data_build.py

clean:
	rm -rf data/default .pytest_cache .hypothesis
