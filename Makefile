PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= all

.PHONY: run test test-peers test-cluster lint report bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

run: $(STAMP)
	$(BIN)/snakemake --workflow-profile workflow/profiles/default --cores $(CORES) $(if $(CONFIG),--configfile $(CONFIG))

# Everything but the peer comparisons, whose libraries are not in the test extra.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile -m 'not peers and not cluster'

# The sweep on a one-node SLURM that the test installs and starts (needs root and apt-get).
test-cluster: $(STAMP)
	$(BIN)/python -m pytest -q -m cluster tests/test_cluster.py

lint: $(STAMP)
	$(BIN)/snakemake --lint

# make report [CONFIG=config/quick.yaml]: the report of the default (or that) experiment.
CONFIG ?=
report: $(STAMP)
	$(BIN)/snakemake $(if $(CONFIG),--configfile $(CONFIG)) --report results/report.html --report-stylesheet reports/report.css

# Peers for the benchmarks. torch (LensKit needs it) is pinned first so that pip
# takes the CPU build rather than the newest CUDA one.
$(VENV)/.bench: $(STAMP)
	$(BIN)/python -m pip install --quiet 'torch==2.13.0'
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@

# The comparisons with LensKit, implicit, Surprise and torch; a missing peer fails them.
test-peers: $(VENV)/.bench
	$(BIN)/python -m pytest -q -m peers

bench: $(VENV)/.bench
	$(BIN)/python -m bench.bench_metrics
	$(BIN)/python -m bench.bench_als
	$(BIN)/python -m bench.bench_sgd
	$(BIN)/python -m bench.bench_bpr
	$(BIN)/python -m bench.bench_overhead

clean:
	rm -rf results logs benchmarks .snakemake
