# Everything installs into .venv from the package registries; python3 (3.11+) is all a fresh machine needs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo njit-demo sor discovery discovery-bench test test-slow bench peers bandits contracts asv quickstart api-docs clean

# Three layers, each installed once (a stamp file): what the demos need (the core and the `demo` extra), what the
# tests need on top (`dev`, `discovery`), and the libraries measured against (`peers`: nevergrad, optuna, river, ...).
$(BIN)/.demo: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[demo]'
	touch $@

$(BIN)/.installed: $(BIN)/.demo
	$(BIN)/python -m pip install --quiet -e '.[dev,demo,discovery]'
	touch $@

$(BIN)/.peers: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev,demo,discovery,peers]'
	touch $@

demo: $(BIN)/.demo  ## a simulated service tuned live under load changes; report in ./arqon-demo/index.html
	$(BIN)/arqon demo

njit-demo: $(BIN)/.demo  ## a Numba simulation tuning its own controller gains while the plant drifts
	$(BIN)/python examples/njit_loop.py

sor: $(BIN)/.demo  ## an SOR Poisson solver tuning its relaxation factor inside @njit as its grid is refined
	$(BIN)/python examples/sor_poisson.py

discovery: $(BIN)/.installed  ## phase 3: offline discovery promotes into the live inference server's catalog; ./arqon-discovery
	$(BIN)/python examples/discovery/run.py --out arqon-discovery

discovery-bench: $(BIN)/.installed  ## arqon discover on 1 and 2 workers against a plain ProcessPoolExecutor loop
	$(BIN)/python bench/discovery_scaling.py

api-docs: $(BIN)/.installed  ## regenerate docs/api.md from the docstrings (a test fails while it is stale)
	$(BIN)/python docs/make_api.py

quickstart: $(BIN)/.demo
	$(BIN)/python examples/quickstart.py

test: $(BIN)/.peers  ## the whole test suite, peers included (benchmarks run once each as smoke tests)
	$(BIN)/python -m pytest

test-slow: $(BIN)/.peers  ## the slow tier (1008 SIGKILLs of an audit-log writer over rotate sizes and fsync modes, ...)
	$(BIN)/python -m pytest -m slow

bench: $(BIN)/.peers  ## timed benchmarks, with ratios to an empty @njit call of the same run
	$(BIN)/python -m pytest bench --benchmark-enable -q

peers: $(BIN)/.peers  ## quality and overhead against nevergrad, optuna, pycma and cmaes: writes docs/peers.md
	$(BIN)/python bench/peers.py

bandits: $(BIN)/.peers  ## bandit regret against mabwiser and river on the same streams: writes docs/bandit-regret.md
	$(BIN)/python bench/selection_regret.py --runs 100

contracts: $(BIN)/.installed  ## timing budgets of every hot-path kernel, as ratios to a calibration loop
	$(BIN)/arqon contracts

asv: $(BIN)/.installed  ## one quick pass of the asv suite in this environment, then the HTML report in .asv/html
	$(BIN)/asv machine --yes >/dev/null
	$(BIN)/asv run --python=same --quick --show-stderr
	$(BIN)/asv publish

clean:
	rm -rf $(VENV) .pytest_cache .benchmarks arqon-demo arqon-discovery
