# Hermes. The two commands that matter: `make run` and `make test`.
.PHONY: run test test-db test-system lint fmt typecheck check bench bench-imports bench-channels db-migrate clean

UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)

run:  ## install what is missing, then run the whole stack in the foreground
	@scripts/setup.sh
	@$(UV) run python -m hermes.stack

test:  ## the whole suite (what CI runs)
	@scripts/setup.sh --for-tests
	$(UV) run pytest

test-db:  ## only the pgTAP files
	$(UV) run pytest tests/db

test-system:  ## only the end-to-end tests
	$(UV) run pytest tests/system

lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .

fmt:
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

typecheck:
	$(UV) run mypy

check: lint typecheck test

bench:  ## end-to-end latency and throughput against a throwaway stack
	$(UV) run python -m bench $(BENCH_ARGS)

bench-imports:  ## the import pipeline: 100k and 1M generated rows against a raw COPY
	$(UV) run python -m bench.imports $(BENCH_ARGS)

bench-channels:  ## accept -> hand-off and -> delivered, p50/p99, per channel (simulators at 0 ms)
	$(UV) run python -m bench.channels $(BENCH_ARGS)

db-migrate:  ## migrate the database named by DATABASE_URL
	$(UV) run python -m hermes.migrate "$$DATABASE_URL"

clean:  ## remove the local cluster and all local state
	-scripts/pg_ctl stop -m fast -D .hermes/pgdata >/dev/null 2>&1
	rm -rf .hermes
