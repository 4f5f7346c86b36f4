"""The ``nbprod`` command line: score, verify, inspect, exit codes and usage errors.

Most tests call ``cli.main([...])`` in-process; ``nbprod score`` still runs the artifact's
notebook in a real kernel through papermill. A few tests run the installed console script.
"""

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
from nbprod import cli

from .artifacts import BAD_INPUTS, copy_artifact, write_csv


def _console_script() -> list[str]:
    script = Path(sys.executable).with_name("nbprod")
    return [str(script)] if script.exists() else [sys.executable, "-m", "nbprod.cli"]


def _nbprod(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*_console_script(), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=os.environ.copy())


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got: {err!r}"
    assert lines[0].startswith("nbprod: error: ")
    return lines[0]


def _outputs_text(nb: dict) -> str:
    """All text a reader of the executed notebook sees in its outputs."""
    parts = []
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            parts.append("".join(out.get("text", "")))
            for mime in ("text/plain", "text/html"):
                parts.append("".join(out.get("data", {}).get(mime, "")))
    return "\n".join(parts)


# -- score ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_score_writes_predictions_summary_and_report(cancer_art, in_tmp, capsys):
    import mlflow

    inp = write_csv(cancer_art.batch, in_tmp / "batch.csv")
    write_csv(cancer_art.labels, in_tmp / "labels.csv")
    out = in_tmp / "out"
    out.mkdir()
    rc = cli.main(["score", str(cancer_art.path), "batch.csv", "-o", "out/preds.csv",
                   "--labels", "labels.csv", "--report", "out/report.ipynb",
                   "--summary", "out/summary.json"])
    stdout, stderr = capsys.readouterr()
    assert rc == cli.EXIT_OK, stderr
    assert "nbprod: scored batch.csv -> out/preds.csv (status " in stdout
    assert "nbprod: report out/report.ipynb" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["preds.csv", "preds.issues.csv",
                                                     "report.ipynb", "summary.json"]

    preds = pd.read_csv(out / "preds.csv")
    expected = nbprod.load(cancer_art.path).score(cancer_art.batch)
    assert list(preds.columns) == ["patient_id", "prediction", "proba_0", "proba_1"]
    assert preds["patient_id"].tolist() == cancer_art.batch["patient_id"].tolist()
    assert preds["prediction"].tolist() == expected["prediction"].tolist()
    np.testing.assert_allclose(preds["proba_1"], expected["proba_1"], rtol=1e-12)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] in ("ok", "warn")
    assert summary["rows"] == summary["rows_in"] == len(cancer_art.batch)
    assert (summary["rejected"], summary["issues_path"]) == (0, str(out / "preds.issues.csv"))
    issues = pd.read_csv(out / "preds.issues.csv")  # written on every run: schedulers rely on it
    assert list(issues.columns) == ["row", "patient_id", "column", "value", "rule", "action",
                                    "detail"]
    assert set(issues["action"]) <= {"flagged"}  # a fresh batch: nothing rejected
    assert issues["row"].nunique() == summary["flagged"]
    assert summary["input"] == str(inp) and summary["output"] == str(out / "preds.csv")
    assert summary["artifact"]["artifact_id"] == cancer_art.manifest["artifact_id"]
    checks = {c["name"]: c for c in summary["checks"]}
    assert checks["input:schema"]["status"] == "pass"
    assert {"status", "message", "kind", "value", "threshold"} <= set(checks["input:schema"])
    assert set(summary["drift"]["dataset"]) >= {"drifted", "weighted_share", "threshold"}
    assert set(summary["drift"]["columns"]) == set(cancer_art.manifest["input_columns"])
    assert all("drifted" in c for c in summary["drift"]["columns"].values())
    metrics = summary["performance"]["metrics"]
    assert summary["performance"]["labelled_rows"] == len(cancer_art.labels)
    assert {"accuracy", "roc_auc"} <= set(metrics)
    assert 0.8 < metrics["accuracy"]["value"] <= 1.0
    assert checks["performance:roc_auc"]["status"] == "pass"

    report = json.loads((out / "report.ipynb").read_text())
    text = _outputs_text(report)
    assert f"Verdict: {summary['status'].upper()}" in text
    injected = [c for c in report["cells"]
                if "injected-parameters" in c["metadata"].get("tags", [])]
    assert str(inp) in "".join(injected[0]["source"])

    # the run and its report are in MLflow, under the model's monitoring experiment
    run_id = summary["tracking"]["run_id"]
    run = mlflow.MlflowClient().get_run(run_id)
    assert run.data.tags["nbprod.kind"] == "score"
    assert run.data.tags["nbprod.status"] == summary["status"]
    assert run.data.tags["nbprod.artifact_id"] == cancer_art.manifest["artifact_id"]
    assert run.data.metrics["rows"] == len(cancer_art.batch)
    logged = {a.path for a in mlflow.MlflowClient().list_artifacts(run_id)}
    assert {"report.ipynb", "summary.json"} <= logged


