"""Packaging: parity replay, atomic writes, safe model storage, PII, check gating."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError

import nbprod
from nbprod.core.results import CheckResult
from nbprod.exceptions import ChecksFailedError, PackagingError, ParityError

from .artifacts import assert_valid_manifest
from .conftest import run


def _mixed_session(mixed: pd.DataFrame, **snapshot_kw) -> nbprod.Session:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train, valid = mixed.iloc[:700], mixed.iloc[700:]
    s = nbprod.Session("mixed")
    s.snapshot(train, role="train", target="label", id="account", **snapshot_kw)
    s.snapshot(valid, role="valid", target="label", id="account", **snapshot_kw)

    def features(df):
        out = df.drop(columns=["email"])
        out["usage_per_month"] = df["usage"] / (df["tenure"] + 1)
        return out

    s.features(features)
    pre = ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(), StandardScaler()), ["usage", "tenure", "usage_per_month"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["region", "plan"]),
        ]
    )
    model = make_pipeline(pre, LogisticRegression(max_iter=1000))
    model.fit(features(train.drop(columns=["label", "account"])), train["label"])
    s.model(model)
    return s


def test_column_transformer_on_pandas_str_columns_with_nans(mixed, tmp_path):
    assert str(mixed["region"].dtype) == "str" and mixed["region"].isna().any()
    s = _mixed_session(mixed)
    result = s.package(tmp_path / "art", log_to_mlflow=False)
    assert result.parity_rows == len(mixed)
    art = nbprod.load(tmp_path / "art")
    assert art.classes == ["high", "low", "mid"]
    schema = {c["name"]: c for c in art.snapshot("train")["schema"]}
    assert schema["region"]["dtype"] == "str" and schema["region"]["nullable"] is True
    new = mixed.iloc[700:].drop(columns=["label"]).copy()
    new.loc[new.index[0], "region"] = "atlantis"  # unseen category: the encoder ignores it
    scored = art.score(new)
    assert list(scored.columns) == ["account", "prediction", "proba_high", "proba_low", "proba_mid"]
    np.testing.assert_allclose(scored[["proba_high", "proba_low", "proba_mid"]].sum(axis=1), 1.0)
    expected = s.model_capture.model.predict(s.feature_capture.fn(new.drop(columns=["account"])))
    assert scored["prediction"].tolist() == list(expected)


def test_pii_is_never_stored_raw(mixed, tmp_path):
    s = _mixed_session(mixed, pii=["email", "account"])
    s.package(tmp_path / "art", log_to_mlflow=False)
    art_dir = tmp_path / "art"
    emails = mixed["email"].tolist()
    for f in art_dir.rglob("*"):
        if f.is_file():
            blob = f.read_bytes()
            assert b"@example.com" not in blob, f"raw PII in {f.name}"
    sample = pd.read_parquet(art_dir / "snapshots" / "train.sample.parquet")
    assert sample["email"].str.len().eq(16).all()  # keyed pseudonyms
    assert sample["email"].nunique() == len(sample)  # distinct values stay distinct
    prof = json.loads((art_dir / "snapshots" / "train.json").read_text())["profile"]["email"]
    assert prof.get("hidden") is True and "frequencies" not in prof
    assert emails[0] not in (art_dir / "nbprod.json").read_text()
    # MLflow's input example: neutral values of the trained type, and it scores
    example = json.loads((art_dir / "input_example.json").read_text())
    rows = pd.DataFrame(example["data"], columns=example["columns"])
    assert rows["email"].tolist() == ["redacted"] * 3
    assert rows["account"].tolist() == ["example-1", "example-2", "example-3"]
    assert not set(rows["account"]) & set(mixed["account"])
    assert len(nbprod.load(art_dir).score(rows)) == 3


def _cancer_session(cancer: pd.DataFrame, features_source: str, ns: dict) -> nbprod.Session:
    from sklearn.linear_model import LogisticRegression

    train = cancer.iloc[:400]
    s = nbprod.Session("cancer")
    s.snapshot(train, role="train", target="target", id="patient_id")
    ns = {"__name__": "__main__", **ns}
    exec(compile(features_source, "<cell>", "exec"), ns)
    s.features(source=features_source, namespace=ns)
    X = ns["features"](train.drop(columns=["target", "patient_id"]))
    s.model(LogisticRegression(max_iter=3000).fit(X, train["target"]))
    return s, ns


def test_parity_replay_catches_state_changed_after_capture(cancer, tmp_path):
    src = "FACTORS = [1.0]\ndef features(df):\n    return df * FACTORS[0]\n"
    s, ns = _cancer_session(cancer, src, {})
    ns["FACTORS"][0] = 3.0  # the notebook mutates a captured constant in a later cell
    with pytest.raises(ParityError) as err:
        s.package(tmp_path / "art", log_to_mlflow=False)
    msg = str(err.value)
    assert "rows differ in 'proba_0'" in msg and "notebook" in msg and "artifact" in msg
    assert not (tmp_path / "art").exists()
    assert [p.name for p in tmp_path.iterdir()] == []  # no staging directory left behind


def test_parity_replay_catches_a_planted_hidden_global(cancer, tmp_path):
    import builtins

    builtins.NBPROD_TEST_SHIFT = 2.0  # hidden state only this process has
    try:
        s, _ = _cancer_session(cancer, "def features(df):\n    return df + NBPROD_TEST_SHIFT\n", {})
        with pytest.raises(ParityError, match="NameError: name 'NBPROD_TEST_SHIFT' is not defined"):
            s.package(tmp_path / "art", log_to_mlflow=False)
    finally:
        del builtins.NBPROD_TEST_SHIFT
    assert not (tmp_path / "art").exists()


def test_regression_package_and_score(diabetes, tmp_path, capsys):
    from sklearn.ensemble import GradientBoostingRegressor

    s = nbprod.Session("diabetes")
    s.snapshot(diabetes.iloc[:300], role="train", target="target", sample_size=50)
    s.snapshot(diabetes.iloc[300:], role="valid", target="target", sample_size=50)

    def features(df):
        return df.assign(bmi_bp=df["bmi"] * df["bp"])

    s.features(features)
    X = features(diabetes.iloc[:300].drop(columns=["target"]))
    s.model(GradientBoostingRegressor(n_estimators=20, random_state=0).fit(X, diabetes["target"].iloc[:300]))
    res = s.package(tmp_path / "art", log_to_mlflow=False)
    assert res.parity_rows == 100  # 50 sampled rows per snapshot
    assert "nbprod package" not in capsys.readouterr().err  # stderr is no terminal: no bar
    m = json.loads((tmp_path / "art" / "nbprod.json").read_text())
    assert m["task"] == "regression" and m["classes"] is None
    assert any("Tree" in t for t in m["model"]["trusted_types"])  # listed explicitly
    scored = nbprod.load(tmp_path / "art").score(diabetes.iloc[300:].drop(columns=["target"]))
    assert list(scored.columns) == ["prediction"]
    np.testing.assert_allclose(
        scored["prediction"], s.model_capture.model.predict(features(diabetes.iloc[300:].drop(columns=["target"])))
    )


def test_model_with_class_from_the_notebook_is_refused(shell, cancer, in_tmp):
    shell.user_ns["train"] = cancer.iloc[:300]
    run(shell, "%nbprod snapshot train --role train --target target --id patient_id")
    run(shell, "%%nbprod features\ndef features(df):\n    return df[['mean_radius', 'mean_area']]\n")
    run(
        shell,
        "%%nbprod model\n"
        "from sklearn.base import BaseEstimator, RegressorMixin\n"
        "class Mean(RegressorMixin, BaseEstimator):\n"
        "    def fit(self, X, y):\n"
        "        self.mean_ = float(y.mean()); return self\n"
        "    def predict(self, X):\n"
        "        import numpy as np; return np.full(len(X), self.mean_)\n"
        "model = Mean().fit(features(train), train['target'])\n",
    )
    with pytest.raises(UsageError, match="__main__.Mean, a class defined in the notebook"):
        run(shell, "%nbprod package art --no-mlflow")
    assert not (in_tmp / "art").exists()
    assert not any(p.name.endswith(".nbprod-tmp") for p in in_tmp.iterdir())
    # a lambda in a FunctionTransformer: not "a class", and the fix that works
    run(shell, "%%nbprod model\n"
               "from sklearn.pipeline import make_pipeline\n"
               "from sklearn.preprocessing import FunctionTransformer\n"
               "from sklearn.linear_model import LinearRegression\n"
               "model = make_pipeline(FunctionTransformer(lambda x: x * 2), LinearRegression())\n"
               "model.fit(features(train), train['target'])\n")
    with pytest.raises(UsageError, match=r"a lambda defined in the notebook .*Use a numpy "
                                         r"function \(FunctionTransformer\(np\.log1p\)\)"):
        run(shell, "%nbprod package art --no-mlflow")
    assert not (in_tmp / "art").exists()


def test_failed_checks_gate_packaging_and_force_records_override(cancer, tmp_path):
    s, _ = _cancer_session(cancer, "def features(df):\n    return df\n", {})
    s.record_check(CheckResult(name="metric:roc_auc", kind="metric", status="fail",
                               message="validation ROC AUC 0.60 is below 0.80", value=0.6, threshold=0.8))
    with pytest.raises(ChecksFailedError, match="metric:roc_auc"):
        s.package(tmp_path / "art", log_to_mlflow=False)
    assert not (tmp_path / "art").exists()
    s.package(tmp_path / "art", log_to_mlflow=False, force=True, user="alice")
    m = assert_valid_manifest(tmp_path / "art")  # an override follows the schema too
    assert m["override"]["by"] == "alice" and m["override"]["checks"] == ["metric:roc_auc"]
    assert m["checks"][0]["status"] == "fail"


def test_existing_path_needs_overwrite(cancer, tmp_path):
    s, _ = _cancer_session(cancer, "def features(df):\n    return df\n", {})
    s.package(tmp_path / "art", log_to_mlflow=False)
    first = json.loads((tmp_path / "art" / "nbprod.json").read_text())["artifact_id"]
    with pytest.raises(PackagingError, match="already exists"):
        s.package(tmp_path / "art", log_to_mlflow=False)
    s.package(tmp_path / "art", log_to_mlflow=False, overwrite=True)
    second = json.loads((tmp_path / "art" / "nbprod.json").read_text())["artifact_id"]
    assert first != second
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]
    (tmp_path / "plain").mkdir()
    with pytest.raises(PackagingError, match="is not an nbprod artifact"):
        s.package(tmp_path / "plain", log_to_mlflow=False, overwrite=True)


def test_package_logs_a_run_and_a_logged_model_to_mlflow(cancer, tmp_path, mlflow_store):
    import mlflow

    s, _ = _cancer_session(cancer, "def features(df):\n    return df\n", {})
    for kind, value in (("cv", 0.012), ("baseline", 0.41), ("overfit", 0.003)):  # as computed
        s.record_check(CheckResult(name=f"{kind}:roc_auc", kind=kind, status="pass",
                                   message=f"{kind} figure", value=value, threshold=0.5))
    res = s.package(tmp_path / "art")
    assert res.mlflow["tracking_uri"] == mlflow_store
    run_ = mlflow.get_run(res.mlflow["run_id"])
    assert run_.data.tags["nbprod.kind"] == "package"
    assert run_.data.tags["nbprod.digest"] == res.digest
    assert run_.data.params["train_rows"] == "400"
    # the estimator's hyperparameters, flattened, beside nbprod's own params
    assert run_.data.params["model.C"] == "1.0"
    assert run_.data.params["model.max_iter"] == "3000"
    # each check's figure under a name that says what it is
    checks = {c.name: c.value for c in s.checks.values()}
    metrics = run_.data.metrics
    assert metrics["cv.roc_auc_std"] == pytest.approx(checks["cv:roc_auc"])
    assert metrics["baseline.roc_auc_gain"] == pytest.approx(checks["baseline:roc_auc"])
    assert metrics["overfit.roc_auc_gap"] == pytest.approx(checks["overfit:roc_auc"])
    assert not {"cv.roc_auc", "baseline.roc_auc", "overfit.roc_auc"} & set(metrics)
    # the artifact is the run's logged model, and the experiment opens in the classic ML view
    model_id = res.mlflow["model_id"]
    assert [o.model_id for o in run_.outputs.model_outputs] == [model_id]
    logged = mlflow.MlflowClient().get_logged_model(model_id)
    assert logged.source_run_id == run_.info.run_id and logged.params["C"] == "1.0"
    assert {m.key for m in logged.metrics} >= {"cv.roc_auc_std", "overfit.roc_auc_gap"}
    exp = mlflow.MlflowClient().get_experiment(run_.info.experiment_id)
    assert exp.tags["mlflow.experimentKind"] == "custom_model_development"


def test_the_training_notebook_is_rebuilt_from_the_cells_a_shell_executed(shell):
    """Plain IPython (no notebook path): the cells the kernel ran, in order, the first cell of
    only literal assignments tagged as the parameters cell; papermill's injected cell left out."""
    from nbprod.capture.training import executed_cells, executed_notebook, notebook_parameters

    for source in ('import math', 'data_path = None\nseed: int = 0', 'x = math.sqrt(seed)',
                   '%nbprod status'):
        shell.run_cell(source, store_history=True)
    cells = executed_cells(shell)
    assert cells == ['import math', 'data_path = None\nseed: int = 0', 'x = math.sqrt(seed)',
                     '%nbprod status']
    nb = executed_notebook(cells)
    assert [c.metadata.get("tags") for c in nb.cells] == [None, ["parameters"], None, None]
    # under papermill: the cell before the injected one is the parameters cell, whatever it holds
    papermill = ["import math", "# Parameters (defaults)\nartifact_path = 'a'",
                 "# Parameters\nartifact_path = \"v1\"\n", "%nbprod package {artifact_path}"]
    nb = executed_notebook(papermill)
    assert [c.source for c in nb.cells] == [papermill[0], papermill[1], papermill[3]]
    assert nb.cells[1].metadata["tags"] == ["parameters"]
    import nbformat

    nbformat.write(nb, "t.ipynb")  # the shell fixture works in a temporary directory
    assert notebook_parameters(Path("t.ipynb")) == ["artifact_path"]
