# kstream — developer and CI entry points. `make help` lists the targets.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

.PHONY: help venv install kafka demo test test-kafka test-tansu-smoke test-unit test-integration graphviz check imports lint format typecheck bench bench-smoke conformance chaos clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev,tools]'
	touch $(STAMP)

venv: $(STAMP) ## Create .venv and install kstream with its dev tools

install: $(STAMP) ## Same as venv

kafka: $(STAMP) ## Resolve Apache Kafka's jars from Maven Central once (cached in ~/.cache/kstream; needs java and mvn)
	$(PY) -m kstream.tools.kafka_jars

demo: $(STAMP) ## Start a local broker, load the flights, run examples/flights-hourly.yaml, show the table
	$(PY) -m kstream_cli.demo

test: test-kafka test-tansu-smoke ## Install from scratch if needed; every test on Apache Kafka, then a smoke subset on Tansu

test-kafka: kafka graphviz ## The whole test suite; integration tests on an Apache Kafka broker the session starts
	KSTREAM_TEST_BROKER=kafka $(BIN)/pytest $(PYTEST_ARGS)

graphviz: ## Best effort: Graphviz's dot from Debian's packages (kstream plan --output svg and its test; skipped without it)
	@command -v dot >/dev/null || { command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && \
	  (timeout 300 apt-get install -y -qq graphviz >/dev/null 2>&1 || \
	   { timeout 300 apt-get update -qq >/dev/null 2>&1 && timeout 300 apt-get install -y -qq graphviz >/dev/null 2>&1; }); } || \
	  echo "graphviz: dot not installed; the SVG test of kstream plan is skipped"

test-tansu-smoke: $(STAMP) ## The flights end-to-end and demo path on the embedded Tansu broker
	KSTREAM_TEST_BROKER=tansu $(BIN)/pytest -m tansu_smoke $(PYTEST_ARGS)

test-unit: $(STAMP) ## Unit and CLI tests only (no broker)
	$(BIN)/pytest -m "not integration" $(PYTEST_ARGS)

test-integration: kafka ## Integration tests only (KSTREAM_TEST_BROKER=kafka|tansu, default kafka)
	$(BIN)/pytest -m integration $(PYTEST_ARGS)

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check kstream cli tests
	$(BIN)/ruff format --check kstream cli tests

format: $(STAMP) ## Apply ruff formatting and safe fixes
	$(BIN)/ruff format kstream cli tests
	$(BIN)/ruff check --fix kstream cli tests

typecheck: $(STAMP) ## mypy
	$(BIN)/mypy

imports: $(STAMP) ## import-linter: the layer contracts of DESIGN.md section 11 (pyproject.toml)
	$(BIN)/lint-imports

check: lint typecheck imports test-unit ## ruff (lint + format check), mypy, the import contracts and the unit tests

bench: kafka ## Benchmark vs Quix Streams, Apache Flink and a bare-client floor on Apache Kafka (BENCH_BROKER=tansu for Tansu; BENCH_RUNS=3, BENCH_RECORDS=1000000; ~35 min with W5); writes bench/results.json
	$(PY) -m bench

bench-smoke: $(STAMP) ## The benchmark harness on 20,000 events, 1 run, no Quix, no flights (tests/integration/test_bench_smoke.py)
	$(BIN)/pytest -m integration tests/integration/test_bench_smoke.py $(PYTEST_ARGS)

conformance: kafka ## Flink SQL conformance: every tests/conformance/queries/*.sql through Apache Flink (PyFlink) and kstream, results compared row for row (CONFORMANCE_ARGS="--only join"; ~15 min; not part of test)
	$(PY) -m tests.conformance.run $(CONFORMANCE_ARGS)

chaos: kafka ## Chaos suite on Apache Kafka (CHAOS_BROKER=tansu for Tansu, CHAOS_WORKLOAD=process or join for the process-function or join workload): SIGKILL workers at random and at each checkpoint step, restart the broker, a zombie (a few minutes)
	$(PY) tests/chaos/harness.py --kills $${CHAOS_KILLS:-30} --duration $${CHAOS_DURATION:-240} --broker $${CHAOS_BROKER:-kafka} --workload $${CHAOS_WORKLOAD:-window}

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
