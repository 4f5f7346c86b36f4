"""Row-level validation on real packaged artifacts: every rule, what the model takes (probed at
packaging), the model-error safety net, the Python faces (``Artifact.score`` raise/reject,
``score_record``) and the review queue's flagged rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import nbprod
from nbprod.core import rows
from nbprod.core.scoring import MAX_MODEL_ERROR_ROWS, reason_column
from nbprod.exceptions import (
    FeatureError,
    NbprodUsageError,
    RowError,
    RowsRejectedError,
    SchemaError,
)

from .artifacts import kinds_features, kinds_frame

ROW = 3  # the row each rule case corrupts


@pytest.fixture(scope="module")
def kinds(kinds_art):
    return nbprod.load(kinds_art.path)


def corrupt(batch: pd.DataFrame, column: str, value, row: int = ROW) -> pd.DataFrame:
    bad = batch.copy()
    bad[column] = bad[column].astype("object")
    bad.loc[row, column] = value
    return bad


def issue_set(issues: rows.RowIssues) -> set[tuple]:
    t = issues.table()
    return set(zip(t["row"], t["column"].fillna(""), t["rule"], t["action"], strict=True))


# -- every rule, one corrupted value at a time ----------------------------------------------
RULE_CASES = [
    # column, value, rule, action
    ("usage", "abc", "type", "rejected"),
    ("usage", np.nan, "missing", "rejected"),  # the LogisticRegression takes no NaN
    ("usage", "   ", "missing", "rejected"),  # blank text is missing
    ("usage", np.inf, "non-finite", "rejected"),
    ("usage", -np.inf, "non-finite", "rejected"),
    ("usage", 1e308, "magnitude", "rejected"),
    ("usage", -1e9, "magnitude", "rejected"),
    ("usage", -1.0, "sign", "flagged"),  # training usage was always >= 0
    ("usage", 900.0, "out-of-range", "flagged"),
    ("tenure", -5, "sign", "flagged"),
    ("tenure", 100, "out-of-range", "flagged"),
    ("tenure", "twelve", "type", "rejected"),
    ("plan", "gold", "unseen-category", "rejected"),  # OneHotEncoder(handle_unknown="error")
    ("plan", None, "missing", "rejected"),
    ("region", "mars", "unseen-category", "flagged"),  # OneHotEncoder(handle_unknown="ignore")
    ("active", "maybe", "type", "rejected"),
    ("active", None, "missing", "rejected"),
    ("since", "not a date", "type", "rejected"),
    ("since", "2031-06-01", "out-of-range", "flagged"),
    ("since", None, "missing", "rejected"),
    ("account", None, "null-id", "rejected"),
    ("account", "  ", "null-id", "rejected"),
]


@pytest.mark.parametrize(("column", "value", "rule", "action"), RULE_CASES,
                         ids=[f"{c}-{r}-{v}" for c, v, r, _ in RULE_CASES])
def test_each_rule_rejects_or_flags_exactly_the_bad_row(kinds, kinds_art, column, value, rule,
                                                        action):
    batch = kinds_art.batch
    clean = kinds.score_detailed(batch)
    bad = corrupt(batch, column, value)
    scored = kinds.score_detailed(bad)
    # exactly one new issue: this row, this column, this rule
    assert issue_set(scored.issues) - issue_set(clean.issues) == {(ROW, column, rule, action)}
    assert issue_set(clean.issues) - issue_set(scored.issues) <= {
        i for i in issue_set(clean.issues) if i[0] == ROW}
    ids = bad["account"]
    if action == "rejected":
        assert ROW not in scored.output.index and len(scored.output) == len(clean.output) - 1
        assert scored.issues.rejected[ROW] and not scored.issues.flagged[ROW]
    else:
        assert ROW in scored.output.index and scored.issues.flagged[ROW]
    # every other row is scored exactly as in the clean batch
    others = clean.output.drop(index=ROW)
    pd.testing.assert_frame_equal(scored.output.drop(index=ROW, errors="ignore"), others)
    assert scored.output[kinds.id_column].tolist() == [
        i for k, i in enumerate(ids) if k in scored.output.index]
    issue = scored.issues.table().query(f"row == {ROW} and column == '{column}'").iloc[0]
    if rule != "null-id":
        assert issue["account"] == ids[ROW]
    assert issue["detail"] and isinstance(issue["detail"], str)


def test_duplicate_ids_flag_the_repeats(kinds, kinds_art):
    bad = kinds_art.batch.copy()
    bad.loc[[5, 9], "account"] = bad.loc[2, "account"]
    scored = kinds.score_detailed(bad)
    dup = scored.issues.table().query("rule == 'duplicate-id'")
    assert dup["row"].tolist() == [5, 9]  # the first occurrence, row 2, is not a repeat
    assert set(dup["action"]) == {"flagged"}
    assert dup["detail"].tolist() == ["the id repeats row 2"] * 2
    assert len(scored.output) == len(bad)  # duplicates are scored


def test_one_issue_per_row_and_column_the_most_specific_wins(kinds, kinds_art):
    bad = corrupt(kinds_art.batch, "usage", -2e12, row=0)  # negative and absurd: magnitude
    bad = corrupt(bad, "plan", "gold", row=0)  # a second column of the same row
    t = kinds.validate(bad).table().query("row == 0")
    assert sorted(zip(t["column"], t["rule"], strict=True)) == [("plan", "unseen-category"),
                                                                ("usage", "magnitude")]


def test_values_are_cut_and_control_characters_escaped(kinds, kinds_art):
    long = "g" * 500
    bad = corrupt(corrupt(kinds_art.batch, "plan", long, row=1), "plan", "a\nb\x00c", row=2)
    t = kinds.validate(bad).table().set_index("row")
    assert len(t.loc[1, "value"]) == rows.VALUE_CHARS and t.loc[1, "value"].endswith("...")
    assert t.loc[2, "value"] == "a\\nb\\x00c"


def test_personal_data_columns_never_echo_their_values():
    """A PII column keeps its counts only in the profile, and its values out of the issues."""
    from nbprod.core.profile import frame_profile
    from nbprod.core.schema import Schema, conform_rows

    rng = np.random.default_rng(0)
    train = pd.DataFrame({"income": rng.normal(5e4, 1e4, 200), "age": rng.integers(18, 90, 200)})
    schema = Schema.infer(train, hide_categories=["income"])
    profile = frame_profile(train, hidden={"income"})
    raw = train.head(6).astype({"income": "object"})
    raw.loc[0, "income"] = "53,210 EUR"
    raw.loc[1, "income"] = np.inf
    raw.loc[2, "income"] = 1e9  # huge, but the hidden profile has no range to compare with
    raw.loc[3, "age"] = 150
    X, lost = conform_rows(raw, schema)
    issues = rows.validate(raw, X, lost, schema, profile=profile, hidden={"income"})
    t = issues.table()
    assert t[["row", "column", "rule", "value"]].values.tolist() == [
        [0, "income", "type", "[personal data]"], [1, "income", "non-finite", "[personal data]"],
        [3, "age", "out-of-range", "150"]]
    assert "53,210" not in t.to_csv()


def test_chunks_merge_into_the_issues_of_the_whole(kinds, kinds_art):
    from nbprod.core.schema import conform_rows

    bad = corrupt(corrupt(kinds_art.batch, "usage", "x", row=10), "plan", "gold", row=200)
    scorer = kinds.scorer

    def part(df, start):
        X, lost = conform_rows(df, scorer.schema)
        return rows.validate(df, X, lost, scorer.schema, profile=scorer.profile,
                             takes=scorer.takes, id_column="account", start=start)

    merged = rows.RowIssues.concat([part(bad.iloc[:100], 0), part(bad.iloc[100:], 100)])
    whole = kinds.validate(bad)
    pd.testing.assert_frame_equal(merged.table(), whole.table())
    assert (merged.rejected == whole.rejected).all() and (merged.flagged == whole.flagged).all()
    with pytest.raises(ValueError, match="not consecutive"):
        rows.RowIssues.concat([part(bad.iloc[:100], 0), part(bad.iloc[100:], 50)])


@pytest.mark.parametrize(("output", "issues"), [
    ("out/preds.csv", "out/preds.issues.csv"), ("preds.csv.gz", "preds.issues.csv.gz"),
    ("preds.parquet", "preds.issues.parquet"), ("a.b.pq", "a.b.issues.pq"),
    ("PREDS.CSV.GZ", "PREDS.issues.CSV.GZ"),
])
def test_the_issues_file_sits_beside_the_output(output, issues):
    assert str(rows.default_issues_path(output)) == issues


# -- whole-input problems stay errors -------------------------------------------------------
def test_every_row_rejected_names_the_most_common_column_and_rule(kinds, kinds_art):
    bad = kinds_art.batch.assign(plan="gold")
    for errors in ("reject", "raise"):
        with pytest.raises(SchemaError) as err:
            kinds.score(bad, errors=errors)
    with pytest.raises(RowsRejectedError) as err:
        kinds.score(bad, errors="reject")
    assert err.value.column == "plan" and err.value.rule == "unseen-category"
    assert "Every one of the 250 input rows was rejected" in str(err.value)


def test_a_column_of_the_wrong_type_as_a_whole_is_an_error(kinds, kinds_art):
    bad = kinds_art.batch.assign(active="sometimes")
    with pytest.raises(SchemaError, match="Column 'active' expected bool values") as err:
        kinds.score(bad, errors="reject")
    assert err.value.column == "active" and not isinstance(err.value, RowError)


# -- the Python faces ------------------------------------------------------------------------
def test_score_raises_by_default_and_rejects_on_request(kinds, kinds_art):
    bad = corrupt(kinds_art.batch, "usage", np.inf, row=7)
    with pytest.raises(RowError) as err:
        kinds.score(bad)
    e = err.value
    assert (e.row, e.column, e.rule, e.value) == (7, "usage", "non-finite", "inf")
    assert str(e).startswith(f"Row 7 (id '{bad.loc[7, 'account']}') cannot be scored: column "
                             "'usage': not a finite number (rule non-finite). Value: 'inf'.")
    assert "errors='reject'" in str(e)
    out = kinds.score(bad, errors="reject")
    assert 7 not in out.index and len(out) == len(bad) - 1
    with pytest.raises(NbprodUsageError, match="errors must be one of raise, reject, mark"):
        kinds.score(bad, errors="ignore")


# -- errors="mark": one output row per input row (a Spark UDF, a REST client) ---------------
def _accepted(marked: pd.DataFrame, like: pd.DataFrame) -> pd.DataFrame:
    """The rows ``errors="mark"`` scored, in the dtypes of ``like`` (pandas' usual ones)."""
    return marked[marked["rejected"].isna()].drop(columns="rejected").astype(like.dtypes)


def test_mark_keeps_every_row_and_marks_the_rejected_ones_with_rule_and_column(kinds, kinds_art):
    bad = corrupt(kinds_art.batch, "usage", "lots", row=3)  # type
    bad = corrupt(bad, "usage", np.nan, row=5)  # missing, and a second rejected column:
    bad = corrupt(bad, "plan", "gold", row=5)  # an unseen category the encoder cannot take
    bad = corrupt(bad, "region", "mars", row=7)  # unseen, the encoder ignores it: flagged
    bad = corrupt(bad, "tenure", 100, row=8)  # out of range: flagged
    bad.index = bad.index + 1000  # the input's index is kept
    out = kinds.score(bad, errors="mark")
    assert list(out.columns) == [*kinds.scorer.output_columns, "rejected"]
    assert reason_column(["rejected", "prediction"]) == "nbprod_rejected"  # an id so named
    assert out.index.equals(bad.index) and out["account"].tolist() == bad["account"].tolist()
    assert out.dtypes.astype(str).tolist() == ["str", "string", "Float64", "Float64", "Float64",
                                               "string"]  # nullable: pd.NA, null in JSON
    reasons = out["rejected"].dropna()
    assert reasons.to_dict() == {1003: "type: usage", 1005: "missing: usage; unseen-category: plan"}
    assert out.loc[[1003, 1005], ["prediction", "proba_high", "proba_low", "proba_mid"]].isna().all().all()
    # the accepted rows (flagged ones included) are scored exactly as under errors="reject"
    reject = kinds.score(bad, errors="reject")
    pd.testing.assert_frame_equal(_accepted(out, reject), reject)
    assert out.loc[[1007, 1008], "prediction"].notna().all()


def test_mark_with_every_row_rejected_or_none_returns_them_all_with_the_same_columns(kinds,
                                                                                       kinds_art):
    clean = kinds.score(kinds_art.batch, errors="mark")
    assert clean["rejected"].isna().all()
    plain = kinds.score(kinds_art.batch)
    pd.testing.assert_frame_equal(_accepted(clean, plain), plain)
    cases = {
        "unseen-category: plan": kinds_art.batch.assign(plan="gold"),
        "type: active": kinds_art.batch.assign(active="sometimes"),  # may be a slice of a batch
        "null-id: account": kinds_art.batch.head(1).assign(account=None),
    }
    dtypes = clean.dtypes.drop("account").to_dict()  # the id keeps the input's dtype
    for reason, bad in cases.items():
        out = kinds.score(bad, errors="mark")
        assert out.dtypes.drop("account").to_dict() == dtypes, reason  # one Spark result type
        assert out["rejected"].tolist() == [reason] * len(bad)
        assert out["prediction"].isna().all() and out["proba_low"].isna().all()
    empty = kinds.score(kinds_art.batch.iloc[:0], errors="mark")
    assert len(empty) == 0 and empty.dtypes.to_dict() == clean.dtypes.to_dict()
    with pytest.raises(SchemaError, match="missing column 'plan'"):  # the input as a whole
        kinds.score(kinds_art.batch.drop(columns="plan"), errors="mark")


def test_mark_marks_the_rows_the_model_fails_on(kinds, kinds_art):
    from dataclasses import replace

    def picky_features(df):
        if (df["tenure"] == 13).any():
            raise ValueError("tenure 13 is not supported")
        return kinds_features(df)

    scorer = replace(kinds.scorer, feature_fn=picky_features)
    batch = kinds_art.batch
    out = scorer.score(batch, errors="mark")
    bad = batch["tenure"].to_numpy() == 13
    assert out["rejected"].notna().to_numpy().tolist() == bad.tolist()
    assert set(out["rejected"].dropna()) == {"model-error"}  # the message may hold values
    reject = scorer.score(batch, errors="reject")
    pd.testing.assert_frame_equal(_accepted(out, reject), reject)
    # a feature function broken for every row is still one batch error
    broken = replace(kinds.scorer, feature_fn=lambda df: df["no_such_column"])
    with pytest.raises(FeatureError):
        broken.score(kinds_frame(500, 6).drop(columns=["label"]), errors="mark")


@pytest.mark.parametrize("policy", ["flag", "drop", "fail"])
def test_mark_under_each_bounds_policy(kinds, kinds_art, policy):
    from dataclasses import replace

    from nbprod.exceptions import OutputBoundsError

    bounds = {"policy": policy, "classes": ["high", "mid"], "min": None, "max": None}
    scorer = replace(kinds.scorer, bounds=bounds)
    bad = corrupt(kinds_art.batch, "plan", "gold", row=0)
    if policy == "fail":
        with pytest.raises(OutputBoundsError, match="policy fail"):
            scorer.score(bad, errors="mark")
        return
    plain = kinds.score(bad, errors="reject")
    low = plain.index[plain["prediction"] == "low"]
    assert len(low) > 5
    out = scorer.score(bad, errors="mark")
    assert len(out) == len(bad) and out.loc[0, "rejected"] == "unseen-category: plan"
    if policy == "drop":  # kept, with missing predictions and the reason
        assert out.loc[low, "rejected"].eq("out-of-bounds").all()
        assert out.loc[low, "prediction"].isna().all()
        assert out["rejected"].notna().sum() == len(low) + 1
        reject = scorer.score(bad, errors="reject")
        pd.testing.assert_frame_equal(_accepted(out, reject), reject)
    else:  # flag: scored, out_of_bounds said; unknown for the rejected row
        assert str(out["out_of_bounds"].dtype) == "boolean"
        assert out.loc[low, "out_of_bounds"].all() and out.loc[low, "prediction"].eq("low").all()
        assert out["out_of_bounds"].isna().tolist() == [True] + [False] * (len(bad) - 1)
        reject = scorer.score(bad, errors="reject")
        pd.testing.assert_frame_equal(_accepted(out, reject), reject)


def test_mark_never_shows_a_value_of_personal_data(kinds, kinds_art):
    from dataclasses import replace

    secret = "jane.doe@example.com"
    scorer = replace(kinds.scorer, hidden=frozenset({"plan", "usage"}))
    bad = corrupt(corrupt(kinds_art.batch, "plan", secret, row=2), "usage", secret, row=4)
    out = scorer.score(bad, errors="mark")
    # a hidden column's categories are not known: the encoder fails on the row (its message
    # holds the value), and the reason says only the rule
    assert out["rejected"].dropna().to_dict() == {2: "model-error", 4: "type: usage"}
    assert secret not in out.to_csv()
    issues = scorer.score_detailed(bad).issues.table()  # nor the issues file's detail
    assert secret not in issues.to_csv()
    assert issues.query("row == 2")["detail"].tolist() == [
        "the model (Pipeline) raised ValueError (its message is not shown: the input has "
        "personal-data columns)"]


def test_flagged_rows_are_scored_even_when_raising(kinds, kinds_art):
    bad = corrupt(kinds_art.batch, "usage", -1.0)
    out = kinds.score(bad)  # a flag is no error
    assert len(out) == len(bad)
    expected = kinds_art.expected(bad.astype({"usage": "float64"}))
    np.testing.assert_allclose(out["proba_high"], expected["proba_high"], rtol=1e-12)


def test_score_record_names_the_column(kinds, kinds_art):
    record = kinds_art.batch.iloc[0].to_dict()
    assert kinds.score_record(record)["prediction"] in ("high", "mid", "low")
    with pytest.raises(RowError) as err:
        kinds.score_record({**record, "plan": "gold"})
    assert err.value.column == "plan" and err.value.rule == "unseen-category"
    assert str(err.value).startswith(f"The record (id '{record['account']}') cannot be scored: "
                                     "column 'plan': a category never seen in training")


# -- what the model takes, probed at packaging ----------------------------------------------
def test_packaging_probes_what_the_model_takes_and_warns_in_words(kinds_art):
    m = json.loads((kinds_art.path / "nbprod.json").read_text())
    cols = m["row_rules"]["columns"]
    assert m["row_rules"]["probed_rows"] == 5
    assert {c: v["takes_missing"] for c, v in cols.items()} == {
        "usage": False, "tenure": False, "plan": False, "region": True, "active": False,
        "since": False}
    assert {c: v["takes_unseen"] for c, v in cols.items()} == {
        "usage": None, "tenure": None, "plan": False, "region": True, "active": None,
        "since": None}
    assert "Found unknown categories" in cols["plan"]["unseen_error"]
    assert "Input X contains NaN" in cols["usage"]["missing_error"]
    checks = {c["name"]: c for c in m["checks"]}
    missing = checks["row-rules:missing"]
    assert missing["status"] == "warn"
    assert missing["details"]["columns"] == ["usage", "tenure", "plan", "active", "since"]
    assert missing["message"].startswith(
        "The model cannot take a missing value in 'usage', 'tenure', 'plan', 'active', 'since', "
        "which had none in training. In production a row with a missing value there is rejected")
    unseen = checks["row-rules:unseen-category"]
    assert unseen["status"] == "warn" and unseen["details"]["columns"] == ["plan"]
    assert "a row with a new category there is rejected" in unseen["message"]
    # recorded in the session like any other check, and shown with the package result
    assert kinds_art.session.checks["row-rules:unseen-category"].status == "warn"
    assert "WARN  row-rules:unseen-category" in repr(kinds_art.result)


def _hgb_session():
    """A model that takes what the kinds model cannot: HistGradientBoosting (NaN natively) behind
    an encoder that maps unknown categories to -1."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    data = kinds_frame(400, 3)
    s = nbprod.Session("kinds-hgb")
    s.snapshot(data, role="train", target="label", id="account")
    s.features(kinds_features)
    enc = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                         encoded_missing_value=-2)
    pre = ColumnTransformer([("cat", enc, ["plan", "region"])], remainder="passthrough")
    model = make_pipeline(pre, HistGradientBoostingClassifier(max_iter=20, random_state=0))
    model.fit(kinds_features(data.drop(columns=["label", "account"])), data["label"])
    s.model(model)
    return s


def test_a_model_that_takes_nan_and_unseen_categories_gets_no_warning():
    from nbprod.capture.row_rules import apply_row_rules

    s = _hgb_session()
    live = s.live_scorer()
    rules = apply_row_rules(s, live)
    assert all(c["takes_missing"] for c in rules["columns"].values())
    assert rules["columns"]["plan"]["takes_unseen"] is True
    assert not [n for n in s.checks if n.startswith("row-rules")]
    # so such rows are scored, and flagged where training never had them
    batch = kinds_frame(50, 4).drop(columns=["label"])
    bad = corrupt(corrupt(batch, "usage", np.nan, row=1), "plan", "gold", row=2)
    scored = live.score_detailed(bad)
    assert len(scored.output) == len(bad)
    t = scored.issues.table()
    assert ("usage", "missing", "flagged") in set(zip(t["column"], t["rule"], t["action"],
                                                      strict=True))
    assert ("plan", "unseen-category", "flagged") in set(zip(t["column"], t["rule"], t["action"],
                                                             strict=True))


def test_an_artifact_without_row_rules_scores_with_conservative_defaults(kinds_art, tmp_path):
    from .artifacts import copy_artifact

    root = copy_artifact(kinds_art, tmp_path / "old")
    m = json.loads((root / "nbprod.json").read_text())
    m.pop("row_rules")  # as written before the probe existed (format_version 1)
    (root / "nbprod.json").write_text(json.dumps(m))
    old = nbprod.load(root)
    assert not old.scorer.takes.probed
    bad = corrupt(corrupt(kinds_art.batch, "usage", np.nan, row=1), "plan", "gold", row=2)
    scored = old.score_detailed(bad)
    t = scored.issues.table().set_index("row")
    # NaN where training had none: rejected; an unseen plan: the encoder fails, the safety net
    # isolates the row and rejects it as a model error
    assert (t.loc[1, "rule"], t.loc[1, "action"]) == ("missing", "rejected")
    plan = scored.issues.table().query("row == 2")
    assert set(zip(plan["rule"], plan["action"], strict=True)) == {
        ("unseen-category", "flagged"), ("model-error", "rejected")}
    assert "Found unknown categories" in plan.query("rule == 'model-error'")["detail"].iloc[0]
    assert len(scored.output) == len(bad) - 2


# -- the safety net: rows the model fails on --------------------------------------------------
def test_rows_the_feature_function_fails_on_are_isolated_and_rejected(kinds, kinds_art):
    from dataclasses import replace

    calls = []

    def picky_features(df):
        calls.append(len(df))
        if (df["tenure"] == 13).any():
            raise ValueError("tenure 13 is not supported")
        return kinds_features(df)

    scorer = replace(kinds.scorer, feature_fn=picky_features)
    batch = kinds_art.batch
    bad_rows = np.flatnonzero(batch["tenure"].to_numpy() == 13)
    assert 0 < len(bad_rows) < 10
    scored = scorer.score_detailed(batch)
    t = scored.issues.table().query("rule == 'model-error'")
    assert t["row"].tolist() == bad_rows.tolist()
    assert set(t["action"]) == {"rejected"} and t["column"].isna().all()
    assert t["detail"].iloc[0] == ("the feature function picky_features() raised ValueError: "
                                   "tenure 13 is not supported")
    keep = np.setdiff1d(np.arange(len(batch)), bad_rows)
    pd.testing.assert_frame_equal(scored.output, kinds.score(batch.iloc[keep]))
    assert len(calls) < 2 * len(bad_rows) * np.log2(len(batch)) + 3  # bisection, not row by row
    with pytest.raises(RowError) as err:  # errors="raise" names the first such row
        scorer.score(batch)
    assert err.value.rule == "model-error" and err.value.row == bad_rows[0]


def test_a_feature_function_broken_for_every_row_is_one_batch_error(kinds):
    from dataclasses import replace

    calls = []

    def broken(df):
        calls.append(len(df))
        return df["no_such_column"]

    batch = kinds_frame(5000, 6).drop(columns=["label"])
    scorer = replace(kinds.scorer, feature_fn=broken)
    with pytest.raises(FeatureError, match=r"^The feature function broken\(\) raised KeyError"):
        scorer.score_detailed(batch)
    assert len(calls) < 3 * MAX_MODEL_ERROR_ROWS  # not one call per row


def test_a_model_that_overflows_on_a_row_rejects_that_row():
    """A real regressor that returns inf beyond its domain: the output is not scored."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import LinearRegression

    from nbprod.capture.row_rules import apply_row_rules

    data = kinds_frame(300, 7)[["account", "usage"]]
    data = data.assign(spend=np.exp(data["usage"] / 10))
    s = nbprod.Session("overflow")
    s.snapshot(data, role="train", target="spend", id="account")

    def usage_only(df):
        return df[["usage"]]

    s.features(usage_only)
    s.model(TransformedTargetRegressor(LinearRegression(), func=np.log, inverse_func=np.exp,
                                       check_inverse=False).fit(data[["usage"]], data["spend"]))
    live = s.live_scorer()
    apply_row_rules(s, live)
    batch = data.drop(columns=["spend"]).head(20).copy()
    batch.loc[4, "usage"] = 9000.0  # out of range, not absurd; exp(900) overflows
    with np.errstate(over="ignore"):
        scored = live.score_detailed(batch)
    t = scored.issues.table().query("row == 4")
    assert set(zip(t["rule"], t["action"], strict=True)) == {("out-of-range", "flagged"),
                                                             ("model-error", "rejected")}
    assert "non-finite output" in t.query("rule == 'model-error'")["detail"].iloc[0]
    assert len(scored.output) == 19 and np.isfinite(scored.output["prediction"]).all()


# -- files, summary and the review queue -----------------------------------------------------
def test_execute_writes_issues_and_counts_and_the_review_queue_shows_flagged_rows(kinds_art,
                                                                                   tmp_path):
    from nbprod.jobs import run as nbrun

    bad = corrupt(kinds_art.batch, "usage", "abc", row=1)
    bad = corrupt(bad, "tenure", 100, row=4)  # flagged
    bad = corrupt(bad, "plan", "gold", row=6)
    bad.to_csv(tmp_path / "in.csv", index=False)
    run = nbrun.execute(input_path=str(tmp_path / "in.csv"),
                             output_path=str(tmp_path / "preds.parquet"),
                             summary_path=str(tmp_path / "s.json"),
                             artifact_path=str(kinds_art.path), log_to_mlflow=False)
    s = json.loads((tmp_path / "s.json").read_text())
    assert (s["rows_in"], s["rows"], s["rejected"]) == (250, 248, 2)
    assert s["flagged"] >= 1 and s["issues_path"] == str(tmp_path / "preds.issues.parquet")
    check = next(c for c in s["checks"] if c["name"] == "input:rows")
    assert check["status"] == "warn" and check["threshold"] == 0.01  # 0.8% <= 1%
    assert check["message"].startswith("2 of 250 rows rejected, not scored (0.8%): usage type 1, "
                                       "plan unseen-category 1; ")
    assert "tenure out-of-range 1" in check["message"]
    issues = pd.read_parquet(tmp_path / "preds.issues.parquet")
    assert list(issues.columns) == ["row", "account", "column", "value", "rule", "action", "detail"]
    assert issues.query("action == 'rejected'")["row"].tolist() == [1, 6]
    preds = pd.read_parquet(tmp_path / "preds.parquet")
    assert preds["account"].tolist() == bad["account"].drop(index=[1, 6]).tolist()
    # the report lists the first issues
    from nbprod.jupyter import report

    html = report.checks_table(run).html
    assert "Row issues" in html and "gold" in html
    assert "248 of 250 rows" in report.verdict(run).text

    # the queue from the files alone: flagged inputs, mapped to the right rows
    q = nbprod.review(predictions=tmp_path / "preds.parquet", artifact=kinds_art.path,
                      feedback=tmp_path / "fb.parquet", limit=None)
    items = q.items.set_index("id")
    flagged_ids = set(issues.query("action == 'flagged'")["account"])
    assert flagged_ids <= set(items.index)
    row4 = items.loc[bad.loc[4, "account"]]
    assert "flagged_input" in row4["reasons"]
    assert "tenure out-of-range (outside the training range [0, 59])" in row4["why"]
    assert row4["position"] == 3  # the 4th scored row: row 1 was rejected before it
    # the same from the live run
    live = nbprod.review(run, feedback=tmp_path / "fb2.parquet", limit=None)
    assert set(live.items["id"]) == set(q.items["id"])


def test_a_clean_run_writes_a_header_only_issues_file(kinds_art, tmp_path):
    from nbprod.jobs import run as nbrun

    kinds_art.batch.iloc[:40].to_csv(tmp_path / "in.csv", index=False)
    run = nbrun.execute(input_path=str(tmp_path / "in.csv"),
                             output_path=str(tmp_path / "p.csv.gz"),
                             artifact_path=str(kinds_art.path), log_to_mlflow=False)
    text = pd.read_csv(tmp_path / "p.issues.csv.gz")
    assert list(text.columns) == ["row", "account", "column", "value", "rule", "action", "detail"]
    assert len(text) == len(run.scored.issues)
    s = run.summary()
    assert s["rejected"] == 0 and s["rows_in"] == s["rows"] == 40
    assert next(c for c in run.checks if c.name == "input:rows").status == "pass"


def test_max_rejected_turns_rejections_into_an_alert(kinds_art, tmp_path):
    from nbprod.cli import EXIT_ALERT, EXIT_OK, EXIT_USAGE, exit_code
    from nbprod.jobs import run as nbrun

    bad = kinds_art.batch.copy()
    bad.loc[:4, "account"] = None  # 5 of 250: 2%
    bad.to_csv(tmp_path / "in.csv", index=False)

    def go(**options):
        return nbrun.execute(input_path=str(tmp_path / "in.csv"),
                                  output_path=str(tmp_path / "p.csv"),
                                  artifact_path=str(kinds_art.path), log_to_mlflow=False, **options)

    run = go()
    check = next(c for c in run.checks if c.name == "input:rows")
    assert (check.status, run.status, exit_code(run)) == ("fail", "alert", EXIT_ALERT)
    assert "above max_rejected 1.0%" in check.message and "account null-id 5" in check.message
    assert exit_code(go(max_rejected=0.05)) == EXIT_OK
    for wrong in (2, -0.1, "many", True):
        with pytest.raises(NbprodUsageError, match="max_rejected must be a share") as err:
            go(max_rejected=wrong)
        assert exit_code(err.value) == EXIT_USAGE
    with pytest.raises(NbprodUsageError, match="issues_path .* is the same file as output_path"):
        go(issues_path=str(tmp_path / "p.csv"))


def test_id_and_category_rules_on_other_dtypes():
    """Integer ids (the sort-based uniqueness proof), float ids with NaN, categorical inputs."""
    from nbprod.core.profile import frame_profile
    from nbprod.core.schema import Schema, conform_rows

    train = pd.DataFrame({"size": pd.Categorical(["s", "m", "l"] * 20), "n": np.arange(60.0)})
    schema, profile = Schema.infer(train), frame_profile(train)

    def issues(raw, ids):
        raw = raw.assign(key=ids)
        X, lost = conform_rows(raw, schema)
        t = rows.validate(raw, X, lost, schema, profile=profile, id_column="key").table()
        return sorted(zip(t["row"], t["column"], t["rule"], t["action"], strict=True))

    raw = train.head(6).copy()
    assert issues(raw, [5, 3, 9, 1, 2, 4]) == []  # unsorted, unique
    assert issues(raw, [5, 3, 9, 3, 2, 5]) == [(3, "key", "duplicate-id", "flagged"),
                                               (5, "key", "duplicate-id", "flagged")]
    assert issues(raw, [1.0, np.nan, 3.0, 1.0, 5.0, 6.0]) == [
        (1, "key", "null-id", "rejected"), (3, "key", "duplicate-id", "flagged")]
    raw["size"] = pd.Categorical(["s", "xl", "m", None, "xl", "l"])
    assert issues(raw, list(range(6))) == [(1, "size", "unseen-category", "flagged"),
                                           (3, "size", "missing", "rejected"),
                                           (4, "size", "unseen-category", "flagged")]


def test_compare_leaves_out_the_rows_a_model_rejects(kinds_art, tmp_path):
    from nbprod.lifecycle.compare import compare

    bad = corrupt(kinds_art.batch, "plan", "gold", row=5)
    bad.to_csv(tmp_path / "data.csv", index=False)
    labels = kinds_art.labels.copy()
    labels.to_csv(tmp_path / "labels.csv", index=False)
    result = compare(kinds_art.path, kinds_art.path, tmp_path / "data.csv",
                     labels=tmp_path / "labels.csv", record=False)
    assert result.rows == len(bad) - 1 and result.agreement == 1.0
    pair = result.metrics[result.metric]
    assert pair["champion"] == pair["challenger"]