@pytest.mark.slow
def test_console_script_scores_into_parquet(cancer_art, tmp_path):
    batch = cancer_art.batch.sample(frac=1.0, random_state=5)  # order must be kept, not sorted
    write_csv(batch, tmp_path / "batch.csv")
    proc = _nbprod("score", str(cancer_art.path), "batch.csv", "-o", "preds.parquet",
                   "--summary", "summary.json", "--no-mlflow", cwd=tmp_path)
    assert proc.returncode == cli.EXIT_OK, proc.stderr
    assert proc.stderr == ""
    preds = pd.read_parquet(tmp_path / "preds.parquet")
    assert list(preds.columns) == ["patient_id", "prediction", "proba_0", "proba_1"]
    assert preds["patient_id"].tolist() == batch["patient_id"].tolist()
    expected = cancer_art.expected(batch)
    assert preds["prediction"].tolist() == expected["prediction"].tolist()
    np.testing.assert_allclose(preds["proba_0"], expected["proba_0"], rtol=1e-12)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rows"] == len(batch) and summary["tracking"] is None
    assert summary["performance"] is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["batch.csv", "preds.issues.parquet",
                                                         "preds.parquet", "summary.json"]


@pytest.mark.slow
def test_a_monitoring_alert_exits_3_after_writing(cancer_art, in_tmp, capsys):
    drifted = cancer_art.batch.copy()
    numeric = cancer_art.manifest["input_columns"]
    drifted[numeric] = drifted[numeric] * 1.5
    write_csv(drifted, in_tmp / "drifted.csv")
    rc = cli.main(["score", str(cancer_art.path), "drifted.csv", "-o", "preds.csv",
                   "--summary", "summary.json", "--no-mlflow"])
    stdout, _ = capsys.readouterr()
    assert rc == cli.EXIT_ALERT
    assert "(status alert)" in stdout
    assert "FAIL  drift:dataset" in stdout
    assert len(pd.read_csv(in_tmp / "preds.csv")) == len(drifted)  # predictions still written
    summary = json.loads((in_tmp / "summary.json").read_text())
    assert summary["status"] == "alert"
    assert summary["drift"]["dataset"]["drifted"] is True


def _score_bad(packaged, in_tmp, case):
    inputs, out = in_tmp / "in", in_tmp / "out"
    inputs.mkdir()
    out.mkdir()
    inp = BAD_INPUTS[case].make(inputs, packaged.batch)
    rc = cli.main(["score", str(packaged.path), str(inp), "-o", str(out / "preds.csv"),
                   "--summary", str(out / "summary.json"), "--no-mlflow"])
    return rc, out


# Through the kernel: the input is only read inside the scoring notebook.
KERNEL_CASES = ["missing-column", "does-not-convert", "header-only", "garbage-parquet"]
# Refused by the CLI before papermill starts.
EARLY_CASES = [c for c, bad in BAD_INPUTS.items() if not bad.kernel]


@pytest.mark.slow
@pytest.mark.parametrize("case", KERNEL_CASES)
def test_score_refuses_bad_input_in_the_notebook(cancer_art, in_tmp, capfd, case):
    rc, out = _score_bad(cancer_art, in_tmp, case)
    stdout, stderr = capfd.readouterr()  # file descriptors: the kernel's stderr counts too
    assert rc == cli.EXIT_ERROR
    line = _one_line(stderr)
    assert BAD_INPUTS[case].needle in line
    assert f"({BAD_INPUTS[case].error.__name__})" in line
    assert stdout == ""
    assert list(out.iterdir()) == []  # no predictions, no summary, no temporary file


@pytest.mark.parametrize("case", EARLY_CASES)
def test_score_refuses_bad_input_before_running(cancer_art, in_tmp, capsys, case):
    rc, out = _score_bad(cancer_art, in_tmp, case)
    assert rc == cli.EXIT_ERROR
    assert BAD_INPUTS[case].needle in _one_line(capsys.readouterr().err)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["{art}", "in.csv", "-o", "preds.xlsx"], "--output 'preds.xlsx'"),
        (["{art}", "in.csv", "-o", "preds.csv", "--labels", "nolabels.csv"],
         "--labels 'nolabels.csv' does not exist"),
        (["{tmp}", "in.csv", "-o", "preds.csv"], "is not an nbprod artifact"),
        (["{tmp}/missing", "in.csv", "-o", "preds.csv"], "does not exist"),
    ],
    ids=["output-extension", "labels-missing", "not-an-artifact", "no-artifact"],
)  # refused output paths (exit 2) are in test_usage.py
def test_score_refuses_bad_arguments_before_running(cancer_art, in_tmp, capsys, args, needle):
    write_csv(cancer_art.batch.head(3), in_tmp / "in.csv")
    argv = [a.format(art=cancer_art.path, tmp=in_tmp) for a in args]
    assert cli.main(["score", *argv, "--no-mlflow"]) == cli.EXIT_ERROR
    assert needle in _one_line(capsys.readouterr().err)
    assert sorted(p.name for p in in_tmp.iterdir()) == ["in.csv"]


