"""The artifact as a papermill job: score.ipynb through papermill's Python API and CLI, and the
quickstart notebook end to end. Every test here runs real kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbprod

from .artifacts import ROOT, write_csv

pytestmark = pytest.mark.slow


def _execute(notebook: Path, output: Path, cwd: Path, **parameters):
    import papermill as pm

    return pm.execute_notebook(str(notebook), str(output), parameters=parameters,
                               progress_bar=False, cwd=str(cwd))


def _outputs_text(nb) -> str:
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            for mime in ("text/plain", "text/html"):
                parts.append("".join(out.get("data", {}).get(mime, "")))
    return "\n".join(parts)


def test_papermill_api_scores_and_measures_performance(cancer_art, tmp_path):
    from sklearn.metrics import accuracy_score, roc_auc_score

    inp = write_csv(cancer_art.batch, tmp_path / "batch.csv")
    labels = write_csv(cancer_art.labels, tmp_path / "labels.csv")
    # no artifact_path: the notebook finds its artifact where it was packaged
    nb = _execute(cancer_art.path / "score.ipynb", tmp_path / "report.ipynb", tmp_path,
                  input_path=str(inp), output_path="preds.csv", labels_path=str(labels),
                  summary_path="summary.json", log_to_mlflow=False)
    assert nb.metadata.papermill.parameters["input_path"] == str(inp)

    preds = pd.read_csv(tmp_path / "preds.csv")
    expected = cancer_art.expected(cancer_art.batch)
    assert list(preds.columns) == ["patient_id", "prediction", "proba_0", "proba_1"]
    assert preds["patient_id"].tolist() == cancer_art.batch["patient_id"].tolist()
    assert preds["prediction"].tolist() == expected["prediction"].tolist()
    np.testing.assert_allclose(preds["proba_1"], expected["proba_1"], rtol=1e-12)

    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] in ("ok", "warn")
    assert summary["artifact"]["path"] == str(cancer_art.path)
    assert summary["rows"] == len(cancer_art.batch)
    perf = summary["performance"]
    assert perf["labelled_rows"] == len(cancer_art.labels)
    y = cancer_art.labels["target"]
    metrics = perf["metrics"]
    assert metrics["accuracy"]["value"] == pytest.approx(accuracy_score(y, preds["prediction"]))
    assert metrics["roc_auc"]["value"] == pytest.approx(roc_auc_score(y, preds["proba_1"]))
    for name in ("accuracy", "roc_auc"):
        assert {"validation", "decay", "tolerance"} <= set(metrics[name])
    names = [c["name"] for c in summary["checks"]]
    assert "performance:accuracy" in names and "performance:roc_auc" in names

    text = _outputs_text(json.loads((tmp_path / "report.ipynb").read_text()))
    assert f"Verdict: {summary['status'].upper()}" in text
    assert "Performance" in text


def _volatile_free(summary: dict, cwd: Path) -> dict:
    """A summary without its timings and start time, nor the explanation budget's seconds and
    basis (the auto budget scales with the run's time), paths made relative to ``cwd``."""
    text = json.dumps({k: v for k, v in summary.items() if k not in ("started", "timings")})
    out = json.loads(text.replace(f"{cwd}{os.sep}", ""))
    for figure in ((out.get("drift") or {}).get("explanations"), out.get("explained")):
        for key in ("budget_s", "basis"):
            ((figure or {}).get("budget") or {}).pop(key, None)
    return out


def test_papermill_cli_with_the_nbprod_engine_scores_as_nbprod_score_does(diabetes_art,
                                                                         tmp_path, capsys,
                                                                         monkeypatch):
    """A user's scheduled job: the venv's `papermill` executable, `--engine nbprod` (found
    through the entry point that installing nbprod registers), `-p` parameters as strings on
    the command line. The predictions and the summary equal `nbprod score`'s on the same files;
    no kernel warning reaches the job's log; `--help-notebook` shows the parameters' types."""
    from sklearn.metrics import r2_score

    from nbprod import cli

    pm_dir, cli_dir = tmp_path / "papermill", tmp_path / "cli"
    for d in (pm_dir, cli_dir):
        d.mkdir()
        write_csv(diabetes_art.batch, d / "batch.csv")
        write_csv(diabetes_art.labels, d / "labels.csv")  # no id: joined by row order
    papermill = Path(sys.executable).with_name("papermill")
    cmd = ([str(papermill)] if papermill.exists() else [sys.executable, "-m", "papermill"])
    proc = subprocess.run(
        [*cmd, "--engine", "nbprod", "--no-progress-bar", str(diabetes_art.path / "score.ipynb"),
         "report.ipynb", "-p", "input_path", "batch.csv", "-p", "output_path", "preds.parquet",
         "-p", "labels_path", "labels.csv", "-p", "summary_path", "summary.json",
         "-p", "log_to_mlflow", "False", "-p", "chunk_rows", "25", "-p", "max_rejected", "0.5"],
        cwd=pm_dir, capture_output=True, text=True, timeout=300, env=os.environ.copy(),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "without encryption" not in proc.stderr
    preds = pd.read_parquet(pm_dir / "preds.parquet")
    assert list(preds.columns) == ["prediction"]
    expected = diabetes_art.expected(diabetes_art.batch)
    np.testing.assert_allclose(preds["prediction"], expected["prediction"], rtol=1e-12)
    summary = json.loads((pm_dir / "summary.json").read_text())
    assert summary["rows"] == len(diabetes_art.batch)
    chunks = -(-len(diabetes_art.batch) // 25)  # -p chunk_rows 25 reached the run as a number
    assert summary["engine"] == {"name": "local", "chunks": chunks, "chunk_rows": 25}
    r2 = summary["performance"]["metrics"]["r2"]["value"]
    assert r2 == pytest.approx(r2_score(diabetes_art.labels["target"], preds["prediction"]))
    assert set(summary["prediction"]) >= {"mean", "min", "max"}

    monkeypatch.chdir(cli_dir)  # nbprod score on the same files, as a user types it
    rc = cli.main(["score", str(diabetes_art.path), "batch.csv", "-o", "preds.parquet",
                   "--labels", "labels.csv", "--summary", "summary.json", "--no-mlflow",
                   "--chunk-rows", "25", "--max-rejected", "0.5"])
    assert rc == cli.EXIT_OK, capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_parquet(cli_dir / "preds.parquet"), preds)
    pd.testing.assert_frame_equal(pd.read_parquet(cli_dir / "preds.issues.parquet"),
                                  pd.read_parquet(pm_dir / "preds.issues.parquet"))
    scored = json.loads((cli_dir / "summary.json").read_text())
    assert _volatile_free(summary, pm_dir) == _volatile_free(scored, cli_dir)

    # papermill --help-notebook, as a user reads it: every parameter with its type
    shown = subprocess.run([*cmd, "--help-notebook", str(diabetes_art.path / "score.ipynb")],
                           capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert "Unknown type" not in shown.stdout
    for line in ("input_path: Optional[str] (default None)", "drift_runs: int (default 3)",
                 "log_to_mlflow: bool (default True)", "max_rejected: float (default 0.01)",
                 "chunk_rows: Optional[int] (default None)"):
        assert line in shown.stdout, shown.stdout


def test_a_failing_input_fails_the_papermill_run_and_writes_nothing(cancer_art, tmp_path):
    import papermill as pm

    write_csv(cancer_art.batch.drop(columns=["mean_area"]), tmp_path / "batch.csv")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(pm.PapermillExecutionError) as err:
        _execute(cancer_art.path / "score.ipynb", tmp_path / "report.ipynb", tmp_path,
                 input_path="batch.csv", output_path=str(out / "preds.csv"),
                 summary_path=str(out / "summary.json"), log_to_mlflow=False)
    assert err.value.ename == "SchemaError"
    assert "'mean_area'" in err.value.evalue
    assert list(out.iterdir()) == []  # no predictions, no summary, no temporary file
    # papermill still leaves the executed notebook, with the failing cell marked
    report = json.loads((tmp_path / "report.ipynb").read_text())
    errors = [o for c in report["cells"] for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "SchemaError"


def test_raise_on_alert_fails_the_run_after_writing(cancer_art, tmp_path):
    import papermill as pm

    drifted = cancer_art.batch.copy()
    cols = cancer_art.manifest["input_columns"]
    drifted[cols] = drifted[cols] * 1.5
    write_csv(drifted, tmp_path / "batch.csv")
    with pytest.raises(pm.PapermillExecutionError) as err:
        _execute(cancer_art.path / "score.ipynb", tmp_path / "report.ipynb", tmp_path,
                 input_path="batch.csv", output_path="preds.csv", summary_path="summary.json",
                 artifact_path=str(cancer_art.path), log_to_mlflow=False, raise_on_alert=True)
    assert err.value.ename == "MonitoringAlert"
    assert "drift:dataset" in err.value.evalue
    assert len(pd.read_csv(tmp_path / "preds.csv")) == len(drifted)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["status"] == "alert"
    text = _outputs_text(json.loads((tmp_path / "report.ipynb").read_text()))
    assert "Verdict: ALERT" in text


def test_quickstart_notebook_end_to_end(tmp_path):
    from nbprod.jobs import run as nbrun

    work = tmp_path / "demo"
    work.mkdir()
    _execute(ROOT / "notebooks" / "quickstart.ipynb", work / "quickstart.executed.ipynb", work,
             artifact_path="artifact")
    art_dir = work / "artifact"
    check = nbprod.verify(art_dir)
    assert check.ok and check.extra == []
    art = nbprod.load(art_dir)
    assert (art.name, art.task, art.id_column) == ("cancer", "classification", "patient_id")

    batch = pd.read_csv(work / "new_batch.csv")
    assert "target" not in batch.columns and len(batch) == 114
    scored = art.score(batch)
    assert list(scored.columns)[:4] == ["patient_id", "prediction", "proba_0", "proba_1"]
    assert scored["patient_id"].tolist() == batch["patient_id"].tolist()
    assert set(scored["prediction"]) == {0, 1}
    if "out_of_bounds" in scored:  # output bounds declared with policy flag
        assert list(scored.columns)[4:] == ["out_of_bounds"]
        assert not scored["out_of_bounds"].any()

    # the scheduled step, as the quickstart's own instructions describe it
    run = nbrun.execute(input_path=str(work / "new_batch.csv"),
                        output_path=str(work / "predictions.csv"),
                        labels_path=str(work / "new_batch.labels.csv"),
                        artifact_path=str(art_dir), log_to_mlflow=False)
    assert run.performance["metrics"]["roc_auc"]["value"] > 0.9
    assert len(pd.read_csv(work / "predictions.csv")) == len(batch)


def test_the_nbprod_papermill_engine_starts_kernels_without_the_encryption_warning(tmp_path,
                                                                                   capfd):
    """`papermill --engine nbprod` (the entry point pyproject declares) runs kernels on local
    IPC sockets: ipykernel's "running over TCP without encryption" warning never reaches the
    user; nbprod's own kernels (nbprod score, retrain) use the same kernel manager."""
    import importlib
    import tomllib

    import nbformat
    import papermill as pm
    from papermill.engines import NBClientEngine, papermill_engines

    target = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"][
        "papermill.engine"]["nbprod"]
    module, name = target.split(":")
    engine = getattr(importlib.import_module(module), name)
    assert issubclass(engine, NBClientEngine)
    papermill_engines.register("nbprod", engine)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1 + 1\nx")], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, str(tmp_path / "one.ipynb"))
    capfd.readouterr()
    out = pm.execute_notebook(str(tmp_path / "one.ipynb"), str(tmp_path / "out.ipynb"),
                              engine_name="nbprod", progress_bar=False)
    assert out.cells[0].outputs[0]["data"]["text/plain"] == "2"
    err = capfd.readouterr().err
    assert "without encryption" not in err
    assert not list(tmp_path.glob("*ipc*"))  # no socket files left behind
