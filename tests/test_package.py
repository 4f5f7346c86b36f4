"""Packaging: parity replay, atomic writes, safe model storage, PII, check gating."""

from __future__ import annotations

import json

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
    s = _mixed_session(mixed, pii=["email"])
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


def test_regression_package_and_score(diabetes, tmp_path):
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


def test_package_logs_a_run_to_mlflow(cancer, tmp_path, mlflow_store):
    import mlflow

    s, _ = _cancer_session(cancer, "def features(df):\n    return df\n", {})
    res = s.package(tmp_path / "art")
    assert res.mlflow["tracking_uri"] == mlflow_store
    run_ = mlflow.get_run(res.mlflow["run_id"])
    assert run_.data.tags["nbprod.kind"] == "package"
    assert run_.data.tags["nbprod.digest"] == res.digest
    assert run_.data.params["train_rows"] == "400"
    files = {f.path for f in mlflow.MlflowClient().list_artifacts(res.mlflow["run_id"], "nbprod-artifact")}
    assert "nbprod-artifact/nbprod.json" in files
