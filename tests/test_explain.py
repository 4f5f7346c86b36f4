"""Per-row explanations (nbprod.core.explain): additive, folded into the model inputs, the same
row rules as scoring, personal data hidden; the CLI end to end; the review queue's contributions."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import nbprod
from nbprod.core.explain import explain
from nbprod.exceptions import ExplainWarning, NbprodUsageError

from .artifacts import kinds_features, kinds_frame, write_csv

NUMBERS = ["usage", "tenure", "active", "days"]


def _scorer(estimator, *, n: int = 500):
    """A live scorer over the every-kind frame: numbers scaled, ``plan`` and ``region`` one-hot
    encoded, then ``estimator``; and fresh rows with their background."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    data = kinds_frame(n, 7)
    train = data.iloc[: n * 4 // 5]
    s = nbprod.Session("explained")
    s.snapshot(train, role="train", target="label", id="account")
    s.features(kinds_features)
    columns = ColumnTransformer([
        ("num", StandardScaler(), NUMBERS),
        ("plan", OneHotEncoder(), ["plan"]),
        ("region", OneHotEncoder(handle_unknown="ignore"), ["region"]),
    ])
    model = make_pipeline(columns, estimator)
    model.fit(kinds_features(train.drop(columns=["label", "account"])), train["label"])
    s.model(model)
    fresh = kinds_frame(40, 8).drop(columns=["label"])
    return s.live_scorer(), model, fresh, train


def _adds_up(result) -> float:
    t = result.totals()
    return float((t["base_value"] + t["contributions"] - t["prediction"]).abs().max())


def test_linear_pipeline_one_hot_folds_into_the_raw_column_and_adds_up():
    from sklearn.linear_model import LogisticRegression

    scorer, model, fresh, train = _scorer(LogisticRegression(max_iter=1000))
    result = explain(scorer, fresh, background=train, background_rows=len(train))
    assert result.method == "linear" and result.scale == "logit"  # three classes: softmax inputs
    assert _adds_up(result) < 1e-9
    frame = result.frame
    assert set(frame["feature"]) == {"usage", "tenure", "plan", "region", "active", "days"}
    assert list(frame.columns) == ["account", "row", "class", "feature", "value", "contribution",
                                   "base_value", "prediction", "scale", "method"]
    # the prediction is the decision function of the explained (predicted) class
    feats = kinds_features(fresh)
    classes = list(model.classes_)
    per_row = frame.groupby("row").first()
    d = model.decision_function(feats)
    picked = [classes.index(c) for c in per_row["class"]]
    assert np.allclose(per_row["prediction"], d[per_row.index, picked])
    assert list(per_row["class"]) == list(model.predict(feats)[per_row.index])
    # plan's contribution is the sum over its one-hot columns of coef * (z - background mean)
    pre, lr = model[:-1], model[-1]
    plan = pre.named_steps["columntransformer"].output_indices_["plan"]
    Z = pre.transform(feats)[:, plan]
    Zbg = pre.transform(kinds_features(train))[:, plan]
    for row in (0, 7, 19):
        k = picked[list(per_row.index).index(row)]
        expected = float(lr.coef_[k, plan] @ (Z[row] - Zbg.mean(axis=0)))
        got = frame[(frame["row"] == row) & (frame["feature"] == "plan")]["contribution"].item()
        assert got == pytest.approx(expected, abs=1e-12)
        assert frame[(frame["row"] == row) & (frame["feature"] == "plan")]["value"].item() == fresh["plan"].iloc[row]
    # largest contribution first within a row
    first = frame[frame["row"] == 0]["contribution"].abs().to_numpy()
    assert (np.diff(first) <= 1e-15).all()


def test_tree_model_adds_up_with_shap_and_without_it(monkeypatch):
    from sklearn.ensemble import GradientBoostingClassifier

    scorer, model, fresh, train = _scorer(GradientBoostingClassifier(n_estimators=40, random_state=0))
    # two classes, so SHAP's TreeExplainer reads the model: margins on the log-odds scale
    two = train.assign(label=np.where(train["label"] == "high", "high", "other"))
    scorer.model.fit(kinds_features(two.drop(columns=["label", "account"])), two["label"])
    result = explain(scorer, fresh, background=train)
    assert (result.method, result.scale) == ("tree", "log-odds")
    assert _adds_up(result) < 1e-9
    assert set(result.frame["class"]) == {"other"}  # classes_[1], the positive class
    feats = kinds_features(fresh)
    per_row = result.frame.groupby("row")["prediction"].first()
    assert np.allclose(per_row, model.decision_function(feats)[per_row.index])

    monkeypatch.setitem(sys.modules, "shap", None)  # an environment without the optional extra
    with pytest.warns(ExplainWarning, match=r"pip install 'nbprod\[explain\]'"):
        fallback = explain(scorer, fresh.iloc[:5], background=train)
    assert fallback.method == "exact" and _adds_up(fallback) < 1e-9
    assert "SHAP is not installed" in fallback.notes[0]
    with pytest.raises(NbprodUsageError, match=r"SHAP is not installed: pip install 'nbprod\[explain\]'"):
        explain(scorer, fresh.iloc[:2], background=train, method="tree")


def test_rejected_rows_are_not_explained_and_personal_values_hidden():
    from sklearn.linear_model import LogisticRegression

    scorer, model, fresh, train = _scorer(LogisticRegression(max_iter=1000))
    bad = fresh.copy()
    bad["plan"] = bad["plan"].astype("object")
    bad.loc[3, "plan"] = "platinum"  # a category the strict encoder never saw: rejected
    picked = bad.iloc[2:6]
    result = explain(replace(scorer, hidden=frozenset({"region"})), picked, background=train,
                     positions=np.arange(2, 6))
    assert result.rejected == 1 and result.rows == 3
    assert sorted(result.frame["row"].unique()) == [2, 4, 5]
    rejected = result.issues.frame[result.issues.frame["action"] == "rejected"]
    assert list(rejected["row"]) == [3]  # the encoder raised on it alone: rule model-error
    region = result.frame[result.frame["feature"] == "region"]["value"]
    assert set(region) == {"[personal data]"}
    with pytest.raises(NbprodUsageError, match="method must be one of"):
        explain(scorer, fresh, background=train, method="magic")


def test_model_agnostic_sampling_adds_up_on_many_inputs(cancer_art):
    art = nbprod.load(cancer_art.path)
    result = art.explain(cancer_art.batch, rows=4, method="sampling", permutations=4)
    assert result.method == "sampling" and _adds_up(result) < 1e-9
    linear = art.explain(cancer_art.batch, rows=4)
    assert linear.method == "linear" and linear.scale == "log-odds"
    # both are Shapley values of the same game: the sampled ones are near the exact ones
    a = result.frame.set_index(["row", "feature"])["contribution"]
    b = linear.frame.set_index(["row", "feature"])["contribution"]
    assert np.corrcoef(a.sort_index(), b.sort_index())[0, 1] > 0.9
    by_id = art.explain(cancer_art.batch, ids=[cancer_art.batch["patient_id"].iloc[2]])
    assert list(by_id.frame["row"].unique()) == [2]
    with pytest.raises(NbprodUsageError, match="No row of the input has patient_id"):
        art.explain(cancer_art.batch, ids=["nobody"])


def test_cli_explain_end_to_end(kinds_art, tmp_path):
    batch = kinds_art.batch.copy()
    batch["plan"] = batch["plan"].astype("object")
    batch.loc[1, "plan"] = "platinum"  # rejected as in scoring
    src = write_csv(batch, tmp_path / "batch.csv")
    out = tmp_path / "why.csv"
    proc = subprocess.run([sys.executable, "-m", "nbprod.cli", "explain", str(kinds_art.path),
                           str(src), "-o", str(out), "--rows", "4"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "explained 3 of 4 rows" in proc.stdout and "logit scale" in proc.stdout
    assert "1 row was rejected as in scoring, not explained: row 1 (plan unseen-category)" in proc.stdout
    frame = pd.read_csv(out, dtype={"account": "str"})
    assert sorted(frame["row"].unique()) == [0, 2, 3]
    t = frame.groupby("row").agg(b=("base_value", "first"), c=("contribution", "sum"),
                                 p=("prediction", "first"))
    assert np.allclose(t["b"] + t["c"], t["p"], atol=1e-9)

    from nbprod.cli import main

    assert main(["explain", str(kinds_art.path), str(src), "-o", str(out), "--ids", "X1"]) == 2
    assert main(["explain", str(kinds_art.path), str(src), "-o", str(src)]) == 2  # never the input


def test_explanation_drift_names_the_input_the_model_leans_on_more(kinds_art, tmp_path):
    from nbprod.jobs import run as nbrun

    art = nbprod.load(kinds_art.path)
    ref = art.reference["explanations"]
    assert ref["method"] == "linear" and ref["snapshot"] == "valid" and ref["rows"] == 200
    assert set(ref["mean_abs"]) == {"usage", "tenure", "plan", "region", "active", "days"}

    def drift_of(batch: pd.DataFrame, name: str) -> dict:
        src = write_csv(batch, tmp_path / f"{name}.csv")
        run = nbrun.execute(input_path=str(src), output_path=str(tmp_path / f"{name}.out.csv"),
                            artifact_path=str(kinds_art.path), log_to_mlflow=False)
        return run.summary()["drift"]["explanations"]

    same = drift_of(kinds_art.batch, "same")
    assert same["shifted"] == [] and same["method"] == "linear"
    assert same["budget"]["status"] == "computed" and same["rows"] == 200
    heavy = kinds_art.batch.assign(usage=kinds_art.batch["usage"] * 4)
    moved = drift_of(heavy, "heavy")
    assert moved["shifted"][0] == "usage" and moved["features"]["usage"]["ratio"] >= 2
    assert "usage" in moved["message"]


def test_packaging_report_shows_partial_dependence_of_the_inputs_leaned_on_most(kinds_art):
    art = nbprod.load(kinds_art.path)
    pd_ref = art.reference["partial_dependence"]
    mean_abs = art.reference["explanations"]["mean_abs"]
    top3 = sorted(mean_abs, key=lambda n: -mean_abs[n])[:3]
    assert list(pd_ref["features"]) == top3 and pd_ref["response"] == "probability of class high"
    # each grid value: the model's mean probability with that input set so in every valid row
    model = kinds_art.session.model_capture.model
    valid = kinds_features(kinds_art.session.valid.data)
    name = top3[0]
    entry = pd_ref["features"][name]
    for value, average in list(zip(entry["grid"], entry["average"], strict=True))[:3]:
        proba = model.predict_proba(valid.assign(**{name: value}))[:, 0]
        assert average == pytest.approx(proba.mean(), rel=1e-9)
    shown = kinds_art.result._repr_html_()
    assert "Partial dependence" in shown and shown.count("<svg") == 3


def test_a_pipeline_that_mixes_inputs_is_explained_model_agnostically(diabetes):
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures

    from .artifacts import diabetes_features

    train = diabetes.iloc[:300]
    s = nbprod.Session("mixed")
    s.snapshot(train, role="train", target="target")
    s.features(diabetes_features)
    model = make_pipeline(PolynomialFeatures(2), Ridge())  # interaction terms: two inputs a column
    s.model(model.fit(diabetes_features(train.drop(columns=["target"])), train["target"]))
    with pytest.warns(ExplainWarning, match="mixes several model inputs"):
        result = explain(s.live_scorer(), diabetes.iloc[400:403].drop(columns=["target"]),
                         background=train, permutations=4)
    assert (result.method, result.scale) == ("sampling", "raw output")  # 11 inputs: sampled
    assert _adds_up(result) < 1e-9 and result.rows == 3
    assert "row" in result.frame.columns and "class" not in result.frame.columns


def test_explanation_drift_budget_plans_by_method_before_any_work():
    from nbprod.monitoring.explanations import BUDGET_S, check_mode, plan

    linear = plan("linear", 200)
    assert (linear["status"], linear["rows"]) == ("computed", 200) and "reason" not in linear
    tree = plan("tree", 200, loaded=False)  # SHAP's import alone is over the default budget
    assert (tree["status"], tree["rows"]) == ("skipped", 0)
    assert "loading SHAP" in tree["reason"] and f"{BUDGET_S:g} s budget" in tree["reason"]
    assert "--explain-drift full" in tree["reason"]
    assert plan("exact", 200)["status"] == "skipped"  # the model-agnostic methods too
    assert plan("tree", 200, "full", loaded=False) == {
        "status": "computed", "rows": 200, "budget_s": None, "estimated_s": 4.3}
    sampled = plan("tree", 200, 2.8, loaded=False)  # (2.8 s - 2.3 s to start, SHAP) / 10 ms a row
    assert (sampled["status"], sampled["rows"]) == ("sampled", 50) and "50 of 200 rows" in sampled["reason"]
    assert sampled["basis"] == "explain_drift 2.8 s" and "(explain_drift 2.8 s)" in sampled["reason"]
    assert plan("linear", 200, "off")["status"] == "off"
    assert plan("linear", 30)["rows"] == 30  # a small batch: every row
    assert check_mode(None) == "auto" and check_mode(" FULL ") == "full" and check_mode("3") == 3.0
    for bad in ("sometimes", "0", "-1", "nan", True):
        with pytest.raises(NbprodUsageError, match="explain_drift must be auto, full, off"):
            check_mode(bad)


def test_the_auto_budget_scales_with_the_run_and_counts_loading_shap_once():
    from nbprod.monitoring.explanations import FIXED_S, PER_ROW_S, SHARE, STARTED_S, plan

    row = PER_ROW_S["tree"]
    small = plan("tree", 200, elapsed_s=3.0, loaded=False)  # a 10k-row run: the 1 s floor
    assert (small["status"], small["budget_s"]) == ("skipped", 1.0)
    assert small["basis"] == f"the 1 s floor: {SHARE * 100:g}% of 3.0 s is less"
    assert small["reason"].endswith("or a larger budget") and small["basis"] in small["reason"]
    long = FIXED_S["tree"] + 200 * row  # a run this many times longer explains every row
    big = plan("tree", 200, elapsed_s=long / SHARE + 1, loaded=False)
    assert (big["status"], big["rows"]) == ("computed", 200) and "reason" not in big
    assert big["budget_s"] == pytest.approx(SHARE * (long / SHARE + 1), abs=0.01)
    assert big["basis"] == f"{SHARE * 100:g}% of {long / SHARE + 1:.1f} s"
    between = plan("tree", 200, elapsed_s=30.0, loaded=False)  # 3 s: the import and some rows
    assert between["status"] == "sampled"
    assert between["rows"] == int((3.0 - FIXED_S["tree"]) / row + 1e-9)
    # SHAP already imported (explanation drift ran, or an earlier run in this kernel): only
    # building the explainer is left, so the report's 10 rows fit a small run's floor
    assert STARTED_S["tree"] < FIXED_S["tree"]
    table = plan("tree", 10, elapsed_s=3.0, loaded=True, min_rows=1, what="the report's table")
    assert (table["status"], table["rows"]) == ("computed", 10)
    assert table["estimated_s"] == pytest.approx(STARTED_S["tree"] + 10 * row)
    fresh = plan("tree", 10, elapsed_s=3.0, loaded=False, min_rows=1, what="the report's table")
    assert fresh["status"] == "skipped" and "(loading SHAP)" in fresh["reason"]
    warm = plan("tree", 200, 1.5, loaded=True)  # the same budget fits more rows
    assert warm["rows"] == int((1.5 - STARTED_S["tree"]) / row + 1e-9)
    assert "(SHAP already loaded)" in warm["reason"]
    # a number is an absolute budget, and full is full, whatever the run's time
    assert plan("tree", 200, 1.5, elapsed_s=1000.0, loaded=True) == warm
    assert plan("tree", 200, "full", elapsed_s=1.0, loaded=False)["status"] == "computed"
    assert plan("linear", 200, elapsed_s=0.5)["budget_s"] == 1.0  # linear: always computed


def test_a_tree_models_run_explains_its_rows_once_shap_is_loaded(tmp_path):
    """A tree model packaged in this process (SHAP imported, as in the notebook that packaged
    it, or a kernel's second run): the default budget explains the report's rows, and they add
    up to the model's log-odds; a budget below the start skips both figures, saying why."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from nbprod.cli import main
    from nbprod.jobs import run as nbrun
    from nbprod.monitoring.explanations import STARTED_S

    pytest.importorskip("shap")
    data = kinds_frame(300, 3)
    data["label"] = np.where(data["label"] == "high", "high", "other")  # binary: a cheaper run
    s = nbprod.Session("forest")
    s.snapshot(data, role="train", target="label", id="account")
    s.features(kinds_features)
    model = make_pipeline(ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"])],
        remainder="passthrough"), HistGradientBoostingClassifier(max_iter=10, random_state=0))
    train = data
    s.model(model.fit(kinds_features(train.drop(columns=["label", "account"])), train["label"]))
    s.package(tmp_path / "art", log_to_mlflow=False)
    assert nbprod.load(tmp_path / "art").reference["explanations"]["method"] == "tree"
    batch = kinds_frame(100, 4).drop(columns=["label"])
    src = write_csv(batch, tmp_path / "batch.csv")

    def summary(option):
        run = nbrun.execute(input_path=str(src), output_path=str(tmp_path / "out.csv"),
                            artifact_path=str(tmp_path / "art"), log_to_mlflow=False,
                            explain_drift=option)
        return run.summary()

    default = summary(None)
    drift = default["drift"]["explanations"]  # at least the 1 s floor: SHAP's import is paid
    assert drift["budget"]["status"] in ("computed", "sampled") and drift["method"] == "tree"
    assert drift["rows"] == drift["budget"]["rows"] >= 20 and drift["features"]
    assert drift["budget"]["budget_s"] >= 1.0 and "%" in drift["budget"]["basis"]
    table = default["explained"]
    assert table["budget"]["status"] == "computed" and table["method"] == "tree"
    assert table["scale"] == "log-odds" and len(table["rows"]) >= 2
    feats = kinds_features(batch.drop(columns=["account"]))
    margin = model.decision_function(feats)
    for r in table["rows"]:  # base value + contributions = the model's log-odds of "other"
        assert r["base_value"] + sum(c["contribution"] for c in r["contributions"]) == \
            pytest.approx(r["output"], abs=1e-6)
        assert r["output"] == pytest.approx(margin[r["row"]], abs=1e-6)
        assert r["id"] == batch["account"].iloc[r["row"]]
    # a long run (60 s so far) explains every sampled row, whatever was loaded before
    from types import SimpleNamespace

    from nbprod.monitoring.explanations import explanation_drift

    art = nbprod.load(tmp_path / "art")
    inputs = SimpleNamespace(inputs=batch.drop(columns=["account"]))
    long = explanation_drift(art, inputs, "auto", elapsed_s=60.0)
    assert long["budget"]["status"] == "computed" and long["budget"]["basis"] == "10% of 60.0 s"
    assert long["rows"] == len(batch) and set(long["features"]) == set(drift["features"])
    skipped = summary(STARTED_S["tree"] / 2)  # a number is an absolute budget, below the start
    for figure, start in ((skipped["drift"]["explanations"], "explanation drift skipped: "),
                          (skipped["explained"], "not explained: ")):
        assert figure["budget"]["status"] == "skipped" and not figure["rows"]
        assert figure["message"].startswith(start + "the tree method costs")
        assert "(SHAP already loaded)" in figure["message"]
        assert f"(explain_drift {STARTED_S['tree'] / 2:g} s)" in figure["message"]
    with pytest.raises(SystemExit) as exc:  # argparse: a usage error, before any work
        main(["score", str(tmp_path / "art"), str(src), "-o", str(tmp_path / "o.csv"),
              "--explain-drift", "sometimes"])
    assert exc.value.code == 2


@pytest.fixture(scope="module")
def personal(tmp_path_factory):
    """A kinds classifier whose id (``account``) is personal data, and a batch
    with planted rows: row 1 rejected (an unseen plan) though its usage is the batch's highest,
    rows 5, 9 and 12 flagged (usage and tenure above training, an unseen region)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    d = tmp_path_factory.mktemp("personal")
    data = kinds_frame(700, 5)
    train, valid = data.iloc[:500], data.iloc[500:]
    s = nbprod.Session("personal")
    s.snapshot(train, role="train", target="label", id="account", pii=["account"])
    s.snapshot(valid, role="valid", target="label", id="account", pii=["account"])
    s.features(kinds_features)
    model = make_pipeline(ColumnTransformer([
        ("num", StandardScaler(), NUMBERS), ("plan", OneHotEncoder(), ["plan"]),
        ("region", OneHotEncoder(handle_unknown="ignore"), ["region"])]),
        LogisticRegression(max_iter=1000))
    model.fit(kinds_features(train.drop(columns=["label", "account"])), train["label"])
    s.model(model)
    s.package(d / "art", log_to_mlflow=False)
    batch = kinds_frame(120, 6).drop(columns=["label"])
    batch["plan"] = batch["plan"].astype("object")
    batch["region"] = batch["region"].astype("object")
    top = float(train["usage"].max())
    batch.loc[1, ["plan", "usage"]] = ["platinum", top * 1.4]
    batch.loc[5, "usage"] = top * 1.2
    batch.loc[9, "region"] = "mars"
    batch.loc[12, "tenure"] = 70
    return d, model, batch, write_csv(batch, d / "batch.csv")


def test_the_run_explains_its_most_extreme_and_flagged_rows_whatever_the_chunks(personal):
    from nbprod.jobs import run as nbrun
    from nbprod.monitoring.notable import FLAGGED, K

    d, model, batch, src = personal

    def explained(chunk_rows):
        run = nbrun.execute(input_path=str(src), output_path=str(d / f"out{chunk_rows}.csv"),
                            artifact_path=str(d / "art"), log_to_mlflow=False,
                            chunk_rows=chunk_rows)
        assert run.summary()["rejected"] == 1
        return run.summary()["explained"]

    whole = explained(None)
    assert (whole["method"], whole["scale"], whole["budget"]["status"]) == ("linear", "logit", "computed")
    rows = whole["rows"]
    assert 1 not in [r["row"] for r in rows]  # rejected: never explained, though the most extreme
    flagged = [r["row"] for r in rows if "flagged" in r["why"]]
    assert flagged[:3] == [5, 9, 12] and len(flagged) <= FLAGGED
    assert sum("highest" in r["why"] for r in rows) == K == sum("lowest" in r["why"] for r in rows)
    assert next(r for r in rows if r["row"] == 5)["why"] == "highest, flagged"
    # the chosen extremes are the K highest and lowest probabilities of the predicted class
    feats = kinds_features(batch.drop(index=1))
    best = model.predict_proba(feats).max(axis=1)
    order = np.argsort(-best, kind="stable")
    positions = feats.index.to_numpy()
    assert {r["row"] for r in rows if "highest" in r["why"]} == set(positions[order[:K]])
    assert {r["row"] for r in rows if "lowest" in r["why"]} == set(positions[order[-K:]])
    classes = list(model.classes_)
    for r in rows:  # base value + contributions = the model's output (the class's logit)
        assert r["base_value"] + sum(c["contribution"] for c in r["contributions"]) == \
            pytest.approx(r["output"], abs=1e-9)
        i = list(positions).index(r["row"])
        assert r["output"] == pytest.approx(model.decision_function(feats.iloc[[i]])[0, classes.index(r["class"])])
        assert r["score"] == pytest.approx(best[i])
        assert "id" not in r  # the id is personal data: rows are named by position
        shown = {c["feature"]: c["value"] for c in r["contributions"]}
        assert shown["plan"] == batch["plan"].iloc[r["row"]]  # other values are shown
    for chunk_rows in (25,):  # the same rows, explained the same, however the batch streams
        other = explained(chunk_rows)
        assert [(r["row"], r["why"]) for r in other["rows"]] == [(r["row"], r["why"]) for r in rows]
        assert np.allclose([r["output"] for r in other["rows"]], [r["output"] for r in rows])


def test_the_scoring_report_shows_the_explained_rows_after_the_verdict(personal):
    from nbprod.cli import main

    d, _, batch, src = personal
    html_path = d / "report.html"
    code = main(["score", str(d / "art"), str(src), "-o", str(d / "cli.csv"), "--no-mlflow",
                 "--html", str(html_path), "--summary", str(d / "summary.json")])
    assert code in (0, 1), code
    page = html_path.read_text()
    assert page.index("Verdict") < page.index("Why: the most extreme and the flagged predictions")
    section = page[page.index("Why: the most extreme"):]
    section = section[: section.index("</table>")]
    assert "highest, flagged" in section and "A06-" not in section  # the id is personal
    import json

    summary = json.loads((d / "summary.json").read_text())
    rows = summary["explained"]["rows"]
    assert summary["explained"]["method"] == "linear" and [r["row"] for r in rows][:1]
    for r in rows:  # each row in the table by position, never by its (personal) id
        assert f"<td>{r['row']}</td>" in section
        assert batch["account"].iloc[r["row"]] not in section and "id" not in r


@pytest.mark.parametrize("values", ["distinct", "ties", "missing"])
def test_a_chunks_candidates_are_its_extremes_and_first_flagged_rows(values):
    """The chunk's candidates, chosen from its scores without copying its inputs, are the rows a
    brute-force ranking of the whole chunk gives: the K highest and K lowest scores (ties by
    position), and the first FLAGGED flagged rows, with their inputs."""
    from types import SimpleNamespace

    from nbprod.monitoring.notable import AT, FLAGGED, ID, ROW, SCORE, WHY, K, candidates

    rng = np.random.default_rng(3)
    n = 5000
    score = rng.normal(size=n) if values != "ties" else np.round(rng.normal(size=n), 1)
    if values == "missing":
        score[rng.random(n) < 0.4] = np.nan
    flagged = rng.random(n) < 0.02
    positions = np.sort(rng.choice(3 * n, n, replace=False))
    inputs = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(list("abc"), n)})
    scored = SimpleNamespace(inputs=inputs, positions=positions, issues=SimpleNamespace(
        flagged=np.isin(np.arange(3 * n), positions[flagged])),
        all_outputs=pd.DataFrame({"prediction": score, "id": positions}))
    got = candidates(SimpleNamespace(task="regression", id_column="id"), scored)

    valued = np.flatnonzero(~np.isnan(score))
    high = list(valued[np.lexsort((positions[valued], -score[valued]))][:K])
    low = [i for i in valued[np.lexsort((positions[valued], score[valued]))] if i not in high][:K]
    first = list(np.flatnonzero(flagged)[:FLAGGED])
    want = sorted({*high, *low, *first})
    assert AT not in got.columns
    assert got[ROW].tolist() == positions[want].tolist() == got[ID].tolist()
    assert got[["x", "c"]].equals(inputs.iloc[want].reset_index(drop=True))
    np.testing.assert_array_equal(got[SCORE].to_numpy(), score[want])
    why = {i: ", ".join(w for w, s in (("highest", high), ("lowest", low), ("flagged", first))
                        if i in s) for i in want}
    assert got[WHY].tolist() == [why[i] for i in want]
