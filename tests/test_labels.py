"""Labels never pass on nonsense: joins by text, unseen classes, single class, one row, non-finite
targets, few or no matches, and a summary that strict JSON parsers read."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbprod
from nbprod.exceptions import InputError
from nbprod.jobs import run as nbrun


def _data(n: int, seed: int, start: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(0, 1, n), rng.normal(0, 1, n)
    y = ((x1 - x2 + rng.logistic(size=n) * 0.5) > 0).astype(int)
    return pd.DataFrame({"order_id": np.arange(start, start + n), "x1": x1, "x2": x2, "y": y})


def _features(df):
    return df.assign(x12=df["x1"] * df["x2"])


@pytest.fixture(scope="module")
def art(tmp_path_factory) -> Path:
    """A binary classifier with integer ids; its reference holds ROC AUC and accuracy."""
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("labels") / "art"
    train, valid = _data(400, 1), _data(200, 2, start=10_000)
    s = nbprod.Session("labels")
    s.snapshot(train, role="train", target="y", id="order_id")
    s.snapshot(valid, role="valid", target="y", id="order_id")
    s.features(_features)
    s.model(LogisticRegression().fit(_features(train[["x1", "x2"]]), train["y"]))
    s.check("metric", metric="accuracy", min=0.6)
    s.package(root, log_to_mlflow=False)
    return root


BATCH = _data(300, 3, start=50_000)


def _strict(text: str) -> dict:
    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def _score(art: Path, tmp: Path, labels: pd.DataFrame, fmt: str = "parquet",
           batch: pd.DataFrame = BATCH) -> tuple[nbrun.ScoringRun, dict]:
    inputs, lab = tmp / "in.csv", tmp / f"labels.{fmt}"
    batch.drop(columns=["y"]).to_csv(inputs, index=False)
    if fmt == "csv":
        labels.to_csv(lab, index=False)
    else:
        labels.to_parquet(lab, index=False)
    run = nbrun.execute(input_path=str(inputs), output_path=str(tmp / "out.csv"),
                             labels_path=str(lab), artifact_path=str(art),
                             summary_path=str(tmp / "s.json"), log_to_mlflow=False)
    return run, _strict((tmp / "s.json").read_text())


def _checks(summary: dict) -> dict[str, dict]:
    return {c["name"]: c for c in summary["checks"]}


def test_clean_labels_pass_and_report_the_join(art, tmp_path):
    run, s = _score(art, tmp_path, BATCH[["order_id", "y"]])
    c = _checks(s)
    assert c["labels"]["status"] == "pass"
    assert c["labels"]["message"].startswith("300 of 300 scored rows labelled; 300 of 300 label "
                                             "rows matched a scored row (by id 'order_id')")
    assert c["performance:roc_auc"]["status"] == "pass" and c["performance:accuracy"]["status"] == "pass"
    assert s["performance"]["labelled_rows"] == 300 and s["status"] == "ok"


def test_text_ids_join_integer_ids_when_they_agree_as_text(art, tmp_path):
    labels = BATCH[["order_id", "y"]].astype({"order_id": "object"})
    text = [str(i) for i in BATCH["order_id"]]
    text[0] = f"{BATCH['order_id'][0]}.0"  # an integer written as a float joins
    text[1] = f"000{BATCH['order_id'][1]}"  # leading zeros make another id
    labels["order_id"] = pd.array(text, dtype="str")
    run, s = _score(art, tmp_path, labels)
    assert s["performance"]["labelled_rows"] == 299
    assert "compared as text (the labels' ids are texts, the batch's numbers)" in s["performance"]["join"]
    assert _checks(s)["labels"]["status"] == "pass"
    # float ids (a column with a gap reads as float) join their integers too
    floats = BATCH[["order_id", "y"]].astype({"order_id": "float64"})
    run, s = _score(art, tmp_path, floats)
    assert s["performance"]["labelled_rows"] == 300


def test_no_matching_id_warns_with_the_counts(art, tmp_path):
    labels = BATCH[["order_id", "y"]].assign(order_id=lambda d: d["order_id"] + 1_000_000)
    run, s = _score(art, tmp_path, labels)
    c = _checks(s)["labels"]
    assert c["status"] == "warn" and s["status"] == "warn"
    assert "0 of 300 scored rows labelled; 0 of 300 label rows matched" in c["message"]
    assert "no label matched a scored row" in c["message"]
    assert s["performance"]["labelled_rows"] == 0
    assert not any(x["status"] == "pass" for x in s["checks"] if x["kind"] == "performance")
    assert s["performance"]["metrics"]["roc_auc"]["value"] is None


def test_few_matching_ids_warn(art, tmp_path):
    labels = BATCH[["order_id", "y"]].copy()
    labels.loc[40:, "order_id"] += 1_000_000  # 40 of 300 label rows belong to this batch
    run, s = _score(art, tmp_path, labels, fmt="csv")
    c = _checks(s)["labels"]
    assert c["status"] == "warn"
    assert "40 of 300 scored rows labelled; 40 of 300 label rows matched" in c["message"]
    assert "only 13% of the label rows matched" in c["message"]
    assert c["details"]["matched_label_rows"] == 40


def test_unseen_class_fails_and_names_it(art, tmp_path):
    labels = BATCH[["order_id", "y"]].astype({"y": "object"})
    labels.loc[:4, "y"] = "maybe"
    labels.loc[5, "y"] = 2
    run, s = _score(art, tmp_path, labels, fmt="csv")
    c = _checks(s)["labels"]
    assert c["status"] == "fail" and s["status"] == "alert"
    assert ("the labels contradict the model: 6 hold values that are not classes of the model "
            "(its classes: 0, 1): 'maybe' (5 rows), '2' (1 row)") in c["message"]
    assert s["performance"]["labelled_rows"] == 294  # the others are measured
    assert not s["retrain"]["recommended"]  # bad labels are no reason to retrain


def test_single_class_never_passes_a_metric_that_needs_two(art, tmp_path):
    ones = BATCH[BATCH["y"] == 1]
    run, s = _score(art, tmp_path, ones[["order_id", "y"]])
    c = _checks(s)
    assert c["performance:roc_auc"]["status"] == "warn"
    assert "the labelled rows all hold class 1; ROC AUC needs at least two classes" in c["performance:roc_auc"]["message"]
    assert s["performance"]["metrics"]["roc_auc"]["value"] is None
    assert c["performance:accuracy"]["status"] in ("pass", "fail")  # defined on one class


def test_one_labelled_row_is_too_few_to_judge(art, tmp_path):
    run, s = _score(art, tmp_path, BATCH[["order_id", "y"]].iloc[:1])
    c = _checks(s)
    assert c["labels"]["status"] == "warn" and "1 labelled row is too few" in c["labels"]["message"]
    assert c["performance:accuracy"]["status"] == "warn"
    assert "too few to judge (at least 10)" in c["performance:accuracy"]["message"]
    assert c["performance:roc_auc"]["status"] == "warn"
    assert all(x["status"] != "pass" for x in s["checks"] if x["kind"] in ("performance", "labels"))


def test_duplicated_label_ids_are_refused(art, tmp_path):
    labels = pd.concat([BATCH[["order_id", "y"]], BATCH[["order_id", "y"]].iloc[[7]]])
    with pytest.raises(InputError, match=r"repeats id 50007 \(rows 7 and 300\); ids must be unique"):
        _score(art, tmp_path, labels)


def test_regression_labels_inf_and_nan(diabetes_art, tmp_path):
    labels = diabetes_art.labels.copy()
    labels.loc[0, "target"] = np.inf
    labels.loc[1, "target"] = -np.inf
    labels.loc[2:4, "target"] = np.nan
    inputs = tmp_path / "in.csv"
    diabetes_art.batch.to_csv(inputs, index=False)
    labels.to_parquet(tmp_path / "labels.parquet")
    run = nbrun.execute(input_path=str(inputs), output_path=str(tmp_path / "o.csv"),
                             labels_path=str(tmp_path / "labels.parquet"),
                             artifact_path=str(diabetes_art.path),
                             summary_path=str(tmp_path / "s.json"), log_to_mlflow=False)
    s = _strict((tmp_path / "s.json").read_text())
    c = _checks(s)["labels"]
    assert c["status"] == "fail" and s["status"] == "alert"
    assert "2 hold values that are not finite numbers (text, inf or -inf): inf (1 row), -inf (1 row)" in c["message"]
    assert "3 label rows have an empty target (not used)" in c["message"]
    assert s["performance"]["labelled_rows"] == len(labels) - 5
    assert run.performance["metrics"]["r2"]["value"] is not None


def test_an_undefined_metric_is_a_warning_never_nan(diabetes_art, tmp_path):
    one = diabetes_art.labels.iloc[:1]  # R² of a single row is undefined
    inputs = tmp_path / "in.csv"
    diabetes_art.batch.iloc[:1].to_csv(inputs, index=False)
    one.to_csv(tmp_path / "labels.csv", index=False)
    nbrun.execute(input_path=str(inputs), output_path=str(tmp_path / "o.csv"),
                       labels_path=str(tmp_path / "labels.csv"), artifact_path=str(diabetes_art.path),
                       summary_path=str(tmp_path / "s.json"), log_to_mlflow=False)
    text = (tmp_path / "s.json").read_text()
    s = _strict(text)
    r2 = _checks(s)["performance:r2"]
    assert r2["status"] == "warn" and "R² is undefined on these 1 labelled rows" in r2["message"]
    assert "NaN" not in text and "Infinity" not in text


def test_every_json_file_of_an_artifact_is_strict(art):
    files = list(art.rglob("*.json"))
    assert {p.name for p in files} >= {"nbprod.json", "reference.json", "train.json", "valid.json"}
    for p in files:
        _strict(p.read_text())


def test_write_json_writes_null_for_non_finite_numbers(tmp_path):
    from decimal import Decimal

    from nbprod.core.files import dumps

    nbrun.write_json({"a": float("nan"), "b": [np.float32("inf"), 1.5], "c": np.int64(3)},
                          tmp_path / "x.json")
    assert _strict((tmp_path / "x.json").read_text()) == {"a": None, "b": [None, 1.5], "c": 3}
    with pytest.raises(ValueError, match="not JSON compliant"):  # one that slips through
        dumps({"d": Decimal("NaN")}, default=float)
