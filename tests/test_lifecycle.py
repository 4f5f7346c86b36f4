"""The whole loop on real components: train v1 from the notebook, detect decay, retrain v2 from
the stored training notebook, compare, promote through the MLflow registry, serve the champion.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbprod

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nbprod.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


def _cli_on_a_terminal(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """:func:`_cli` with standard error on a pseudo-terminal, as at a person's terminal."""
    from tests.terminal import pseudo_terminal

    with pseudo_terminal() as (terminal, got):
        proc = subprocess.Popen([sys.executable, "-m", "nbprod.cli", *args],
                                stdout=subprocess.PIPE, stderr=terminal, text=True, cwd=cwd)
        out, _ = proc.communicate()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out,
                                       got.decode("utf-8", "replace"))


def _cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    df = load_breast_cancer(as_frame=True).frame
    df.columns = [c.replace(" ", "_") for c in df.columns]
    df.insert(0, "patient_id", [f"P{i:04d}" for i in range(len(df))])
    return df


def _new_world(seed: int) -> pd.DataFrame:
    """The same patients measured again, and a changed concept: the label now follows a
    combination of texture, smoothness and symmetry (learnable, but no single column leaks)."""
    rng = np.random.default_rng(seed)
    df = _cancer()
    df["patient_id"] = [f"N{seed}-{i:04d}" for i in range(len(df))]
    for col in df.columns[1:-1]:
        df[col] = df[col] * rng.normal(1.0, 0.03, len(df))
    df["worst_area"] = df["worst_area"] * 1.4  # the instruments changed too: data drift
    z = sum((df[c] - df[c].mean()) / df[c].std() for c in ("mean_texture", "mean_smoothness", "mean_symmetry"))
    df["target"] = (z + rng.normal(0, 0.6, len(df)) > 0).astype(int)
    return df


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lifecycle")
    notebook = tmp / "quickstart.ipynb"
    shutil.copy(ROOT / "notebooks" / "quickstart.ipynb", notebook)
    return tmp, notebook


