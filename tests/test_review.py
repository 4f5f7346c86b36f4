"""The review queue's core: which rows and why, in what order, and the feedback file it writes."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbprod
from nbprod.exceptions import InputError, NbprodUsageError
from nbprod.jobs import run as nbrun
from nbprod.lifecycle.feedback import Decision
from nbprod.lifecycle.feedback import append as append_feedback
from nbprod.lifecycle.feedback import read as read_feedback


def churn(n: int, seed: int, shift: float = 0.0, flip: float = 0.0) -> pd.DataFrame:
    """Customers who churn more when they spend more or buy by phone; ``email`` is PII."""
    rng = np.random.default_rng(seed)
    channel = rng.choice(["web", "store", "phone"], n, p=[0.1, 0.2, 0.7] if shift else [0.5, 0.3, 0.2])
    df = pd.DataFrame({
        "customer": [f"c{seed}-{i}" for i in range(n)],
        "spend": rng.normal(50, 10, n) + shift * 10,
        "visits": rng.poisson(4, n),
        "tenure": rng.uniform(0, 10, n),
        "channel": pd.array(channel, dtype="str"),
        "email": pd.array([f"u{seed}.{i}@example.com" for i in range(n)], dtype="str"),
    })
    logit = (df["spend"] - 50) / 5 + np.where(df["channel"] == "phone", 1.5, 0) - 0.5
    y = (logit + rng.logistic(size=n) > 0).astype(int)
    if flip:
        y = np.where(rng.random(n) < flip, 1 - y, y)
    return df.assign(churned=y)


def churn_features(df):
    return df.assign(spend_per_visit=df["spend"] / (df["visits"] + 1))


def spend_features(df):
    return df[["visits", "tenure", "churned"]].assign(web=(df["channel"] == "web").astype(float))


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> Path:
    return package_classifier(tmp_path_factory.mktemp("review-classifier") / "art")


def package_classifier(root: Path) -> Path:
    """A churn classifier with an id and a PII column, packaged through the public API."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    train, valid = churn(1200, 1), churn(400, 2)
    s = nbprod.Session("churn-review")
    s.snapshot(train, role="train", target="churned", id="customer", pii=["email"])
    s.snapshot(valid, role="valid", target="churned", id="customer", pii=["email"])
    s.features(churn_features)
    pre = ColumnTransformer([("num", StandardScaler(), ["spend", "visits", "tenure", "spend_per_visit"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["channel"])])
    model = make_pipeline(pre, LogisticRegression(max_iter=1000))
    model.fit(churn_features(train.drop(columns=["churned", "customer"])), train["churned"])
    s.model(model)
    s.check("metric", metric="roc_auc", min=0.8)
    s.package(root, log_to_mlflow=False)
    return root


@pytest.fixture(scope="module")
def regressor(tmp_path_factory) -> Path:
    """Predicts spend; outputs above 60 break the declared bounds (policy flag)."""
    from sklearn.linear_model import LinearRegression

    train, valid = churn(1200, 3), churn(400, 4)
    s = nbprod.Session("spend-review")
    s.snapshot(train.drop(columns=["email"]), role="train", target="spend", id="customer")
    s.snapshot(valid.drop(columns=["email"]), role="valid", target="spend", id="customer")
    s.features(spend_features)
    s.model(LinearRegression().fit(spend_features(train), train["spend"]))
    s.check("bounds", max=60, policy="flag")
    root = tmp_path_factory.mktemp("review-regressor") / "art"
    s.package(root, log_to_mlflow=False)
    return root


def score(art: Path, tmp: Path, name: str, df: pd.DataFrame, target: str, **options):
    """Write the batch and its labels, score it like the scheduled job does."""
    inputs, labels = tmp / f"{name}.csv", tmp / f"{name}.labels.csv"
    df.drop(columns=[target]).to_csv(inputs, index=False)
    df[["customer", target]].to_csv(labels, index=False)
    return nbrun.execute(input_path=str(inputs), output_path=str(tmp / f"{name}.pred.csv"),
                              artifact_path=str(art), labels_path=str(labels),
                              summary_path=str(tmp / f"{name}.summary.json"), log_to_mlflow=False,
                              **options)


def test_classifier_queue_lists_mistakes_then_uncertain_rows_with_reasons(classifier, tmp_path):
    batch = churn(600, 11, flip=0.15)
    run = score(classifier, tmp_path, "b", batch, "churned")
    q = nbprod.review(run, feedback=tmp_path / "fb.parquet", reviewer="ana", limit=None)

    # what a person should see, computed here from the written files alone
    pred = pd.read_csv(run.output_path).merge(batch[["customer", "churned"]], on="customer")
    p_label = np.where(pred["churned"] == 1, pred["proba_1"], pred["proba_0"])
    wrong = pred.loc[pred["prediction"] != pred["churned"]].assign(p=p_label[pred["prediction"] != pred["churned"]])
    unsure = pred.loc[pred[["proba_0", "proba_1"]].max(axis=1) < 0.6]
    assert len(wrong) > 20 and len(unsure) > 5  # the batch has both kinds

    issues = pd.read_csv(tmp_path / "b.pred.issues.csv")  # beside the predictions
    outside = issues.loc[issues["action"] == "flagged", "customer"]
    assert len(outside) > 0  # a fresh batch has a few values beyond the training extremes
    items = q.items.set_index("id")
    assert set(items.index) == set(wrong["customer"]) | set(unsure["customer"]) | set(outside)
    assert all("large_error" in items.loc[c, "reasons"] for c in wrong["customer"])
    assert all("low_confidence" in items.loc[c, "reasons"] for c in unsure["customer"])
    assert all("flagged_input" in items.loc[c, "reasons"] for c in outside)
    assert "out_of_bounds" not in {r for rs in items["reasons"] for r in rs}  # no bounds declared

    # order: every mistake before any merely uncertain row; mistakes the model was surest of first
    mistakes = q.items[q.items["reasons"].map(lambda r: r[0] == "large_error")]
    assert list(q.items["id"][: len(mistakes)]) == list(mistakes["id"])
    expected = wrong.sort_values("p", kind="stable")["customer"].tolist()
    assert sorted(mistakes["error"], reverse=True) == list(mistakes["error"])
    assert set(mistakes["id"][:10]) <= set(expected[:15])  # ties aside, the same leaders
    rest = q.items.iloc[len(mistakes):]
    unsure_group = rest[rest["reasons"].map(lambda r: r[0] == "low_confidence")]
    assert list(unsure_group["confidence"]) == sorted(unsure_group["confidence"])
    last = rest.iloc[len(unsure_group):]  # then rows whose only reason is a flagged input
    assert len(last) and all(r == ("flagged_input",) for r in last["reasons"])
    assert all(w.startswith("input outside what the model saw: ") and "out-of-range" in w
               for w in last["why"])
    first = q.items.iloc[0]
    assert first["why"].startswith(f"misclassified (label {first['label']}")

    # a row's details: its inputs, the model's outputs, its label
    row = q.row(first["id"])
    assert {"spend", "channel", "prediction", "proba_1", "label"} <= set(row)
    assert row["email"] == "[personal data]"  # declared --pii: not shown to reviewers


def test_limit_keeps_each_kind_of_problem(classifier, tmp_path):
    run = score(classifier, tmp_path, "lim", churn(600, 12, flip=0.3), "churned")
    q = nbprod.review(run, feedback=tmp_path / "fb.parquet", limit=5)
    groups = q.items["reasons"].map(lambda r: r[0]).tolist()
    assert groups[:10] == ["large_error"] * 5 + ["low_confidence"] * 5
    assert len(groups[10:]) <= 5 and set(groups[10:]) <= {"flagged_input"}


def test_regressor_queue_puts_out_of_bounds_first_then_largest_errors(regressor, tmp_path):
    batch = churn(500, 13).drop(columns=["email"])
    batch.loc[:4, "churned"] = 40  # nonsense inputs drive predictions far past the bound of 60
    run = score(regressor, tmp_path, "r", batch, "spend")
    pred = pd.read_csv(run.output_path)
    flagged = pred.loc[pred["out_of_bounds"], "customer"].tolist()
    assert set(flagged) >= set(batch["customer"][:5])

    q = nbprod.review(run, feedback=tmp_path / "fb.parquet", limit=None)
    head = q.items.iloc[: len(flagged)]
    assert set(head["id"]) == set(flagged)
    assert all(r[0] == "out_of_bounds" for r in head["reasons"])
    rest = q.items.iloc[len(flagged):]
    errors = (pred["prediction"] - batch["spend"]).abs()
    cut = errors.quantile(0.95)
    big = set(pred.loc[(errors >= cut) & ~pred["out_of_bounds"], "customer"])
    large = rest[rest["reasons"].map(lambda r: r[0] == "large_error")]
    assert set(large["id"]) == big and all(r[0] == "large_error" for r in large["reasons"])
    assert list(large["error"]) == sorted(large["error"], reverse=True)
    # the inputs of rows 0-4 (churned 40, never above 1 in training) are flagged too
    outside = rest.iloc[len(large):]
    assert all(r == ("flagged_input",) for r in outside["reasons"])
    reasons = dict(zip(q.items["id"], q.items["reasons"], strict=True))
    assert all(reasons[c][0] == "out_of_bounds" and reasons[c][-1] == "flagged_input"
               for c in batch["customer"][:5])
    why = dict(zip(q.items["id"], q.items["why"], strict=True))
    assert all("churned out-of-range" in why[c] for c in batch["customer"][:5])
    assert not any(np.isfinite(q.items["confidence"]))  # regressors have no confidence

    # the same queue from the files alone (bounds from the out_of_bounds column)
    again = nbprod.review(predictions=run.output_path, artifact=regressor, labels=run.labels_path,
                          feedback=tmp_path / "fb.parquet", limit=None)
    assert again.items["id"].tolist() == q.items["id"].tolist()


def test_decisions_land_in_the_feedback_file_last_one_wins(classifier, tmp_path):
    run = score(classifier, tmp_path, "d", churn(400, 14, flip=0.2), "churned")
    fb = tmp_path / "feedback.parquet"
    q = nbprod.review(run, feedback=fb, reviewer="ana")
    a, b = q.items["id"].iloc[0], q.items["id"].iloc[1]
    pred_a = q.row(a)["prediction"]

    q.accept(a, note="the label is the typo")
    q.relabel(b, 1)
    q.relabel(b, "0", note="looked again", reviewer="bo")  # text is matched to the class

    got = read_feedback(fb)
    assert list(got.columns) == ["id", "label", "reviewer", "time", "note", "decision",
                                 "prediction", "reasons", "artifact_id"]
    assert got["id"].tolist() == [a, b]  # one row per id
    ra, rb = got.set_index("id").loc[a], got.set_index("id").loc[b]
    assert (ra["label"], ra["decision"], ra["reviewer"], ra["note"]) == (pred_a, "accept", "ana",
                                                                       "the label is the typo")
    assert (rb["label"], rb["decision"], rb["reviewer"], rb["note"]) == (0, "relabel", "bo", "looked again")
    assert got["label"].dtype == "int64"  # typed like the model's classes, for retraining
    assert str(got["time"].dtype) == "datetime64[us, UTC]"
    assert ra["artifact_id"] == json.loads((classifier / "nbprod.json").read_text())["artifact_id"]
    assert rb["reasons"].startswith("misclassified")

    # a queue opened later over the same file knows what was decided
    again = nbprod.review(run, feedback=fb)
    assert again.status(a) == "accepted" and again.status(b) == "relabelled"
    assert a not in set(again.pending()["id"]) and len(again.pending()) == len(again) - 2


def test_bad_decisions_are_refused_and_write_nothing(classifier, regressor, tmp_path):
    run = score(classifier, tmp_path, "bad", churn(300, 15, flip=0.2), "churned")
    fb = tmp_path / "fb.parquet"
    q = nbprod.review(run, feedback=fb)
    first = q.items["id"].iloc[0]
    with pytest.raises(NbprodUsageError, match="'maybe' is not a class of this model; one of: 0, 1"):
        q.relabel(first, "maybe")
    with pytest.raises(NbprodUsageError, match="No row with id 'nobody'"):
        q.accept("nobody")
    assert not fb.exists()

    q.accept(first)
    reg = score(regressor, tmp_path, "reg", churn(300, 16).drop(columns=["email"]), "spend")
    rq = nbprod.review(reg, feedback=fb)
    with pytest.raises(NbprodUsageError, match="finite number"):
        rq.relabel(rq.items["id"].iloc[0], "lots")
    text = Decision(id="t", label="yes", reviewer="x", time=pd.Timestamp.now(tz="UTC"), note="",
                    decision="relabel", prediction="no", reasons="", artifact_id="other")
    with pytest.raises(NbprodUsageError, match="holds number labels; this model's labels are text"):
        append_feedback(fb, [text])
    assert read_feedback(fb)["id"].tolist() == [first]


def test_review_needs_something_to_review():
    with pytest.raises(NbprodUsageError, match="predictions= with artifact="):
        nbprod.review()
    with pytest.raises(NbprodUsageError, match="min_confidence"):
        from nbprod.jupyter.review import select

        select(pd.DataFrame({"prediction": [1]}), task="classification", classes=[0, 1],
               ids=pd.Series(["a"]), min_confidence=2)


def _append(args: tuple[str, int]) -> None:
    path, worker = args
    for i in range(10):
        append_feedback(path, [Decision(id=f"w{worker}-{i}", label=i % 2, reviewer=f"r{worker}",
                                        time=pd.Timestamp.now(tz="UTC"), note="", decision="relabel",
                                        prediction=1, reasons="", artifact_id="x")])


def test_concurrent_reviewers_lose_no_decision(tmp_path):
    fb = str(tmp_path / "shared.parquet")
    with ProcessPoolExecutor(4) as pool:
        list(pool.map(_append, [(fb, w) for w in range(4)]))
    got = read_feedback(fb)
    assert sorted(got["id"]) == sorted(f"w{w}-{i}" for w in range(4) for i in range(10))
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no half-written file


def test_text_ids_keep_their_leading_zeros_from_the_files(classifier, tmp_path):
    batch = churn(300, 17, flip=0.2).assign(customer=[f"{i:05d}" for i in range(300)])
    run = score(classifier, tmp_path, "z", batch, "churned")
    q = nbprod.review(predictions=run.output_path, artifact=classifier, labels=run.labels_path,
                      inputs=run.input_path, feedback=tmp_path / "fb.parquet")
    assert q.items["id"].tolist() == nbprod.review(run, feedback=tmp_path / "fb.parquet").items["id"].tolist()
    first = q.items["id"].iloc[0]
    assert len(first) == 5 and q.row(first)["customer"] == first
    q.accept(first)
    assert read_feedback(tmp_path / "fb.parquet")["id"].tolist() == [first]


def test_one_feedback_format_for_the_queue_and_retraining(classifier, tmp_path):
    """A file of the required columns alone (id, label, time) is read by the queue, appended
    to by it, and merged by retraining: one reader, one format."""
    from nbprod.lifecycle import feedback

    run = score(classifier, tmp_path, "f", churn(300, 18, flip=0.2), "churned")
    first, second = nbprod.review(run, feedback=tmp_path / "none.parquet").items["id"].iloc[:2]
    fb = tmp_path / "fb.parquet"
    pd.DataFrame({"id": [first], "label": [1],
                  "time": pd.to_datetime(["2026-01-01"], utc=True)}).to_parquet(fb)
    q = nbprod.review(run, feedback=fb)
    assert q.status(first) == "relabelled" and q.status(second) == "pending"
    q.accept(second)
    got = feedback.read(fb)
    assert got["id"].tolist() == [first, second] and set(feedback.COLUMNS) <= set(got.columns)
    train = pd.DataFrame({"customer": [first, second, "other"], "churned": [0, 0, 0]})
    merged = feedback.apply(train, fb, id_column="customer", target="churned")
    assert merged["churned"].tolist()[0] == 1 and merged.attrs["nbprod_feedback_rows"] == 2
    assert feedback.read(tmp_path / "none.parquet", missing_ok=True).empty
    with pytest.raises(InputError, match="is not readable as Parquet"):
        feedback.read(tmp_path / "none.parquet")


def test_feedback_relabels_training_rows_by_id_latest_decision_first(tmp_path):
    from nbprod.lifecycle import feedback

    fb = tmp_path / "fb.parquet"
    pd.DataFrame({
        "id": ["007", "12", "007", "99"],
        "label": [1, 0, 0, 1],
        "reviewer": ["ana", "bo", "bo", "ana"],
        "time": pd.to_datetime(["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-01"], utc=True),
        "note": ["", "", "second look", ""],
    }).to_parquet(fb)
    train = pd.DataFrame({"patient": pd.array(["007", "12", "13"], dtype="str"),
                          "x": [0.1, 0.2, 0.3], "y": np.array([1, 1, 1], dtype="int64")})
    out = feedback.apply(train, fb, id_column="patient", target="y")
    assert out["y"].tolist() == [0, 0, 1]  # 007: the later decision wins; 99 is not in training
    assert out["y"].dtype == "int64" and out.attrs["nbprod_feedback_rows"] == 2
    assert train["y"].tolist() == [1, 1, 1]  # the caller's frame is untouched

    with pytest.raises(InputError, match="needs columns 'patient_id' and 'y'"):
        feedback.apply(train, fb, id_column="patient_id", target="y")
    pd.DataFrame({"id": ["1"], "label": [1]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(InputError, match=r"lacks column 'time'"):
        feedback.apply(train, tmp_path / "bad.parquet", id_column="patient", target="y")


def test_queue_rows_carry_their_largest_contributions(classifier, tmp_path):
    batch = churn(300, 21, flip=0.2)
    run = score(classifier, tmp_path, "why", batch, "churned")
    q = nbprod.review(run, feedback=tmp_path / "fb.parquet", limit=None)
    assert len(q) > 3
    said = q.items["contributions"]
    assert said.head(50).map(lambda t: isinstance(t, str) and t.endswith("(log-odds)")).all()
    art = nbprod.load(classifier)
    first = q.items.iloc[0]
    mine = art.explain(batch.drop(columns=["churned"]), ids=[first["id"]])
    top = mine.top(3)
    from nbprod.core.results import number

    for feature, value in zip(top["feature"], top["value"], strict=True):
        assert f"{feature}={number(value)} " in first["contributions"]  # read as tables read
    assert "top contributions" in q.html()
    panel = q.widget()  # the panel's row details show them too
    assert panel.rows.value == first["id"] and "top contributions" in panel.detail.value
    # the personal column reaches the model's inputs: its value is never shown
    assert set(mine.frame.loc[mine.frame["feature"] == "email", "value"]) == {"[personal data]"}
    assert "@example.com" not in q.html() and "@example.com" not in mine.frame.to_csv()
    assert nbprod.review(run, feedback=tmp_path / "fb.parquet", explain=False).items.columns.tolist() \
        == [c for c in q.items.columns if c != "contributions"]
