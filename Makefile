# The two commands in the README: `make demo` and `make test`. Both do all set-up.
SHELL := /bin/bash
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
export FIFTYONE_PLUGINS_DIR ?= $(CURDIR)/.plugins
export FIFTYONE_DO_NOT_TRACK := true
# The bundled MongoDB 6.0 is supported; skip the per-command "oldest supported version" notice.
export FIFTYONE_DATABASE_VALIDATION ?= false
# The demo's database and dataset are this clone's own (a hash of its path), so two
# clones on one machine never write into each other's demo. `make app` opens that demo.
CLONE_ID := $(shell printf '%s' '$(CURDIR)' | sha1sum | cut -c1-8)
DEMO_DB ?= fiftyone-genre-demo-$(CLONE_ID)
DEMO_DATASET ?= genre-demo-$(CLONE_ID)
TEST_DB ?= fiftyone-genre-test
DEMO_OUT ?= $(CURDIR)/demo_output
PORT ?= 5151

.PHONY: setup setup-dev demo test lint app screenshots bench clean lock

setup:
	@VENV=$(VENV) bash scripts/setup.sh

setup-dev:
	@VENV=$(VENV) bash scripts/setup.sh --dev

demo: setup
	FIFTYONE_DATABASE_NAME=$(DEMO_DB) $(PY) -m fiftyone_genre.cli demo --out $(DEMO_OUT) --dataset $(DEMO_DATASET)

# pytest exits 5 when it collected no tests; make treats that as a failure.
test: setup-dev
	FIFTYONE_DATABASE_NAME=$(TEST_DB) $(PY) -m pytest $(PYTEST_ARGS)
	$(VENV)/bin/ruff check .

lint: setup-dev
	$(VENV)/bin/ruff check .

# The App on the demo (`make app PORT=5152` for another port) plus a delegated-operation
# executor that stops with it; open-source FiftyOne offers "Schedule" for long runs only
# with legacy orchestrators allowed.
app: setup
	FIFTYONE_DATABASE_NAME=$(DEMO_DB) FIFTYONE_ALLOW_LEGACY_ORCHESTRATORS=true $(PY) -m fiftyone_genre.cli app --dataset $(DEMO_DATASET) --port $(PORT)

# Refresh docs/screenshots/ from a browser run of the App (never done by `make test`).
screenshots: setup-dev
	FIFTYONE_DATABASE_NAME=$(TEST_DB) $(PY) scripts/screenshots.py

bench: setup
	FIFTYONE_DATABASE_NAME=$(TEST_DB) $(PY) benchmarks/bench_features.py

# Re-resolve uv.lock from pyproject.toml (newest versions its ranges allow), then
# `make test` installs exactly that. Commit uv.lock together with pyproject.toml.
lock: setup
	$(VENV)/bin/uv lock --upgrade
	$(MAKE) test

clean:
	rm -rf $(DEMO_OUT) test_output .pytest_cache .ruff_cache
