# The two commands of the README, plus the chores around them.
# uv installs exactly the versions pinned in uv.lock into .venv.
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := $(PYTHON) -m uv
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: serve test test-sqlite test-postgres lint bench bench-smoke install

install:
	@$(PYTHON) -m uv --version 2>/dev/null | grep -q "$(UV_VERSION)" || $(PYTHON) -m pip install --quiet "uv==$(UV_VERSION)"
	@$(UV) sync --frozen --quiet --compile-bytecode

serve: install  ## Start the server on the embedded default (SQLite + ./casefolio-data).
	$(UV) run --frozen casefolio serve

test: install  ## The whole suite: lint, then every test on SQLite and on PostgreSQL.
	$(UV) run --frozen ruff check src tests bench
	$(UV) run --frozen ruff format --check src tests bench
	$(UV) run --frozen mypy src
	$(MAKE) --no-print-directory test-sqlite test-postgres

test-sqlite:
	$(UV) run --frozen python -m tests.run --database sqlite

test-postgres:
	CASEFOLIO_TEST_DATABASE_URL=$(PG_TEST_URL) $(UV) run --frozen python -m tests.run --database postgresql

lint: install
	$(UV) run --frozen ruff check --fix src tests bench
	$(UV) run --frozen ruff format src tests bench

bench: install  ## Benchmarks; numbers and ratios, never a pass/fail on timing.
	$(UV) run --frozen python -m bench

bench-smoke: install  ## Every benchmark at small sizes, nothing saved: fails only if one crashes.
	$(UV) run --frozen python -m bench --quick --no-save
