"""The artifact as an MLflow model: pyfunc loading and predictions, and the packaging run."""

from __future__ import annotations

import json

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
    # also the MlflowException MLflow's scoring server answers with HTTP 400 and nbprod's line,
    # whatever the server writes into its message
    assert isinstance(err.value, mlflow.exceptions.MlflowException)
    assert err.value.get_http_status_code() == 400
    line = "Input is missing column 'worst_area' that the model was trained with."
    err.value.message = f"Failed to predict data '<the request>'. Error: {err.value.message}"
    assert json.loads(err.value.serialize_as_json()) == {
        "error_code": "INVALID_PARAMETER_VALUE", "message": line, "sqlstate": "KAM00",
        "error_class": "NBPROD_SCHEMAERROR"}


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
    with pytest.raises(NbprodUsageError, match="errors must be one of raise, reject, mark"):
        pyfunc_cancer.predict(bad, params={"errors": "skip"})


def test_pyfunc_marks_rejected_rows_on_request(cancer_art, pyfunc_cancer):
    """What a Spark UDF needs: one output row per input row, the rejected ones marked."""
    from nbprod.tracking.flavor import spark_result_type

    bad = cancer_art.batch.copy()
    bad.loc[2, "mean_area"] = float("inf")
    bad.loc[5, "worst_area"] = None
    art = nbprod.load(cancer_art.path)
    got = pyfunc_cancer.predict(bad, params={"errors": "mark"})
    pd.testing.assert_frame_equal(got, art.score(bad, errors="mark"))
    assert got.index.equals(bad.index)
    assert got["rejected"].dropna().to_dict() == {2: "non-finite: mean_area",
                                                  5: "missing: worst_area"}
    assert got.loc[[2, 5], ["prediction", "proba_0", "proba_1"]].isna().all().all()
    # MLflow's scoring server writes strict JSON: null, never NaN
    import io

    from mlflow.pyfunc.scoring_server import predictions_to_json

    body = io.StringIO()
    predictions_to_json(got.loc[[1, 2]], body)
    answer = json.loads(body.getvalue(), parse_constant=lambda c: pytest.fail(f"JSON has {c}"))
    assert answer["predictions"][1] == {"patient_id": bad.loc[2, "patient_id"], "prediction": None,
                                        "proba_0": None, "proba_1": None,
                                        "rejected": "non-finite: mean_area"}
    assert answer["predictions"][0]["rejected"] is None
    # integer classes: a nullable integer prediction; the others as errors="reject" scores them
    assert str(got["prediction"].dtype) == "Int64"
    reject = art.score(bad, errors="reject")
    accepted = got[got["rejected"].isna()].drop(columns="rejected")
    pd.testing.assert_frame_equal(accepted.astype(reject.dtypes), reject)
    repeated = bad.set_axis([7] * len(bad))  # index labels repeat: rows are placed by position
    marked = art.score(repeated, errors="mark")
    assert list(marked.index) == [7] * len(bad) and marked["rejected"].notna().sum() == 2
    pd.testing.assert_frame_equal(marked.reset_index(drop=True), got.reset_index(drop=True))
    assert spark_result_type(str(cancer_art.path)) == (
        "`patient_id` string, `prediction` bigint, `proba_0` double, `proba_1` double, "
        "`rejected` string")
    with pytest.raises(NbprodUsageError, match="no MLmodel file"):
        spark_result_type(str(cancer_art.path / "model.skops"))


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


def test_the_artifact_is_a_logged_model_found_and_loaded(cancer_art, tmp_path):
    m = cancer_art.manifest
    run = _packaging_run(cancer_art)
    exp_id = run.info.experiment_id
    found = mlflow.search_logged_models(experiment_ids=[exp_id], output_format="list",
                                        filter_string="name = 'cancer'")
    model_id = cancer_art.result.mlflow["model_id"]
    assert model_id in [lm.model_id for lm in found]
    logged = mlflow.MlflowClient().get_logged_model(model_id)
    assert logged.status == "READY" and logged.source_run_id == run.info.run_id
    assert logged.tags["nbprod.artifact_id"] == m["artifact_id"]
    assert logged.tags["nbprod.digest"] == cancer_art.result.digest
    # hyperparameters of the whole pipeline, steps by class name
    assert logged.params["steps"] == "standardscaler,logisticregression"
    assert logged.params["logisticregression"] == "LogisticRegression"
    assert logged.params["logisticregression__max_iter"] == "1000"
    assert run.data.params["model.logisticregression__max_iter"] == "1000"
    # models:/<model_id> loads through MLflow; the downloaded copy verified before it scored
    uri = f"models:/{model_id}"
    model = mlflow.pyfunc.load_model(uri, dst_path=str(tmp_path))
    pd.testing.assert_frame_equal(model.predict(cancer_art.batch),
                                  nbprod.load(cancer_art.path).score(cancer_art.batch))
    # and nbprod.load takes the same URI, pinned to the digest packaging recorded
    art = nbprod.load(uri)
    assert art.digest == cancer_art.result.digest and art.authentic == f"pinned by the registry ({uri})"


# -- MLflow's own command line: the environment it restores, its scoring server --------------
def _mlflow_cli_env(*, keep_pythonpath: bool) -> dict[str, str]:
    """The environment of a user's shell in nbprod's virtualenv: its bin (mlflow, uv) on PATH.
    Without ``keep_pythonpath`` no source tree leaks into the environment MLflow restores:
    nbprod comes from the wheel inside the artifact."""
    import os
    import sys
    from pathlib import Path

    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    if not keep_pythonpath:
        env.pop("PYTHONPATH", None)
    return env


