"""Artifacts in the field keep scoring identically (docs/artifact-format.md, compatibility).

``tests/data/format1-0.1.0`` holds an artifact packaged by nbprod 0.1.0 before the package was
split into layers: its ``score.ipynb`` calls ``nbprod.tracking.RunLogger``, ``nbprod.run`` and
``nbprod.report``; its ``MLmodel`` names ``loader_module: nbprod.mlflow_flavor``. Beside it, a
batch it never saw and the predictions 0.1.0 wrote for that batch (``expected.csv``). Every
route a scheduler or an engineer takes must give those predictions again, to the byte.

Newly packaged notebooks call one public name that does not move, ``nbprod.scoring_job``; the
last tests hold its promises: the sections a generated notebook shows are ones it knows, and a
newer notebook's unknown section or parameter does not fail the run.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import pandas as pd
import pytest

import nbprod
from nbprod.core import manifest as mf
from nbprod.jobs.notebook import SECTIONS as NOTEBOOK_SECTIONS
from nbprod.jobs.notebook import scoring_notebook
from nbprod.jupyter.scoring_job import SECTIONS

FIXTURE = Path(__file__).parent / "data" / "format1-0.1.0"
ARTIFACT = FIXTURE / "artifact"
EXPECTED = (FIXTURE / "expected.csv").read_bytes()


@pytest.fixture(scope="module", autouse=True)
def fixture_stays_as_packaged():
    """The fixture is the field: scoring it never changes a byte of it."""
    before = {p: p.read_bytes() for p in ARTIFACT.rglob("*") if p.is_file()}
    yield
    after = {p: p.read_bytes() for p in ARTIFACT.rglob("*") if p.is_file()}
    assert after == before
    assert nbprod.verify(ARTIFACT).ok


def test_the_fixture_is_an_artifact_of_the_old_layout():
    # what makes it a fixture worth keeping: the names it calls are the compatibility modules
    code = "\n".join(c.source for c in nbformat.read(ARTIFACT / "score.ipynb", 4).cells
                     if c.cell_type == "code")
    assert "from nbprod.tracking import RunLogger" in code
    assert "import nbprod.report as report" in code and "nbprod.run.execute(" in code
    assert "loader_module: nbprod.mlflow_flavor" in (ARTIFACT / "MLmodel").read_text()
    assert mf.read(ARTIFACT)["environment"]["nbprod"] == "0.1.0"


@pytest.mark.slow
def test_nbprod_score_gives_the_predictions_of_0_1_0(tmp_path):
    script = Path(sys.executable).with_name("nbprod")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "nbprod.cli"]
    out = tmp_path / "predictions.csv"
    proc = subprocess.run(
        [*command, "score", str(ARTIFACT), str(FIXTURE / "batch.csv"), "-o", str(out),
         "--labels", str(FIXTURE / "batch.labels.csv"), "--summary", str(tmp_path / "s.json"),
         "--no-mlflow"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == EXPECTED
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["status"] == "ok"
    assert summary["rows"] == summary["rows_in"] == 70 and summary["rejected"] == 0
    assert summary["performance"]["labelled_rows"] == 70
    # statistics its reference.json predates are simply absent
    assert "multivariate" not in summary["drift"] and summary["estimated_performance"] is None
    assert not {c["name"] for c in summary["checks"]} & {"drift:multivariate", "estimated:performance"}


@pytest.mark.slow
def test_its_own_score_ipynb_under_papermill_gives_the_predictions_of_0_1_0(tmp_path):
    import papermill as pm

    out = tmp_path / "predictions.csv"
    nb = pm.execute_notebook(
        str(ARTIFACT / "score.ipynb"), str(tmp_path / "report.ipynb"), progress_bar=False,
        cwd=str(tmp_path),
        parameters={"input_path": str(FIXTURE / "batch.csv"), "output_path": str(out),
                    "labels_path": str(FIXTURE / "batch.labels.csv"),
                    "summary_path": str(tmp_path / "s.json"), "artifact_path": str(ARTIFACT),
                    "log_to_mlflow": False})
    assert out.read_bytes() == EXPECTED
    assert (tmp_path / "predictions.issues.csv").is_file()  # what today's runs add
    shown = "\n".join("".join(o.get("data", {}).get("text/html", "")) for c in nb.cells
                      for o in c.get("outputs", []))
    for heading in ("Verdict:", "Input and output checks", "Data drift", "Predictions",
                    "Performance (70 labelled rows)", "Details"):
        assert heading in shown  # every old report.* view still draws
    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]


@pytest.mark.slow
def test_mlflow_loads_it_through_the_old_loader_module():
    import mlflow.pyfunc

    batch = pd.read_csv(FIXTURE / "batch.csv", dtype={"customer_id": "str", "plan": "str"})
    scored = mlflow.pyfunc.load_model(str(ARTIFACT)).predict(batch)
    assert scored.to_csv(index=False).encode() == EXPECTED


def test_nbprod_load_and_the_scoring_entry_point_give_the_predictions_of_0_1_0(tmp_path):
    batch = pd.read_csv(FIXTURE / "batch.csv", dtype={"customer_id": "str", "plan": "str"})
    assert nbprod.load(ARTIFACT).score(batch).to_csv(index=False).encode() == EXPECTED

    out = tmp_path / "predictions.csv"
    job = nbprod.scoring_job(input_path=str(FIXTURE / "batch.csv"), output_path=str(out),
                             artifact_path=str(ARTIFACT), log_to_mlflow=False)
    assert out.read_bytes() == EXPECTED
    for section in SECTIONS:
        assert job.show(section).html  # every section draws for an artifact of format 1


def test_a_newer_notebook_fails_softly(tmp_path):
    """A section or a parameter this nbprod does not know: a note, a warning, still scored."""
    with pytest.warns(UserWarning, match="does not know the scoring parameter.*sample_share"):
        job = nbprod.scoring_job(input_path=str(FIXTURE / "batch.csv"),
                                 output_path=str(tmp_path / "p.csv"), artifact_path=str(ARTIFACT),
                                 log_to_mlflow=False, sample_share=0.5)
    assert (tmp_path / "p.csv").read_bytes() == EXPECTED
    note = job.show("fairness")
    assert "no report section 'fairness'" in note.text and "Upgrade nbprod" in note.text
    assert "<i>" in note.html
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        job.raise_if_alert(False)


def test_a_generated_notebook_calls_only_the_stable_entry_point():
    nb = scoring_notebook(name="churn", packaged_at="/models/churn", artifact_id="a1b2")
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    calls = "\n".join(code[1:])  # after the parameters cell
    tree = ast.parse(calls)
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom)]
    assert [[a.name for a in n.names] for n in imports] == [["nbprod"]]  # no module is named
    used = {f"{n.value.id}.{n.attr}" for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)}
    assert used == {"nbprod.scoring_job", "job.show", "job.raise_if_alert"}
    shown = [n.args[0].value for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and n.func.attr == "show"]
    assert set(shown) == set(SECTIONS) and set(NOTEBOOK_SECTIONS) < set(SECTIONS)
    assert "name='churn'" in calls and "artifact_id='a1b2'" in calls
