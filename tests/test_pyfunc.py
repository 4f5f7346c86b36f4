"""The artifact as an MLflow model: pyfunc loading and predictions, and the packaging run."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest

import nbprod
from nbprod.exceptions import IntegrityError, NbprodUsageError, SchemaError

from .artifacts import copy_artifact


@pytest.fixture(scope="module")
def pyfunc_cancer(cancer_art):
    return mlflow.pyfunc.load_model(str(cancer_art.path))


def test_pyfunc_predict_equals_score_for_classification(cancer_art, pyfunc_cancer):
    batch = cancer_art.batch
    got = pyfunc_cancer.predict(batch)
    pd.testing.assert_frame_equal(got, nbprod.load(cancer_art.path).score(batch))
    assert list(got.columns) == ["patient_id", "prediction", "proba_0", "proba_1"]


def test_pyfunc_predict_equals_score_for_regression(diabetes_art):
    model = mlflow.pyfunc.load_model(str(diabetes_art.path))
    got = model.predict(diabetes_art.batch)
    pd.testing.assert_frame_equal(got, nbprod.load(diabetes_art.path).score(diabetes_art.batch))
    assert list(got.columns) == ["prediction"]


def test_pyfunc_accepts_column_lists_like_a_serving_payload(cancer_art, pyfunc_cancer):
    rows = cancer_art.batch.head(4)
    got = pyfunc_cancer.predict(rows.to_dict(orient="list"))
    pd.testing.assert_frame_equal(got, nbprod.load(cancer_art.path).score(rows))


def test_pyfunc_metadata_points_at_the_nbprod_loader(pyfunc_cancer):
    flavor = pyfunc_cancer.metadata.flavors["python_function"]
    assert flavor["loader_module"] == "nbprod"
    assert flavor["env"]["virtualenv"] == "python_env.yaml"


def test_pyfunc_refuses_bad_input_with_the_column_named(cancer_art, pyfunc_cancer):
    with pytest.raises(SchemaError) as err:
        pyfunc_cancer.predict(cancer_art.batch.drop(columns=["worst_area"]))
    assert err.value.column == "worst_area"


def test_pyfunc_raises_on_a_bad_row_unless_asked_to_reject(cancer_art, pyfunc_cancer):
    from nbprod.exceptions import RowError

    bad = cancer_art.batch.copy()
    bad.loc[2, "mean_area"] = float("inf")
    with pytest.raises(RowError) as err:  # a REST client needs one output row per input row
        pyfunc_cancer.predict(bad)
    assert (err.value.row, err.value.column, err.value.rule) == (2, "mean_area", "non-finite")
    got = pyfunc_cancer.predict(bad, params={"errors": "reject"})
    assert 2 not in got.index and len(got) == len(bad) - 1
    pd.testing.assert_frame_equal(got, nbprod.load(cancer_art.path).score(bad, errors="reject"))
    with pytest.raises(NbprodUsageError, match="errors must be one of raise, reject"):
        pyfunc_cancer.predict(bad, params={"errors": "skip"})


def test_pyfunc_refuses_a_tampered_artifact(cancer_art, tmp_path):
    root = copy_artifact(cancer_art, tmp_path / "art")
    data = bytearray((root / "model.skops").read_bytes())
    data[100] ^= 0xFF
    (root / "model.skops").write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="model.skops"):
        mlflow.pyfunc.load_model(str(root))


def _packaging_run(cancer_art):
    client = mlflow.MlflowClient()
    exp = client.get_experiment_by_name("cancer")
    assert exp is not None
    runs = client.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.`nbprod.artifact_id` = '{cancer_art.manifest['artifact_id']}'",
    )
    assert len(runs) == 1
    return runs[0]


def test_the_packaging_run_is_in_the_tracking_store(cancer_art):
    run = _packaging_run(cancer_art)
    m = cancer_art.manifest
    assert run.info.run_id == cancer_art.result.mlflow["run_id"]
    assert run.info.status == "FINISHED"
    assert cancer_art.result.mlflow["tracking_uri"] == mlflow.get_tracking_uri()
    tags = run.data.tags
    assert tags["nbprod.kind"] == "package"
    assert tags["nbprod.name"] == "cancer"
    assert tags["nbprod.digest"] == cancer_art.result.digest == nbprod.load(cancer_art.path).digest
    assert tags["nbprod.task"] == "classification"
    assert tags["nbprod.format_version"] == "1"
    assert tags["nbprod.packaged_at"] == str(cancer_art.path)
    params = run.data.params
    assert params["train_rows"] == "300" and params["valid_rows"] == "150"
    assert params["train_fingerprint"] == m["snapshots"]["train"]["fingerprint"][:16]
    assert params["model_class"] == "sklearn.pipeline.Pipeline"
    assert params["feature_function"] == "cancer_features"
    accuracy = next(c for c in m["checks"] if c["name"] == "metric:accuracy")
    assert run.data.metrics["metric.accuracy"] == pytest.approx(accuracy["value"])


def test_the_logged_artifact_loads_from_the_run(cancer_art, tmp_path):
    run = _packaging_run(cancer_art)
    logged = {f.path for f in mlflow.MlflowClient().list_artifacts(run.info.run_id,
                                                                    "nbprod-artifact")}
    assert {"nbprod-artifact/nbprod.json", "nbprod-artifact/model.skops",
            "nbprod-artifact/MLmodel", "nbprod-artifact/score.ipynb"} <= logged
    uri = f"runs:/{run.info.run_id}/nbprod-artifact"
    model = mlflow.pyfunc.load_model(uri, dst_path=str(tmp_path))
    # the copy MLflow downloaded verified against the manifest before it scored
    pd.testing.assert_frame_equal(model.predict(cancer_art.batch),
                                  nbprod.load(cancer_art.path).score(cancer_art.batch))
