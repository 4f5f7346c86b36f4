"""Monitoring depth on real components, in-process: joint drift, category shares, performance
estimated without labels, and chunked partials that merge to the one-piece result."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbprod.core.profile import frame_profile
from nbprod.monitoring import depth, estimation, joint
from nbprod.monitoring import drift as dr

CUTS = ["Fair", "Good", "Very Good", "Premium", "Ideal"]
CUT_SHARES = [0.03, 0.09, 0.22, 0.26, 0.40]


def stones(n: int, seed: int, cut_shares: list[float] = CUT_SHARES) -> pd.DataFrame:
    """Diamond-like rows: x, y, z follow carat and depth as in real stones, rounded like them."""
    rng = np.random.default_rng(seed)
    cut = rng.choice(len(CUTS), size=n, p=cut_shares)
    carat = np.round(np.clip(np.exp(rng.normal(-0.4, 0.55, n) + 0.3 * (cut == 0)), 0.2, 5.0), 2)
    depth_ = np.round(np.where(cut == 0, rng.normal(64.0, 3.6, n), rng.normal(61.7, 1.2, n)), 1)
    table = np.round(rng.normal(57.5, 2.0, n), 0)
    x = 6.42 * carat ** (1 / 3) * (1 + rng.normal(0, 0.012, n)) * (61.7 / depth_) ** (1 / 3)
    y = x * (1 + rng.normal(0, 0.008, n))
    z = x * depth_ / 100 * (1 + rng.normal(0, 0.008, n))
    return pd.DataFrame({"carat": carat, "cut": pd.array(np.array(CUTS)[cut], dtype="str"),
                         "depth": depth_, "table": table, "x": np.round(x, 2), "y": np.round(y, 2),
                         "z": np.round(z, 2)})


@pytest.fixture(scope="module")
def reference():
    train = stones(5000, 1)
    columns = joint.numeric_columns(train)
    return {"profile": frame_profile(train), "joint": joint.build(train, columns)}


def _columns_drifted(reference, batch: pd.DataFrame) -> list[str]:
    cols = dr.compare(reference["profile"], dr.frame_batch_profile(batch, reference["profile"]))
    return [c for c, v in cols.items() if v["drifted"]]


def test_joint_only_shift_is_found_with_no_column_drifted(reference):
    ref = reference["joint"]
    assert ref["columns"] == ["carat", "depth", "table", "x", "y", "z"] and ref["k"] < 6
    batch = stones(1000, 2)
    # (x, y, z) moved to other stones: every column keeps its distribution, the rows do not
    batch[["x", "y", "z"]] = batch[["x", "y", "z"]].to_numpy()[np.random.default_rng(3).permutation(1000)]
    assert _columns_drifted(reference, batch) == []
    result = joint.finalize(ref, joint.partial(batch, ref))
    assert result.drifted and result.statistic > 10 * result.threshold
    assert "farther from the training data's principal components" in result.reason
    assert set(sorted(result.contributions, key=result.contributions.get)[-3:]) & {"x", "y", "z", "carat"}
    check = depth.depth_checks({"multivariate": result.to_dict()})[0]
    assert check.name == "drift:multivariate" and check.status == "fail"


@pytest.mark.parametrize("rows", [100, 1000])
def test_unchanged_batch_is_quiet(reference, rows):
    batch = stones(rows, 10 + rows)
    assert _columns_drifted(reference, batch) == []
    result = joint.finalize(reference["joint"], joint.partial(batch, reference["joint"]))
    assert not result.drifted and result.statistic < result.threshold
    assert "keep the training data's joint structure" in result.reason
    cut = dr.compare(reference["profile"], dr.frame_batch_profile(batch, reference["profile"]))["cut"]
    assert cut["share_changes"] == [] and not any(c["drifted"] for c in cut["categories"].values())


def test_tripled_rare_category_is_found(reference):
    shares = [0.09, 0.09, 0.22, 0.26, 0.34]  # Fair 3% -> 9%, taken from Ideal
    batch = stones(2000, 4, cut_shares=shares)
    cut = dr.compare(reference["profile"], dr.frame_batch_profile(batch, reference["profile"]))["cut"]
    assert cut["psi"] < 0.1  # under PSI's minimum effect: the column test alone misses it
    fair = cut["categories"]["Fair"]
    assert fair["drifted"] and fair["ratio"] > 2 and abs(fair["log_ratio"]) >= fair["threshold"]
    assert 0.02 < fair["reference_share"] < 0.04 and 0.075 < fair["share"] < 0.105
    said = f"Fair: {fair['reference_share']:.1%} -> {fair['share']:.1%}"  # "Fair: 2.8% -> 9.0%"
    assert cut["drifted"] and cut["share_changes"][0] == said
    assert f"category share ({said}" in cut["reasons"][-1]
    assert not cut["categories"]["Ideal"]["drifted"]  # 40% -> 34% is under x1.5


def test_share_wobble_of_a_common_category_never_counts():
    from nbprod.monitoring.shares import category_shares

    # 40% -> 40.2% with 10^8 rows on each side: beyond noise, far under the x1.5 floor
    ref, cur = np.array([40_000_000, 60_000_000]), np.array([40_200_000, 59_800_000])
    cats = category_shares(["a", "b"], ref, cur, 0, 0)
    assert cats["a"]["p_value"] < 1e-6 and not cats["a"]["drifted"] and not cats["b"]["drifted"]


def test_partials_merge_to_the_one_piece_result(reference, classifier):
    ref = reference["joint"]
    batch = stones(3001, 5)
    whole = joint.partial(batch, ref)
    parts = [joint.partial(batch.iloc[i:i + 337], ref) for i in range(0, len(batch), 337)]
    merged = parts[0]
    for p in parts[1:]:
        merged = joint.merge(merged, p)
    assert merged["counts"] == whole["counts"] and merged["rows"] == whole["rows"]
    assert joint.finalize(ref, merged).statistic == joint.finalize(ref, whole).statistic
    # the estimate: integer counts per score bin and predicted class
    est_ref, outputs, _ = classifier["reference"], classifier["outputs"](0.0, 3001), None
    one = depth.DepthPartial(estimation=estimation.partial(outputs, est_ref))
    chunks = [depth.DepthPartial(estimation=estimation.partial(outputs.iloc[i:i + 500], est_ref))
              for i in range(0, len(outputs), 500)]
    combined = chunks[0]
    for c in chunks[1:]:
        combined = combined.merge(c)
    assert combined.estimation == one.estimation
    a = estimation.finalize(est_ref, combined.estimation).to_dict()
    assert a == estimation.finalize(est_ref, one.estimation).to_dict()
    # category shares come from the profiles' frequencies, which merge exactly
    prof = reference["profile"]["cut"]
    halves = [dr.batch_profile(batch["cut"].iloc[:1500], prof), dr.batch_profile(batch["cut"].iloc[1500:], prof)]
    assert (dr.column_drift(prof, dr.merge(*halves))["categories"]
            == dr.column_drift(prof, dr.batch_profile(batch["cut"], prof))["categories"])


# -- performance without labels ----------------------------------------------------------------
@pytest.fixture(scope="module")
def classifier():
    from sklearn.linear_model import LogisticRegression

    # a population whose P(y | x) the model can represent: calibration given the score then
    # carries over to a covariate shift, the condition the estimate assumes (a misspecified model
    # can miss by more: see docs/monitoring.md)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60_000, 8)) @ (np.eye(8) + 0.3 * rng.normal(size=(8, 8)))
    logit = X @ np.array([0.9, -0.7, 0.5, 0.0, 0.3, 0.0, -0.4, 0.2]) + 0.3
    y = (rng.random(60_000) < 1 / (1 + np.exp(-logit))).astype(int)
    model = LogisticRegression(max_iter=1000).fit(X[:5000], y[:5000])
    pool_X, pool_y = X[7000:], y[7000:]
    z = (pool_X[:, 0] - pool_X[:, 0].mean()) / pool_X[:, 0].std()

    def frame(rows):
        proba = model.predict_proba(rows)
        return pd.DataFrame({"prediction": model.predict(rows), "proba_0": proba[:, 0], "proba_1": proba[:, 1]})

    def pick(tilt: float, n: int) -> np.ndarray:
        """Rows drawn with weight exp(tilt * z(x0)): a covariate shift, P(y | x) unchanged."""
        w = np.exp(tilt * z)
        return np.random.default_rng(7).choice(len(pool_X), n, replace=False, p=w / w.sum())

    ref = estimation.build_classifier(frame(X[5000:7000]), y[5000:7000], [0, 1])
    return {"reference": ref, "outputs": lambda tilt, n: frame(pool_X[pick(tilt, n)]),
            "labels": lambda tilt, n: pool_y[pick(tilt, n)], "frame": frame, "pool": (pool_X, pool_y)}


@pytest.mark.parametrize("tilt", [0.0, 1.0], ids=["unchanged", "covariate-shift"])
def test_estimated_roc_auc_is_within_005_of_the_realised(classifier, tilt):
    from sklearn.metrics import accuracy_score, roc_auc_score

    ref = classifier["reference"]
    assert ref["calibration"]["kind"] in estimation.CALIBRATIONS and set(ref["calibration_choice"]) == {
        "none", "sigmoid", "isotonic"}
    outputs, y = classifier["outputs"](tilt, 1000), classifier["labels"](tilt, 1000)
    est = estimation.finalize(ref, estimation.partial(outputs, ref))
    realised = roc_auc_score(y, outputs["proba_1"])
    auc = est.metrics["roc_auc"]
    assert abs(auc.value - realised) < 0.05
    assert auc.lower <= realised <= auc.upper
    assert abs(est.metrics["accuracy"].value - accuracy_score(y, outputs["prediction"])) < 0.05
    assert est.rows == 1000 and not est.dropped and "no concept drift" in est.assumption


def test_an_estimated_drop_beyond_tolerance_warns_and_never_fails(classifier):
    ref = classifier["reference"]
    pool_X, _ = classifier["pool"]
    out = classifier["frame"](pool_X[:20_000])
    hard = out[(out["proba_1"] > 0.35) & (out["proba_1"] < 0.65)].iloc[:1000]  # rows near the boundary
    est = estimation.finalize(ref, estimation.partial(hard, ref)).to_dict()
    assert "roc_auc" in est["dropped"] and est["metrics"]["roc_auc"]["dropped"]
    assert est["metrics"]["roc_auc"]["upper"] < ref["validation"]["roc_auc"] - est["metrics"]["roc_auc"]["tolerance"]
    result = {"estimated_performance": est}
    depth.reliability(result, {"dataset": {"drifted": True}})
    (check,) = depth.depth_checks(result)
    assert check.name == "estimated:performance" and check.status == "warn"
    assert "ROC AUC" in check.message and "the inputs moved" in check.message


def test_regressor_error_estimated_from_the_validation_residuals():
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(12_000, 3))
    y = X @ [2.0, -1.0, 0.5] + rng.normal(0, 0.5 + 0.5 * np.abs(X[:, 0]))  # error grows with |x0|
    model = LinearRegression().fit(X[:4000], y[:4000])
    ref = estimation.build_regressor(model.predict(X[4000:6000]), y[4000:6000])
    batch = slice(6000, 7000)
    pred = pd.DataFrame({"prediction": model.predict(X[batch])})
    est = estimation.finalize(ref, estimation.partial(pred, ref))
    mae = float(np.mean(np.abs(y[batch] - pred["prediction"])))
    assert abs(est.metrics["mae"].value - mae) / mae < 0.1
    assert est.metrics["mae"].lower <= mae <= est.metrics["mae"].upper
    assert est.method.startswith("DLE") and not est.dropped
    # chunks: integer counts add exactly, the distance sums of out-of-range predictions to 1e-12
    halves = [estimation.partial(pred.iloc[:400], ref), estimation.partial(pred.iloc[400:], ref)]
    merged = estimation.merge(*halves)
    assert merged["counts"] == estimation.partial(pred, ref)["counts"]
    assert estimation.finalize(ref, merged).metrics["mae"].value == pytest.approx(est.metrics["mae"].value, rel=1e-12)
    # beyond the validation range the expected error keeps growing with the distance
    far = pd.DataFrame({"prediction": pred["prediction"] * 3})
    assert estimation.finalize(ref, estimation.partial(far, ref)).metrics["mae"].value > 1.5 * mae
    few = estimation.build_regressor(model.predict(X[:50]), y[:50])
    assert "at least 200 validation rows" in few["skipped"]


def test_statistics_absent_from_an_old_reference_and_skipped_with_their_reason():
    # an artifact packaged before these statistics: nothing in the summary, no check
    result = depth.finalize({"outputs": {}}, depth.DepthPartial())
    assert result == {"multivariate": None, "estimated_performance": None}
    assert depth.depth_checks(result) == []
    one_column = joint.build(pd.DataFrame({"a": np.arange(500.0), "b": np.ones(500)}), ["a", "b"])
    assert "at least 2 non-constant numeric" in one_column["skipped"]
    few_rows = joint.build(stones(150, 1), ["carat", "depth", "x"])
    assert "at least 200 complete training rows" in few_rows["skipped"]
    out = depth.finalize({"multivariate": few_rows}, depth.DepthPartial())
    assert out["multivariate"]["drifted"] is False and out["multivariate"]["reason"].startswith("not computed")
    (check,) = depth.depth_checks(out)
    assert check.status == "skip"
    three = pd.DataFrame({"prediction": ["a"] * 200, "proba_a": 0.5, "proba_b": 0.3, "proba_c": 0.2})
    rare = ["a"] * 150 + ["b"] * 47 + ["c"] * 3
    assert "3 of class 'c'" in estimation.build_classifier(three, rare, ["a", "b", "c"])["skipped"]


def test_multiclass_accuracy_and_macro_auc_estimated():
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score

    X, y = make_classification(n_samples=9000, n_features=10, n_informative=6, n_classes=4,
                               n_clusters_per_class=1, flip_y=0.05, random_state=0)
    model = LogisticRegression(max_iter=1000).fit(X[:5000], y[:5000])

    def frame(rows):
        proba = model.predict_proba(rows)
        return pd.DataFrame({"prediction": model.predict(rows),
                             **{f"proba_{c}": proba[:, j] for j, c in enumerate(model.classes_)}})

    ref = estimation.build_classifier(frame(X[5000:7000]), y[5000:7000], list(model.classes_))
    assert ref["classes"] == [0, 1, 2, 3] and len(ref["per_class"]) == 4
    batch = frame(X[7000:8000])
    est = estimation.finalize(ref, estimation.partial(batch, ref))
    proba = batch[[f"proba_{c}" for c in model.classes_]].to_numpy()
    assert abs(est.metrics["roc_auc_ovr"].value - roc_auc_score(y[7000:8000], proba, multi_class="ovr")) < 0.05
    assert abs(est.metrics["accuracy"].value - np.mean(batch["prediction"] == y[7000:8000])) < 0.05
    halves = estimation.merge(estimation.partial(batch.iloc[:300], ref), estimation.partial(batch.iloc[300:], ref))
    assert halves == estimation.partial(batch, ref)
    _same_estimate_without_stored_refits(ref, batch)


def _same_estimate_without_stored_refits(ref: dict, batch: pd.DataFrame) -> None:
    """A reference written before packaging stored the sigmoid refits (``bootstrap``) refits
    them at scoring, to exactly the same estimate and interval."""
    scores = ref.get("per_class", [ref])
    assert any("bootstrap" in r for r in scores)  # the refits were made once, at packaging
    for r in scores:
        if "bootstrap" in r:
            assert len(r["bootstrap"]) == estimation.BOOTSTRAP
    old = {**ref, "per_class": [{k: v for k, v in r.items() if k != "bootstrap"}
                                for r in ref["per_class"]]} if "per_class" in ref else \
        {k: v for k, v in ref.items() if k != "bootstrap"}
    part = estimation.partial(batch, ref)
    assert estimation.finalize(ref, part).to_dict() == estimation.finalize(old, part).to_dict()


def test_sigmoid_refits_stored_at_packaging_give_the_estimate_of_refitting(classifier):
    ref = classifier["reference"]
    forced = {**ref, "calibration": estimation.fit_calibration(
        "sigmoid", np.asarray(ref["scores"]), (np.asarray(ref["valid_positives"])
                                               > np.asarray(ref["valid_counts"]) / 2).astype(int))}
    forced["bootstrap"] = estimation.bootstrap_calibrations(
        {k: v for k, v in forced.items() if k != "bootstrap"}, np.random.default_rng(ref["seed"]))
    _same_estimate_without_stored_refits(forced, classifier["outputs"](1.0, 500))