def test_score_a_tampered_artifact_is_refused(cancer_art, in_tmp, capsys):
    root = copy_artifact(cancer_art, in_tmp / "art")
    with open(root / "features.py", "a") as fh:
        fh.write("\n# edited in production\n")
    write_csv(cancer_art.batch, in_tmp / "in.csv")
    assert cli.main(["score", str(root), "in.csv", "-o", "preds.csv", "--no-mlflow"]) == 1
    line = _one_line(capsys.readouterr().err)  # refused before any kernel starts
    assert "features.py: size" in line and "manifest says" in line
    assert not (in_tmp / "preds.csv").exists()


# -- usage errors ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        ([], "required: COMMAND"),
        (["scroe", "art"], "unknown 'scroe'; did you mean 'score'?"),
        (["chekc", "art"], "invalid choice: 'chekc' (choose from 'score', "),
        (["score", "art", "in.csv"], "required: -o/--output"),
        (["score", "art"], "required: INPUT"),
        (["score", "art", "in.csv", "-o", "p.csv", "--drift-runs", "many"],
         "--drift-runs: must be a whole number"),
        (["score", "art", "in.csv", "-o", "p.csv", "--colour"], "unknown flag '--colour' (flags: "),
        (["score", "art", "in.csv", "-o", "p.csv", "--summery", "s.json"],
         ("usage: nbprod score", "nbprod score: error: unknown flag '--summery'; did you mean "
          "'--summary'?")),
        (["verify"], "required: PATH"),
        (["inspect", "art", "--yaml"], ("usage: nbprod inspect", "unknown flag '--yaml'")),
        (["inspect", "art", "extra"], ("usage: nbprod inspect", "unexpected argument(s): extra")),
    ],
    ids=["no-command", "misspelt-command", "unknown-command", "no-output", "no-input", "bad-int",
         "unknown-flag", "misspelt-flag", "verify-no-path", "inspect-unknown-flag",
         "inspect-extra"],
)
def test_usage_errors_exit_2(in_tmp, capsys, argv, needle):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    for text in needle if isinstance(needle, tuple) else (needle,):
        assert text in err
    assert err.startswith("usage: nbprod")


def test_usage_error_of_a_subcommand_exits_2(in_tmp, capsys):
    assert cli.main(["report", "run.ipynb"]) == cli.EXIT_USAGE
    assert "--html" in _one_line(capsys.readouterr().err)


@pytest.mark.slow
def test_console_script_usage_error_and_version(tmp_path):
    proc = _nbprod("score", "art", "in.csv", cwd=tmp_path)
    assert proc.returncode == cli.EXIT_USAGE
    assert "the following arguments are required: -o/--output" in proc.stderr
    proc = _nbprod("--version", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout.strip() == f"nbprod {nbprod.__version__}"


# -- verify and inspect ---------------------------------------------------------------------
def test_verify_ok(cancer_art, capsys):
    assert cli.main(["verify", str(cancer_art.path)]) == cli.EXIT_OK
    out, err = capsys.readouterr()
    n = len(cancer_art.manifest["files"])
    assert out.strip() == f"OK {cancer_art.path}: {n} files match their SHA-256"
    assert err == ""


def test_inspect_describes_the_artifact(cancer_art, capsys):
    assert cli.main(["inspect", str(cancer_art.path)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    m = cancer_art.manifest
    assert out.startswith("cancer  (classification, nbprod artifact format 1)")
    assert "model       sklearn.pipeline.Pipeline (skops;" in out
    assert "features    cancer_features() in features.py" in out
    assert "target      target   id patient_id" in out
    assert "classes     0, 1" in out
    assert "inputs      30: mean_radius, mean_texture" in out
    for role in ("train", "valid"):
        snap = m["snapshots"][role]
        assert f"{snap['rows']:,} rows, fingerprint {snap['fingerprint'][:12]}" in out
    assert "PASS  metric:accuracy" in out
    assert f"scikit-learn {m['environment']['packages']['scikit-learn']}" in out
    assert f"files       {len(m['files'])}" in out


def test_inspect_regression_without_id(diabetes_art, capsys):
    assert cli.main(["inspect", str(diabetes_art.path)]) == cli.EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("diabetes  (regression, nbprod artifact format 1)")
    assert "classes" not in out and "   id " not in out
    # the only check: packaging found that the Ridge takes no missing value
    assert "  checks\n    WARN  row-rules:missing: The model cannot take a missing value" in out


def test_inspect_json_is_the_manifest(cancer_art, capsys):
    assert cli.main(["inspect", str(cancer_art.path), "--json"]) == cli.EXIT_OK
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((cancer_art.path / "nbprod.json").read_text())


def test_verify_and_inspect_of_a_plain_directory(tmp_path, capsys):
    assert cli.main(["inspect", str(tmp_path)]) == cli.EXIT_ERROR
    assert "is not an nbprod artifact: it has no nbprod.json" in _one_line(capsys.readouterr().err)
    assert cli.main(["verify", str(tmp_path)]) == cli.EXIT_ERROR
    assert "FAIL nbprod.json" in capsys.readouterr().err
