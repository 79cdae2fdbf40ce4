# geosvc — the two commands are `make demo` and `make test`; each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup demo test lint bench bench-quick clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev,bench]"
	$(PY) -m geosvc._warmup || echo "geosvc: kernel warm-up skipped (kernels compile on first use)"
	touch $(STAMP)

setup: $(STAMP)  ## create .venv and install geosvc with its dev and bench extras

demo: $(STAMP)  ## run the full analysis on the embedded default district
	$(VENV)/bin/geosvc demo

test: $(STAMP)  ## run the test suite (offline)
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)  ## ruff + mypy
	$(VENV)/bin/ruff check geosvc tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP)  ## benchmarks against the peer libraries, results in benchmarks/results/
	$(PY) -m benchmarks.run

bench-quick: $(STAMP)  ## a small version of the benchmarks (minutes)
	$(PY) -m benchmarks.run --quick

clean:
	rm -rf data/processed/* benchmarks/results/*.json benchmarks/results/*.md .pytest_cache
