# The two commands of the README, plus the chores around them.
# scripts/install puts exactly the versions pinned in uv.lock into .venv, and nothing outside
# this folder: PYTHON picks the interpreter (Debian's own python3 works), UV a uv of your own.
PYTHON ?= python3
UV_VERSION := 0.13.9
BIN := .venv/bin
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test
export PYTHON UV_VERSION

.PHONY: serve test test-sqlite test-postgres lint bench bench-smoke install

install:
	@scripts/install

serve: install  ## Start the server (where its data lives: docs/configuration.md#installation).
	@$(BIN)/casefolio serve

test: install  ## The whole suite: lint, then every test on SQLite and on PostgreSQL.
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src
	@# Both databases at once (each suite's output is printed whole when it ends): a suite
	@# alone keeps less than one core busy, waiting on servers, fsyncs and the browser. Split:
	@# a test that uses neither suite's database runs in one of them only (tests/conftest.py).
	CASEFOLIO_TEST_SPLIT=true $(MAKE) --no-print-directory -j2 --output-sync=target \
		test-sqlite test-postgres

test-sqlite:
	$(BIN)/python -m tests.run --database sqlite

test-postgres:
	CASEFOLIO_TEST_DATABASE_URL=$(PG_TEST_URL) $(BIN)/python -m tests.run --database postgresql

lint: install
	$(BIN)/ruff check --fix src tests bench
	$(BIN)/ruff format src tests bench

bench: install  ## Benchmarks; numbers and ratios, never a pass/fail on timing.
	$(BIN)/python -m bench

bench-smoke: install  ## Every benchmark at small sizes, nothing saved: fails only if one crashes.
	$(BIN)/python -m bench --quick --no-save
