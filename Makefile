# Ingest: `make demo` materializes every sample dataset; `make test` runs the test suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export INGEST_CONFIG_DIR ?= $(CURDIR)/dataset_configs
export INGEST_STORE_ROOT ?= $(CURDIR)/.ingest_store

.PHONY: install dotenv demo test test-deploy lint format dev clean postgres chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) dotenv
	@$(BIN)/ingest instance

# Dagster (`dg dev`, `dg launch`) reads the project's .env: this line gives a bare `dg` command
# the instance that `make dev` and `ingest run` use (an exported DAGSTER_HOME still wins).
dotenv:
	@grep -qs '^DAGSTER_HOME=' .env || echo 'DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.dagster_home}' >> .env

demo: $(STAMP) dotenv
	$(BIN)/ingest validate
	$(BIN)/ingest run --all --if-changed
	@echo "== the current version of each dataset"
	@$(BIN)/ingest history --all

postgres:
	@pg_isready -q -h 127.0.0.1 -p 5432 || pg_ctlcluster --skip-systemctl-redirect $$(ls /etc/postgresql) main start

# tests/test_ui_browser.py drives the UI in Debian's chromium (headless): installed once, as root
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } \
		|| echo "warning: chromium not installed (apt-get failed): the browser test will be skipped" >&2

test: $(STAMP) postgres chromium
	$(BIN)/pytest -q

# the image built into a clean venv and its entrypoint run; Celery workers on Redis (docs/deploy.md)
test-deploy: $(STAMP) postgres
	INGEST_TEST_DEPLOY=1 $(BIN)/pytest -q tests/test_deploy_image.py tests/test_celery_workers.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/hadolint Dockerfile

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

dev: install
	INGEST_DAGSTER_PG_URL="$(subst postgresql://,postgresql+psycopg2://,$(INGEST_DAGSTER_PG_URL))" \
		$(BIN)/dg dev -h 127.0.0.1 -p 3000

clean:
	rm -rf .ingest_store .dagster_home
