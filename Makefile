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

# llama-cpp-python (llama.cpp parity checks of GGUF exports; its server is the real teacher of the data-build test)
# builds from source, about 10 minutes; an installed build that satisfies the pin is kept, only the server's
# pure-Python extras are added. A failed build does not fail `make test`: those tests are skipped; the stamp stops
# retrying until pyproject.toml changes.
# --no-cache-dir: the build is compiled for this CPU (-march=native); a wheel cached by pip and reused on another
# CPU dies with SIGILL.
LLAMA_STAMP := $(VENV)/.personaforge-llama
$(LLAMA_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q --no-cache-dir -e ".[llama]" || echo "note: llama-cpp-python did not build; llama.cpp export checks will be skipped"
	touch $(LLAMA_STAMP)

# The whole pipeline on this machine: bundled transcripts → dataset → SmolLM2 LoRA (demo profile) →
# merge → eval + untuned baseline → leaderboard (ranked by semantic similarity; the fine-tune is tested against its
# baseline on ROUGE-1, semantic similarity, attribution and cross-attribution). outputs/demo starts fresh.
demo: $(STAMP)
	$(BIN)/persona data build configs/data/demo.yaml
	rm -rf outputs/demo
	$(BIN)/persona run configs/train/demo.yaml --metric semantic_similarity --leaderboard-out outputs/demo/leaderboard

# Debian's chromium for the browser tests (report.html, and the pages we serve), driven by Playwright for Python:
# installed with apt-get when missing and we are root; otherwise those tests are skipped, saying why.
CHROMIUM_STAMP := $(VENV)/.personaforge-chromium
$(CHROMIUM_STAMP): $(STAMP)
	command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || echo "note: chromium could not be installed; browser tests will be skipped"
	touch $(CHROMIUM_STAMP)

test: $(STAMP) $(LLAMA_STAMP) $(CHROMIUM_STAMP)
	$(BIN)/python -m pytest

# Benchmarks, never part of the tests: data build, training three ways (personaforge, original-style, TRL),
# batched vs one-at-a-time evaluation → bench/results/<date>-<host>.json. Sizes: make bench BENCH_ARGS="--steps 4".
BENCH_STAMP := $(VENV)/.personaforge-bench-installed

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e ".[test,bench]"
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf data/default .pytest_cache .hypothesis
