# Two commands: `make up` (install everything, start the local stack, ship a sample) and `make test`.
SHELL := /bin/bash
PYLIB := $(shell python3 -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')

.PHONY: bootstrap bootstrap-test up down test test-python test-rust lint bench proof dashboards clean

bootstrap:  ## install system packages, Kafka jars, uv, the workspace and the Rust build
	./scripts/bootstrap.sh

up: bootstrap  ## start Kafka, PostgreSQL and the four services on loopback; ship a sample log
	uv run outrider up

down:  ## stop everything `make up` started
	uv run outrider down

test: bootstrap-test test-python test-rust  ## the whole suite: Python (real Kafka + PostgreSQL) and Rust unit tests

bootstrap-test:  ## bootstrap, and helm for the chart tests (built with Go, once)
	./scripts/bootstrap.sh --test

test-python:
	uv run pytest

test-rust:
	cd native/logparse && LD_LIBRARY_PATH=$(PYLIB) cargo test --quiet

lint:  ## ruff, mypy, rustfmt, clippy
	uv run ruff check .
	uv run ruff format --check .
	uv run mypy
	cd native/logparse && cargo fmt --check && cargo clippy --quiet -- -D warnings

bench: bootstrap  ## parser throughput: Rust vs the pure-Python baseline
	uv run python bench/run.py

proof: bootstrap  ## the whole stack under 2 GB of load, faults and bad input; writes docs/proof/REPORT.md
	uv run python bench/proof.py

dashboards:  ## regenerate dashboards/*.json from dashboards/src
	uv run python -m dashboards.src

clean:  ## stop the stack if one runs (its pids live in .outrider), then remove its data and build outputs
	if [ -d .outrider ]; then uv run outrider down; fi
	rm -rf .outrider .cache/test-stack native/logparse/target
