# nbprod developer commands. Two are all a newcomer needs:
#   make demo   - create .venv, install, run the whole journey on the quickstart notebook
#   make test   - create .venv if needed, install test needs (and Debian's chromium for the
#                 browser tests), run the whole suite: the extension's unit tests (jest), the
#                 layers contract (lint-imports, pyproject.toml), then pytest
# Installing builds the JupyterLab extension (extension/ -> nbprod/labextension) with Node.js:
# pip runs the jupyter-builder hook of pyproject.toml, which runs `jlpm install` against the
# committed extension/yarn.lock (immutable: a lockfile that needs changing is an error) and the
# rspack build; the wheel's shared data puts it in $(VENV)/share/jupyter/labextensions/nbprod.
PYTHON   ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
DEMO     := demo-output
CHROMIUM ?= /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
EXTENSION_SOURCES := $(wildcard extension/src/*.ts extension/style/* extension/schema/*.json) \
	extension/package.json extension/yarn.lock extension/tsconfig.json extension/.yarnrc.yml \
	extension/install.json

.PHONY: demo test test-extension install extension browser lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml $(EXTENSION_SOURCES) | $(BIN)/python
	YARN_ENABLE_IMMUTABLE_INSTALLS=true $(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

# the JupyterLab extension alone is built (and reinstalled) by install when its sources change
extension: $(VENV)/.installed

# Debian's chromium for the Playwright browser tests (never `playwright install`)
browser: $(CHROMIUM)

$(CHROMIUM):
	@echo "== installing Debian's chromium for the browser tests"
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		chromium fonts-liberation

demo: install
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	@echo "== 1/2 training notebook -> artifact (papermill notebooks/quickstart.ipynb)"
	cd $(DEMO) && ../$(BIN)/papermill ../notebooks/quickstart.ipynb quickstart.executed.ipynb \
		-p artifact_path artifact --engine nbprod --log-level WARNING
	@echo "== 2/2 scheduled scoring of a new batch (papermill artifact/score.ipynb)"
	cd $(DEMO) && ../$(BIN)/papermill artifact/score.ipynb report.ipynb \
		-p input_path new_batch.csv -p output_path predictions.csv \
		-p labels_path new_batch.labels.csv -p summary_path summary.json --engine nbprod \
		--log-level WARNING
	$(BIN)/nbprod report $(DEMO)/report.ipynb --html -o $(DEMO)/report.html
	@$(BIN)/python -c "import json; s = json.load(open('$(DEMO)/summary.json')); \
		print('\nnbprod demo finished: status', s['status'].upper(), '-', s['rows'], 'rows scored')"
	@echo "  artifact        $(CURDIR)/$(DEMO)/artifact   (nbprod inspect / nbprod verify)"
	@echo "  predictions     $(CURDIR)/$(DEMO)/predictions.csv"
	@echo "  report          $(CURDIR)/$(DEMO)/report.ipynb  (HTML: $(DEMO)/report.html)"
	@echo "  summary         $(CURDIR)/$(DEMO)/summary.json"
	@echo "  MLflow store    sqlite:///$(CURDIR)/$(DEMO)/mlflow.db  (mlflow ui --backend-store-uri ...)"

test: browser install test-extension
	$(BIN)/lint-imports --no-logo
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# the extension's unit tests: jest on its pure TypeScript (extension/src/__tests__). install's
# build hook left extension/node_modules; the immutable `jlpm install` is then a no-op of seconds
# (and brings node_modules back from the lockfile if they went missing)
test-extension: install
	cd extension && YARN_ENABLE_IMMUTABLE_INSTALLS=true ../$(BIN)/jlpm install
	cd extension && ../$(BIN)/jlpm test

lint: install
	$(BIN)/ruff check nbprod tests bench
	$(BIN)/lint-imports --no-logo

bench: install
	$(BIN)/python bench/scoring_overhead.py

clean:
	rm -rf $(DEMO) .pytest_cache .import_linter_cache test-output extension/lib extension/tsconfig.tsbuildinfo \
		nbprod/labextension
