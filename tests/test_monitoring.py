"""Monitoring end to end: drift and decay verdicts, retrain signal, MLflow history, reports."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbprod
from nbprod.jobs import run as nbrun


def _data(n: int, seed: int, shift: float = 0.0, flip: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "customer": [f"c{seed}-{i}" for i in range(n)],
        "spend": rng.normal(50, 10, n) + shift * 10,
        "visits": rng.poisson(4, n),
        "tenure": rng.uniform(0, 10, n),
        "channel": pd.array(rng.choice(["web", "store", "phone"], n, p=[0.5, 0.3, 0.2]), dtype="str"),
    })
    if shift:
        df["channel"] = pd.array(rng.choice(["web", "store", "phone"], n, p=[0.1, 0.2, 0.7]), dtype="str")
    logit = (df["spend"] - 50) / 5 + np.where(df["channel"] == "phone", 1.5, 0) - 0.5
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    if flip:
        swap = rng.random(n) < flip
        y = np.where(swap, 1 - y, y)
    return df.assign(churned=y)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    root = tmp_path_factory.mktemp("monitoring")
    train, valid = _data(3000, 1), _data(1000, 2)
    s = nbprod.Session("churn-monitor")
    s.snapshot(train, role="train", target="churned", id="customer")
    s.snapshot(valid, role="valid", target="churned", id="customer")

    def features(df):
        return df.assign(spend_per_visit=df["spend"] / (df["visits"] + 1))

    s.features(features)
    pre = ColumnTransformer([("num", StandardScaler(), ["spend", "visits", "tenure", "spend_per_visit"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["channel"])])
    model = make_pipeline(pre, LogisticRegression(max_iter=1000))
    model.fit(features(train.drop(columns=["churned", "customer"])), train["churned"])
    s.model(model)
    s.check("metric", metric="roc_auc", min=0.8)
    s.package(root / "art", log_to_mlflow=False)
    return root / "art"


def _batch(tmp_path: Path, name: str, df: pd.DataFrame) -> tuple[str, str]:
    inputs, labels = tmp_path / f"{name}.csv", tmp_path / f"{name}.labels.csv"
    df.drop(columns=["churned"]).to_csv(inputs, index=False)
    df[["customer", "churned"]].to_csv(labels, index=False)
    return str(inputs), str(labels)


def test_unchanged_batch_is_ok(artifact, tmp_path):
    inputs, labels = _batch(tmp_path, "same", _data(2000, 10))
    run = nbrun.execute(input_path=inputs, output_path=str(tmp_path / "p.csv"),
                             artifact_path=str(artifact), labels_path=labels, log_to_mlflow=False)
    s = run.summary()
    assert s["status"] == "ok", [c for c in s["checks"] if c["status"] != "pass"]
    assert s["drift"]["dataset"]["drifted"] is False
    assert all(not c["drifted"] for c in s["drift"]["columns"].values())
    assert s["performance"]["metrics"]["roc_auc"]["decayed"] is False
    assert s["retrain"]["recommended"] is False


def test_drifted_batch_with_degraded_labels_alerts_and_recommends_retraining(artifact, tmp_path):
    inputs, labels = _batch(tmp_path, "bad", _data(2000, 11, shift=1.0, flip=0.35))
    run = nbrun.execute(input_path=inputs, output_path=str(tmp_path / "p.csv"),
                             artifact_path=str(artifact), labels_path=labels,
                             summary_path=str(tmp_path / "s.json"), log_to_mlflow=False)
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["status"] == "alert"
    assert s["drift"]["dataset"]["drifted"] is True
    assert {"spend", "channel"} <= set(s["drift"]["dataset"]["drifted_columns"])
    assert s["drift"]["columns"]["spend"]["drifted"] and not s["drift"]["columns"]["tenure"]["drifted"]
    perf = s["performance"]["metrics"]["roc_auc"]
    assert perf["value"] < 0.8 and perf["below_threshold"]
    assert s["retrain"]["recommended"] is True
    assert any("performance:roc_auc" in r for r in s["retrain"]["reasons"])
    assert s["drift"]["predictions"]["drifted"] is True
    channel = s["drift"]["columns"]["channel"]  # phone 20% -> 70%: a category share moved
    assert any(c.startswith("phone: 19.3% -> ") for c in channel["share_changes"])
    assert any(r.startswith("category share (") for r in channel["reasons"])
    dataset = next(c for c in s["checks"] if c["name"] == "drift:dataset")
    assert "channel (web: 49.8% -> " in dataset["message"]  # in the verdict's words
    from nbprod.jupyter.report import verdict

    assert "Retraining is recommended" in verdict(run)._repr_html_()


def test_joint_drift_and_estimated_performance_in_the_summary(artifact, tmp_path):
    inputs, labels = _batch(tmp_path, "depth", _data(1000, 12))
    run = nbrun.execute(input_path=inputs, output_path=str(tmp_path / "p.csv"),
                        artifact_path=str(artifact), labels_path=labels,
                        summary_path=str(tmp_path / "s.json"), log_to_mlflow=False)
    s = json.loads((tmp_path / "s.json").read_text())
    mv = s["drift"]["multivariate"]
    assert mv["method"] == "pca_reconstruction" and mv["columns"] == ["spend", "visits", "tenure"]
    assert mv["drifted"] is False and mv["statistic"] < mv["threshold"] and mv["rows"] == 1000
    est = s["estimated_performance"]
    auc = est["metrics"]["roc_auc"]
    realised = s["performance"]["metrics"]["roc_auc"]["value"]
    assert abs(auc["value"] - realised) < 0.05 and auc["lower"] <= auc["value"] <= auc["upper"]
    assert est["method"].startswith("CBPE") and est["reliability"] == "ok"
    checks = {c["name"]: c for c in s["checks"]}
    assert checks["drift:multivariate"]["status"] == "pass"
    assert checks["estimated:performance"]["status"] == "pass"
    assert checks["estimated:performance"]["message"].startswith("estimated ROC AUC")
    ref = json.loads((artifact / "reference.json").read_text())
    assert ref["estimation"]["calibration"]["kind"] in ("none", "sigmoid", "isotonic")
    from nbprod.jupyter.report import performance
    from nbprod.tracking.runs import run_metrics

    shown = performance(run)  # estimated beside realised
    assert "Estimated performance (1,000 rows" in shown.html and "realised" in shown.html
    logged = run_metrics(s)
    assert logged["estimated.roc_auc"] == auc["value"] and logged["estimated.roc_auc.lower"] == auc["lower"]
    assert logged["drift.multivariate.drifted"] == 0.0


def test_drift_only_retrain_needs_persistence_and_history_accumulates(artifact, tmp_path, mlflow_store):
    from nbprod.tracking.runs import history

    decisions = []
    for i in range(3):
        inputs, _ = _batch(tmp_path, f"d{i}", _data(1500, 20 + i, shift=1.0))
        run = nbrun.execute(input_path=inputs, output_path=str(tmp_path / f"p{i}.csv"),
                                 artifact_path=str(artifact), drift_runs=3)
        assert run.tracking and run.tracking["run_id"], run.tracking
        decisions.append((run.retrain["recommended"], run.retrain["consecutive_drift_runs"]))
    assert decisions == [(False, 1), (False, 2), (True, 3)]
    assert "persisted over 3 consecutive runs" in run.retrain["reasons"][0]

    runs = history("churn-monitor", json.loads((artifact / "nbprod.json").read_text())["artifact_id"])
    assert len(runs) >= 3
    assert list(runs["dataset_drifted"].tail(3)) == [1.0, 1.0, 1.0]
    assert list(runs["retrain"].tail(3)) == [0.0, 0.0, 1.0]
    assert (runs["start_time"].diff().dropna() >= pd.Timedelta(0)).all()  # oldest first

    # a clean run breaks the streak
    inputs, _ = _batch(tmp_path, "clean", _data(1500, 30))
    run = nbrun.execute(input_path=inputs, output_path=str(tmp_path / "pc.csv"),
                             artifact_path=str(artifact))
    assert run.retrain["consecutive_drift_runs"] == 0 and not run.retrain["recommended"]


@pytest.mark.slow
def test_cli_exit_3_html_report_and_history(artifact, tmp_path):
    inputs, labels = _batch(tmp_path, "cli", _data(1500, 40, shift=1.0, flip=0.35))
    out, html = tmp_path / "pred.parquet", tmp_path / "report.html"
    proc = subprocess.run(
        [sys.executable, "-m", "nbprod.cli", "score", str(artifact), inputs, "-o", str(out),
         "--labels", labels, "--report", str(tmp_path / "report.ipynb"), "--html", str(html),
         "--summary", str(tmp_path / "s.json")],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 3, proc.stderr
    assert out.exists() and len(pd.read_parquet(out)) == 1500  # predictions still written
    assert "retraining is recommended" in proc.stdout

    page = html.read_text()
    assert not re.search(r"https?://", page)  # self-contained: nothing to fetch
    assert "nbprod.scoring_job(" not in page and 'job.show("drift")' not in page  # code hidden
    assert page.count("<svg") >= 2 and "<rect" in page  # figures embedded as inline SVG
    assert "Verdict:" in page and page.index("Verdict:") < page.index("Data drift")
    assert html.stat().st_size < 3_000_000

    # the executed report joined the MLflow run the notebook logged
    import mlflow

    run_id = json.loads((tmp_path / "s.json").read_text())["tracking"]["run_id"]
    names = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    assert {"summary.json", "report.ipynb"} <= names

    hist = subprocess.run([sys.executable, "-m", "nbprod.cli", "history", str(artifact)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert hist.returncode == 0 and "alert" in hist.stdout and "perf_roc_auc" in hist.stdout


@pytest.mark.slow
def test_raise_on_alert_fails_the_papermill_run_after_writing(artifact, tmp_path):
    import papermill as pm

    inputs, _ = _batch(tmp_path, "raise", _data(800, 50, shift=1.5))
    with pytest.raises(pm.PapermillExecutionError) as err:
        pm.execute_notebook(str(artifact / "score.ipynb"), str(tmp_path / "out.ipynb"),
                            parameters={"input_path": inputs, "output_path": str(tmp_path / "p.csv"),
                                        "raise_on_alert": True, "log_to_mlflow": False},
                            progress_bar=False)
    assert err.value.ename == "MonitoringAlert" and "drift:dataset" in err.value.evalue
    assert (tmp_path / "p.csv").exists() and (tmp_path / "out.ipynb").exists()


def test_unreachable_tracking_store_costs_no_predictions(artifact, tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("not a directory")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}")
    inputs, _ = _batch(tmp_path, "offline", _data(300, 50))
    out, summary = tmp_path / "p.csv", tmp_path / "s.json"
    old = os.umask(0o022)
    try:
        run = nbrun.execute(input_path=inputs, output_path=str(out), summary_path=str(summary),
                                 artifact_path=str(artifact))
    finally:
        os.umask(old)
    assert len(pd.read_csv(out)) == 300  # predictions written although MLflow was not there
    warn = [c for c in run.checks if c.name == "tracking"]
    assert len(warn) == 1 and warn[0].status == "warn"
    assert warn[0].message.startswith("MLflow logging failed")
    assert json.loads(summary.read_text())["tracking"]["error"] == warn[0].message
    # outputs get the usual permissions, not a temporary file's private 0600
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)
    assert oct(summary.stat().st_mode & 0o777) == oct(0o644)


def test_numbers_and_lists_read_the_same_everywhere():
    """One formatter for every number a person reads (CLI, messages, report, widgets): counts
    with thousands separators, no scientific notation from 1,000 up; a cut list says how many
    more there are."""
    from nbprod.core.results import fmt, listing, number
    from nbprod.core.tables import cell_text

    assert [number(v) for v in (10790.0, 1597.3, 0.99234, 12, float("nan"), None)] == [
        "10,790", "1,597", "0.9923", "12", "nan", ""]
    assert fmt(1597.3) == "1,597" and fmt(0.99234) == "0.9923"  # messages read as tables do
    assert cell_text(10790.0) == "10,790"  # the history table's rows of earlier runs
    assert listing(["a", "b", "c"]) == "a, b, c"
    assert listing([f"c{i}" for i in range(7)]) == "c0, c1, c2, c3, c4 and 2 more"
