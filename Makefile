# dmrules: two commands set up a fresh machine and do the work.
#   make test      create .venv if missing, install, run the test suite (CPU, < 10 min on 2 cores)
#   make figures   create .venv if missing, install, regenerate figures, tables and reports/REPORT.md
# Also: make figures-full (paper scale), make bench, make bench-fullscale, make clocks (issue 14 sweeps), make clean.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.dmrules-installed
# torch: a machine that already has a CUDA torch shares it with the venv; otherwise
# the local CPU build is pinned here (the package itself only asks for torch>=2.4).
TORCH_CPU ?= torch==2.13.0

.PHONY: venv test figures figures-full bench bench-fullscale clocks clean help

help:
	@sed -n '1,6p' Makefile

$(STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
	  if $(PYTHON) -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then \
	    echo "[venv] CUDA torch found: .venv shares the system site-packages"; \
	    $(PYTHON) -m venv --system-site-packages $(VENV); \
	  else \
	    $(PYTHON) -m venv $(VENV); \
	  fi; \
	fi
	@$(PY) -c "import torch" 2>/dev/null || { echo "[venv] installing $(TORCH_CPU) (CPU build)"; $(PY) -m pip install -q "$(TORCH_CPU)"; }
	@echo "[venv] installing dmrules and its test extra"
	@$(PY) -m pip install -q -e '.[test]'
	@touch $@

venv: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -n 2 -q

# T0 is read when make starts, so --setup-s is the set-up time (venv), shown in the report's timing table
figures figures-full: T0 := $(shell date +%s)

figures: $(STAMP)
	$(PY) -m reports --preset default --setup-s $$(( $$(date +%s) - $(T0) ))

figures-full: $(STAMP)
	$(PY) -m reports --preset full --setup-s $$(( $$(date +%s) - $(T0) ))

bench: $(STAMP)
	$(PY) benchmarks/bench_sims.py
	$(PY) benchmarks/bench_data.py
	$(PY) benchmarks/bench_paper_protocol.py
	$(PY) benchmarks/bench_baselines.py

bench-fullscale: $(STAMP)
	$(PY) benchmarks/bench_fullscale.py --ablation --threads 1

# make clocks: the rule-clock sweep and the held-out band (issue 14; hours of CPU, resumable, docs/clocks.md).
# Re-running skips finished evaluations; `make figures` only reads the tables written here.
CLOCKS_OUT ?= runs/clocks
BAND_OUT   ?= runs/band
CLOCKS_ARGS ?= --preset cpu --threads 1
clocks: $(STAMP)
	$(PY) -m dmrules sweep clocks --tasks A,C --n 64,1024,16,256,4000 --seeds 0,1 $(CLOCKS_ARGS) \
	  --out $(CLOCKS_OUT) --table reports/results/clocks_cpu.parquet
	$(PY) -m dmrules sweep clocks --tasks A --n 1024 --seeds 0,1 --kimg 80,160,320 $(CLOCKS_ARGS) \
	  --out $(CLOCKS_OUT)_long --table reports/results/clocks_long_cpu.parquet
	$(PY) -m dmrules sweep clocks --tasks A --n 1024,64 --seeds 0 --kimg 20,80,160 --second-sampler none \
	  --holdout sun_x:0.35:0.45 $(CLOCKS_ARGS) --out $(BAND_OUT)
	$(PY) -m dmrules sweep clocks --tasks C --n 1024,64 --seeds 0 --kimg 20,80,160 --second-sampler none \
	  --holdout r1:0.09:0.11 $(CLOCKS_ARGS) --out $(BAND_OUT)
	$(PY) -m dmrules sweep baselines $(BAND_OUT) --denoisers empirical,local:9
	$(PY) -m dmrules sweep aggregate $(BAND_OUT) --table reports/results/holdout_cpu.parquet

clean:
	rm -rf reports/cache .pytest_cache
