"""The examples in the docstrings of nbprod's public API run, and say what they show.

Each public name (``nbprod.__all__``) has a numpydoc docstring with an Examples section; the ones
that are cheap run here as doctests, on the format-1 fixture artifact (a copy: loading and
scoring never write into it, but a test does not bet on that) and its batch.
"""

from __future__ import annotations

import doctest
import importlib
import inspect
import shutil
from pathlib import Path

import pandas as pd
import pytest

import nbprod

FIXTURE = Path(__file__).parent / "data" / "format1-0.1.0"

# modules whose docstrings' examples run (the others' examples need a notebook, MLflow runs
# or two artifacts, and are marked +SKIP)
MODULES = ["nbprod.core.artifact", "nbprod.tracking.resolve", "nbprod.lifecycle.feedback",
           "nbprod.capture.session", "nbprod.jupyter.scoring_job", "nbprod.core.feature_code",
           "nbprod.core.tables", "nbprod.jupyter.charts", "nbprod.jupyter.explore",
           "nbprod.jupyter.review"]


def test_every_public_name_has_a_numpydoc_docstring_with_an_example():
    for name in nbprod.__all__:
        if name == "__version__":
            continue
        doc = inspect.getdoc(getattr(nbprod, name)) or ""
        assert "Examples\n--------" in doc, f"nbprod.{name} has no Examples section"
        if name not in ("Artifact", "Session", "load_ipython_extension"):  # classes, a hook
            assert "Returns\n-------" in doc, f"nbprod.{name} does not say what it returns"
        assert "Parameters\n----------" in doc, f"nbprod.{name} does not list its parameters"


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module, tmp_path):
    shutil.copytree(FIXTURE / "artifact", tmp_path / "artifact")
    shutil.copy(FIXTURE / "batch.csv", tmp_path / "batch.csv")
    shutil.copy(FIXTURE / "batch.labels.csv", tmp_path / "batch.labels.csv")
    globs = {"nbprod": nbprod, "pd": pd, "TMP": tmp_path, "ARTIFACT": tmp_path / "artifact",
             "BATCH_CSV": tmp_path / "batch.csv", "LABELS_CSV": tmp_path / "batch.labels.csv",
             "BATCH": pd.read_csv(tmp_path / "batch.csv", dtype={"customer_id": "string"})}
    result = doctest.testmod(importlib.import_module(module), extraglobs=globs,
                             optionflags=doctest.NORMALIZE_WHITESPACE, report=True)
    assert result.failed == 0, f"{result.failed} example(s) of {module} failed (see above)"
    assert result.attempted > 0, f"{module} has no example that runs"
