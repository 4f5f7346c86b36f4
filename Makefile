# nbprod developer commands. Two are all a newcomer needs:
#   make demo   - create .venv, install, run the whole journey on the quickstart notebook
#   make test   - create .venv if needed, install test needs, run the whole suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := demo-output

.PHONY: demo test install lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: install
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	@echo "== 1/2 training notebook -> artifact (papermill notebooks/quickstart.ipynb)"
	cd $(DEMO) && ../$(BIN)/papermill ../notebooks/quickstart.ipynb quickstart.executed.ipynb \
		-p artifact_path artifact --log-level WARNING
	@echo "== 2/2 scheduled scoring of a new batch (papermill artifact/score.ipynb)"
	cd $(DEMO) && ../$(BIN)/papermill artifact/score.ipynb report.ipynb \
		-p input_path new_batch.csv -p output_path predictions.csv \
		-p labels_path new_batch.labels.csv -p summary_path summary.json --log-level WARNING
	@$(BIN)/python -c "import json; s = json.load(open('$(DEMO)/summary.json')); \
		print('\nnbprod demo finished: status', s['status'].upper(), '-', s['rows'], 'rows scored')"
	@echo "  artifact        $(CURDIR)/$(DEMO)/artifact   (nbprod inspect / nbprod verify)"
	@echo "  predictions     $(CURDIR)/$(DEMO)/predictions.csv"
	@echo "  report          $(CURDIR)/$(DEMO)/report.ipynb"
	@echo "  summary         $(CURDIR)/$(DEMO)/summary.json"
	@echo "  MLflow store    sqlite:///$(CURDIR)/$(DEMO)/mlflow.db  (mlflow ui --backend-store-uri ...)"

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check nbprod tests bench

bench: install
	$(BIN)/python bench/scoring_overhead.py

clean:
	rm -rf $(DEMO) .pytest_cache