@pytest.mark.slow
def test_mlflow_models_predict_restores_the_environment_with_uv(cancer_art, tmp_path):
    """`mlflow models predict --env-manager uv` builds the scoring environment from the package
    index and the wheel inside the artifact, and answers exactly what nbprod scores."""
    import subprocess
    import sys
    from pathlib import Path

    batch = cancer_art.batch.head(25)
    batch.to_csv(tmp_path / "in.csv", index=False)
    mlflow_cli = Path(sys.executable).parent / "mlflow"
    proc = subprocess.run(
        [str(mlflow_cli), "models", "predict", "-m", str(cancer_art.path), "-i",
         str(tmp_path / "in.csv"), "-t", "csv", "-o", str(tmp_path / "out.json"),
         "--env-manager", "uv"],
        env=_mlflow_cli_env(keep_pythonpath=False), capture_output=True, text=True, timeout=480)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "nbprod==" in proc.stderr  # installed from the artifact's wheel
    got = pd.DataFrame(json.loads((tmp_path / "out.json").read_text())["predictions"])
    expected = nbprod.load(cancer_art.path).score(pd.read_csv(tmp_path / "in.csv"))
    pd.testing.assert_frame_equal(got, expected.reset_index(drop=True), check_dtype=False)
    check = nbprod.verify(cancer_art.path)  # MLflow wrote nothing into the artifact
    assert check.ok and check.extra == []


@pytest.mark.slow
def test_mlflow_models_serve_answers_a_bad_request_with_400_naming_the_column(cancer_art):
    import socket
    import subprocess
    import sys
    import time
    import urllib.error
    import urllib.request
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m",
         str(cancer_art.path), "-h", "127.0.0.1", "-p", str(port), "--env-manager", "local"],
        env=_mlflow_cli_env(keep_pythonpath=True), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)

    def post(frame: pd.DataFrame) -> tuple[int, dict]:
        body = json.dumps({"dataframe_split": json.loads(
            frame.to_json(orient="split", index=False))}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, server.stderr.read()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2):
                    break
            except OSError:
                assert time.monotonic() < deadline, "mlflow models serve did not start"
                time.sleep(0.5)
        rows = cancer_art.batch.head(4)
        status, body = post(rows)
        assert status == 200
        pd.testing.assert_frame_equal(pd.DataFrame(body["predictions"]),
                                      nbprod.load(cancer_art.path).score(rows)
                                      .reset_index(drop=True), check_dtype=False)
        status, body = post(rows.drop(columns=["worst_area"]))
        assert status == 400
        assert body["message"] == ("Input is missing column 'worst_area' that the model was "
                                   "trained with.")
        assert body["error_code"] == "INVALID_PARAMETER_VALUE" and "stack_trace" not in body
    finally:
        server.terminate()
        server.wait(timeout=30)


_LOADED_DISTRIBUTIONS = r"""
import json, sys
from importlib.metadata import packages_distributions

by_nbprod = set()


class Spy:  # records the top-level modules that nbprod's own code imports first
    def find_spec(self, name, path=None, target=None):
        if "." not in name:
            f = sys._getframe(1)
            while f is not None and f.f_globals.get("__name__", "").startswith(
                    ("importlib", "_frozen_importlib")):
                f = f.f_back
            if f is not None and f.f_globals.get("__name__", "").split(".")[0] == "nbprod":
                by_nbprod.add(name)
        return None


sys.meta_path.insert(0, Spy())
import pandas as pd
import mlflow.pyfunc

model = mlflow.pyfunc.load_model(sys.argv[1])
model.predict(pd.read_csv(sys.argv[2]))
names = packages_distributions()
print(json.dumps(sorted({d for m in by_nbprod for d in names.get(m, [])})))
"""


def _closure(requirements: list[str]) -> set[str]:
    """The distributions pip installs for ``requirements`` (as installed here), normalised."""
    from importlib.metadata import PackageNotFoundError, requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    todo = [Requirement(r).name for r in requirements if not r.startswith("./")]
    seen: set[str] = set()
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = requires(name) or []
        except PackageNotFoundError:
            continue
        for r in map(Requirement, reqs):
            if r.marker is None or r.marker.evaluate({"extra": ""}):
                todo.append(r.name)
    return seen


def test_the_restored_environment_holds_everything_scoring_imports(cancer_art, tmp_path):
    """Every distribution that loading and scoring through MLflow imports is in the artifact's
    requirements (or pulled in by them): a restored environment (uv, virtualenv) would
    otherwise fail on a missing module. Checked here without building an environment."""
    import subprocess
    import sys

    from packaging.utils import canonicalize_name

    cancer_art.batch.head(5).to_csv(tmp_path / "in.csv", index=False)
    proc = subprocess.run([sys.executable, "-c", _LOADED_DISTRIBUTIONS, str(cancer_art.path),
                           str(tmp_path / "in.csv")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = {canonicalize_name(d) for d in json.loads(proc.stdout.splitlines()[-1])}
    reqs = (cancer_art.path / "requirements.txt").read_text().split()
    assert loaded  # the spy saw what nbprod imports (skops, numpy, ...)
    missing = loaded - _closure(reqs)
    assert not missing, f"scoring imports {sorted(missing)}, which requirements.txt lacks"