def test_the_loop(world, monkeypatch, mlflow_store):
    import mlflow
    import papermill as pm

    tmp, notebook = world
    monkeypatch.chdir(tmp)
    monkeypatch.delenv("NBPROD_NOTEBOOK", raising=False)

    # 1. train v1 from the notebook and register it: the first version is the champion. Under
    # papermill the kernel does not know the notebook's path: the training notebook is rebuilt
    # from the cells it executed, with its parameters cell
    pm.execute_notebook(str(notebook), str(tmp / "v1.ipynb"), parameters={"artifact_path": "v1"},
                        progress_bar=False)
    training = nbprod.load(tmp / "v1").manifest["training"]
    assert training["source"].startswith("rebuilt from the ")
    assert training["parameters"][:2] == ["artifact_path", "data_path"]
    import nbformat

    rebuilt = nbformat.read(tmp / "v1" / "training.ipynb", as_version=4).cells
    original = [c for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code"]
    # the cells executed up to packaging, in order, without papermill's injected cell
    assert [c.source.rstrip() for c in rebuilt] == [c.source.rstrip()
                                                    for c in original[:len(rebuilt)]]
    assert rebuilt[-1].source.startswith("%nbprod package")
    assert rebuilt[0].metadata["tags"] == ["parameters"]
    reg = _cli("register", "v1", cwd=tmp)
    assert reg.returncode == 0, reg.stderr
    assert "champion" in reg.stdout
    client = mlflow.MlflowClient()
    v1_version = client.get_model_version_by_alias("cancer", "champion").version

    # 2. a drifted batch whose labels follow a new concept: alert, retraining recommended
    batch = _new_world(1)
    batch.drop(columns=["target"]).to_csv(tmp / "batch.csv", index=False)
    batch[["patient_id", "target"]].to_csv(tmp / "batch.labels.csv", index=False)
    score = _cli("score", "v1", "batch.csv", "-o", "pred.csv", "--labels", "batch.labels.csv",
                 "--summary", "s.json", cwd=tmp)
    assert score.returncode == 3, score.stderr
    summary = json.loads((tmp / "s.json").read_text())
    assert summary["status"] == "alert" and summary["retrain"]["recommended"]
    assert summary["retrain"]["command"].startswith("nbprod retrain ")
    assert "--param data_path=" in summary["retrain"]["command"]

    # 3. retrain from the stored training notebook on the new data -> v2, registered challenger
    _new_world(2).to_csv(tmp / "new_train.csv", index=False)
    retrain = _cli("retrain", "v1", "--param", "data_path=new_train.csv", "-o", "v2", "--register",
                   cwd=tmp)
    assert retrain.returncode == 0, retrain.stderr
    assert (tmp / "v2" / "nbprod.json").is_file() and "challenger" in retrain.stdout
    assert "Executing" not in retrain.stderr  # no progress bar in a pipe or a log
    v2 = nbprod.load(tmp / "v2")
    assert v2.snapshot("train")["fingerprint"] != nbprod.load(tmp / "v1").snapshot("train")["fingerprint"]
    # v2 says where it came from: the notebook stored in v1, which still exists
    assert v2.manifest["provenance"]["notebook"] == str((tmp / "v1" / "training.ipynb").absolute())

    # 4. compare on the same fresh data: v2 wins and the verdict lands on its registry version
    holdout = _new_world(3)
    holdout.drop(columns=["target"]).to_csv(tmp / "holdout.csv", index=False)
    holdout[["patient_id", "target"]].to_csv(tmp / "holdout.labels.csv", index=False)
    cmp = _cli("compare", "models:/cancer@champion", "v2", "holdout.csv", "--labels",
               "holdout.labels.csv", "--margin", "0.05", "--report", "cmp.ipynb", cwd=tmp)
    assert cmp.returncode == 0, cmp.stderr
    assert "verdict WIN" in cmp.stdout and (tmp / "cmp.ipynb").is_file()
    v2_version = client.get_model_version_by_alias("cancer", "challenger").version
    tags = client.get_model_version("cancer", v2_version).tags
    assert tags["nbprod.compare.verdict"] == "win"
    assert tags["nbprod.compare.champion_version"] == str(v1_version)

    # 5. promote: the champion alias moves, and the promotion is recorded
    promote = _cli("promote", "v2", "--by", "ana", "--reason", "new concept", cwd=tmp)
    assert promote.returncode == 0, promote.stderr
    assert client.get_model_version_by_alias("cancer", "champion").version == v2_version
    assert client.get_model_version_by_alias("cancer", "previous").version == v1_version
    from nbprod.tracking.registry import promotions

    history = promotions("cancer")
    assert history[-1]["by"] == "ana" and history[-1]["reason"] == "new concept"
    champion = nbprod.load("models:/cancer@champion")
    rows = holdout.drop(columns=["target"]).head(25)
    pd.testing.assert_frame_equal(champion.score(rows), v2.score(rows))

    # 6. the served champion answers with v2's predictions, and so does one record online
    port = _free_port()
    import os

    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "models", "serve", "-m", "models:/cancer@champion",
         "--env-manager", "local", "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        answer = _invoke(port, rows, server)
    finally:
        server.terminate()
        server.wait(timeout=30)
    expected = v2.score(rows)
    served = pd.DataFrame(answer["predictions"])
    assert served["prediction"].tolist() == expected["prediction"].tolist()
    np.testing.assert_allclose(served["proba_1"], expected["proba_1"], rtol=1e-9)
    one = v2.score_record(rows.iloc[0].to_dict())
    assert one["prediction"] == expected["prediction"].iloc[0]
    assert one["proba_1"] == pytest.approx(expected["proba_1"].iloc[0], rel=1e-12)


@pytest.fixture
def after_the_loop(world, monkeypatch, mlflow_store) -> Path:
    """The loop's working directory, with v1 packaged by test_the_loop."""
    tmp, notebook = world
    monkeypatch.chdir(tmp)
    monkeypatch.delenv("NBPROD_NOTEBOOK", raising=False)
    if not (tmp / "v1").exists():
        pytest.skip("runs after test_the_loop")
    return tmp


def test_failing_gate_and_failed_challenger(after_the_loop):
    tmp = after_the_loop

    # a retraining whose data fails a check produces no artifact, and the notebook says why
    leaky = _new_world(4)
    leaky["mean_texture"] = leaky["target"] * 100 + np.random.default_rng(0).normal(0, 1, len(leaky))
    leaky.to_csv(tmp / "leaky.csv", index=False)
    r = _cli("retrain", "v1", "--param", "data_path=leaky.csv", "-o", "v3", cwd=tmp)
    assert r.returncode == 1
    assert "No new artifact was written" in r.stderr and not (tmp / "v3").exists()
    assert "UsageError: Refusing to package: " in r.stderr and "data:leakage" in r.stderr
    assert "IPKernelApp" not in r.stderr  # the kernel's start-up noise is not the user's error
    executed = (tmp / "v3.retrain.ipynb").read_text()
    assert "data:leakage" in executed and "Refusing to package" in executed

    # a challenger packaged past a failed check cannot be promoted, even after winning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = _new_world(5)
    s = nbprod.Session("cancer")
    s.snapshot(data.iloc[:400], role="train", target="target", id="patient_id")
    s.snapshot(data.iloc[400:], role="valid", target="target", id="patient_id")

    def features(df):
        return df

    s.features(features)
    s.model(make_pipeline(StandardScaler(), LogisticRegression()).fit(data.iloc[:400, 1:-1],
                                                                       data["target"].iloc[:400]))
    s.check("metric", metric="roc_auc", min=0.999)  # fails
    s.package(tmp / "v4", force=True)
    assert _cli("register", "v4", cwd=tmp).returncode == 0
    holdout = _new_world(6)
    holdout.drop(columns=["target"]).to_csv(tmp / "h6.csv", index=False)
    holdout[["patient_id", "target"]].to_csv(tmp / "h6.labels.csv", index=False)
    _cli("compare", "models:/cancer@champion", "v4", "h6.csv", "--labels", "h6.labels.csv",
         cwd=tmp)
    refused = _cli("promote", "v4", "--by", "bob", cwd=tmp)
    assert refused.returncode == 1
    assert "failed checks at packaging" in refused.stderr
    import mlflow

    champion = mlflow.MlflowClient().get_model_version_by_alias("cancer", "champion")
    assert champion.tags["nbprod.artifact_id"] != nbprod.load(tmp / "v4").manifest["artifact_id"]


def test_reviewers_feedback_feeds_retraining(after_the_loop):
    """Minders relabel rows in the review queue; `nbprod retrain --feedback` trains on them."""
    from nbprod.jobs import run as nbrun

    tmp = after_the_loop
    data = _new_world(7)
    data.to_csv(tmp / "reviewed.csv", index=False)
    data.drop(columns=["target"]).to_csv(tmp / "reviewed.inputs.csv", index=False)
    data[["patient_id", "target"]].to_csv(tmp / "reviewed.labels.csv", index=False)
    run = nbrun.execute(input_path="reviewed.inputs.csv", output_path=None,
                             labels_path="reviewed.labels.csv", artifact_path=str(tmp / "v1"),
                             log_to_mlflow=False)
    queue = nbprod.review(run, feedback=tmp / "fb.parquet", reviewer="ana")
    truth = data.set_index("patient_id")["target"]
    ids = list(queue.items["id"].iloc[:4])
    for i in ids:  # the minder says the recorded label was wrong
        queue.relabel(i, 1 - int(truth[i]), note="chart re-read")

    r = _cli_on_a_terminal("retrain", "v1", "--param", "data_path=reviewed.csv", "--feedback",
                           "fb.parquet", "-o", "v5", cwd=tmp)
    assert r.returncode == 0, r.stderr
    assert "Executing" in r.stderr and "cell" in r.stderr  # the notebook's cells, on a terminal
    v5 = nbprod.load(tmp / "v5")
    trained = pd.concat([v5.snapshot_sample("train"), v5.snapshot_sample("valid")])
    assert len(trained) == len(data)  # every row is in a sample at this size
    got = trained.set_index("patient_id")["target"]
    assert [int(got[i]) for i in ids] == [1 - int(truth[i]) for i in ids]  # the minders' labels
    others = got.drop(index=ids)
    assert (others == truth.loc[others.index]).all()  # and nothing else changed


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _invoke(port: int, rows: pd.DataFrame, server: subprocess.Popen) -> dict:
    split = rows.to_dict(orient="split", index=False)  # json.dumps keeps floats exact
    body = json.dumps({"dataframe_split": split}).encode()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError("mlflow models serve exited:\n" + (server.stdout.read() if server.stdout else ""))
        try:
            req = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as resp:
                return json.loads(resp.read())
        except OSError:
            time.sleep(0.5)
    raise AssertionError("mlflow models serve did not answer within 120 s")
