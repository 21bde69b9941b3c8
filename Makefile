# Two commands on a fresh clone: `make demo` and `make test`. Both build .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test unit integration bench manifests schemas clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/autopost dev --demo 6

test: $(STAMP)
	$(BIN)/python -m pytest -q

unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration tests/e2e

# each prints one JSON object; on 2 cores the four take about ten minutes
bench: $(STAMP)
	$(BIN)/python benchmarks/pipeline.py --posts 5000
	$(BIN)/python benchmarks/lateness.py --targets 100000
	$(BIN)/python benchmarks/memory.py --targets 100000
	$(BIN)/python benchmarks/rate_cap.py --posts 40

# k8s/base/{services,kafka-topics,prometheus-rule}.yaml and deploy/prometheus/prometheus.yml
manifests: $(STAMP)
	$(BIN)/python deploy/manifests.py

schemas: $(STAMP)
	$(BIN)/autopost schema export schemas-out

clean:
	rm -rf $(VENV) .autopost .pytest_cache .hypothesis
