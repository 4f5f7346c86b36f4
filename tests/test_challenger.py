"""Shadow and A/B scoring: a challenger beside the champion through the one scoring path.

Four small artifacts are packaged once for the module: a weak and a strong classifier with an id
(the strong one also reads ``x3``, so it rejects rows where ``x3`` is missing), and two id-less
regressors whose predictions differ by exactly 1.5 (the challenger was fitted on the target
plus 1.5)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import nbprod
from nbprod import cli
from nbprod.core.losses import row_losses
from nbprod.exceptions import IntegrityError, NbprodUsageError
from nbprod.jobs import run as nbrun
from nbprod.jobs.challenger import arm_of, canonical_id

N = 1500  # rows in the new batch


def _data(n: int, seed: int, start: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2, x3 = rng.normal(0, 1, n), rng.normal(0, 1, n), rng.normal(0, 1, n)
    y = ((x1 - x2 + rng.logistic(size=n) * 0.5) > 0).astype(int)
    return pd.DataFrame({"order_id": np.arange(start, start + n), "x1": x1, "x2": x2, "x3": x3,
                         "y": y, "amount": 3 * x1 - 2 * x2 + rng.normal(0, 0.5, n)})


def _two(df):
    return df[["x1", "x2"]]


def _three(df):
    return df[["x1", "x2", "x3"]]


def _package(root, features, model, target, keep, *, shift=0.0, with_id=True):
    train, valid = _data(600, 1), _data(200, 2, start=10_000)
    cols = (["order_id"] if with_id else []) + keep + [target]
    train, valid = train[cols], valid[cols]
    s = nbprod.Session("ab_orders" if with_id else "ab_amounts")
    ident = {"id": "order_id"} if with_id else {}
    s.snapshot(train, role="train", target=target, **ident)
    s.snapshot(valid, role="valid", target=target, **ident)
    s.features(features)
    s.model(model.fit(features(train[keep]), train[target] + shift if shift else train[target]))
    s.package(root, log_to_mlflow=False)
    return str(root)


@pytest.fixture(scope="module")
def arts(tmp_path_factory):
    from sklearn.linear_model import LinearRegression, LogisticRegression

    d = tmp_path_factory.mktemp("challenger")
    return {
        "weak": _package(d / "weak", _two, LogisticRegression(C=0.002), "y", ["x1", "x2"]),
        "strong": _package(d / "strong", _three, LogisticRegression(), "y", ["x1", "x2", "x3"]),
        "reg": _package(d / "reg", _two, LinearRegression(), "amount", ["x1", "x2"],
                        with_id=False),
        "reg_up": _package(d / "reg_up", _two, LinearRegression(), "amount", ["x1", "x2"],
                           shift=1.5, with_id=False),
    }


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """N new rows (x3 missing in 3 of them), as files: input, labels."""
    d = tmp_path_factory.mktemp("challenger-batch")
    data = _data(N, 5, start=50_000)
    data.loc[[3, 17, 400], "x3"] = np.nan
    data.drop(columns=["y", "amount"]).to_csv(d / "in.csv", index=False)
    data[["order_id", "y"]].to_csv(d / "labels.csv", index=False)
    data[["amount"]].to_csv(d / "amounts.csv", index=False)
    return {"dir": d, "data": data, "input": str(d / "in.csv"), "labels": str(d / "labels.csv"),
            "amounts": str(d / "amounts.csv")}


def _run(art, inp, out, labels=None, log_to_mlflow=False, **kw):
    return nbrun.execute(input_path=str(inp), output_path=str(out), artifact_path=art,
                         labels_path=labels, log_to_mlflow=log_to_mlflow, **kw)


def test_shadow_leaves_the_output_alone_and_reports_both_models_as_their_own_runs(
        arts, batch, tmp_path):
    own = _run(arts["weak"], batch["input"], tmp_path / "champion.csv", batch["labels"],
               chunk_rows=700)
    theirs = _run(arts["strong"], batch["input"], tmp_path / "challenger.csv", batch["labels"],
                  chunk_rows=700)
    run = _run(arts["weak"], batch["input"], tmp_path / "shadowed.csv", batch["labels"],
               chunk_rows=700, shadow=arts["strong"])
    assert (tmp_path / "shadowed.csv").read_bytes() == (tmp_path / "champion.csv").read_bytes()
    assert (tmp_path / "shadowed.issues.csv").read_bytes() == \
        (tmp_path / "champion.issues.csv").read_bytes()
    sh = json.loads(json.dumps(run.summary()))["shadow"]
    metrics = {k: v["value"] for k, v in own.performance["metrics"].items()}
    assert sh["champion"]["metrics"] == metrics and sh["champion"]["rows"] == N
    assert sh["champion"]["prediction"] == own.summary()["prediction"]
    assert sh["challenger"]["metrics"] == {k: v["value"] for k, v in
                                           theirs.performance["metrics"].items()}
    assert sh["challenger"]["prediction"] == theirs.summary()["prediction"]
    assert sh["challenger"]["rows"] == N - 3 and sh["challenger"]["rejected"] == 3
    assert sh["unpaired"]["rows"] == 3 and "x3" in sh["unpaired"]["reason"]
    # the disagreement and the loss statistics, recomputed from the two runs' own outputs
    a = pd.read_csv(tmp_path / "champion.csv")
    b = pd.read_csv(tmp_path / "challenger.csv")
    both = a.merge(b, on="order_id", suffixes=("_a", "_b")).merge(batch["data"][["order_id", "y"]])
    d = sh["disagreement"]
    assert d["rows"] == len(both) == N - 3
    assert d["label_differs"] == int((both["prediction_a"] != both["prediction_b"]).sum())
    gap = (both["proba_1_a"] - both["proba_1_b"]).abs()
    assert d["probability_abs_diff_mean"] == pytest.approx(gap.mean(), abs=1e-12)
    assert d["probability_abs_diff_max"] == pytest.approx(gap.max(), abs=1e-12)
    la = row_losses(both["y"], both[["proba_0_a", "proba_1_a"]], task="classifier", classes=[0, 1])
    lb = row_losses(both["y"], both[["proba_0_b", "proba_1_b"]], task="classifier", classes=[0, 1])
    ev = sh["evidence"]
    assert ev["loss"] == "brier" and ev["paired"]["n"] == N - 3
    assert ev["paired"]["mean"] == pytest.approx((lb - la).mean(), abs=1e-12)
    assert ev["paired"]["mean"] < -0.05  # the strong model is the better one


def test_shadow_regressor_planted_difference_without_id(arts, batch, tmp_path):
    run = _run(arts["reg"], batch["input"], tmp_path / "out.parquet", batch["amounts"],
               chunk_rows=1100, shadow=arts["reg_up"])
    d = run.summary()["shadow"]["disagreement"]
    assert d["rows"] == N
    for k in ("abs_diff_mean", "abs_diff_p95", "abs_diff_max"):
        assert d[k] == pytest.approx(1.5, abs=1e-9)
    ev = run.summary()["shadow"]["evidence"]
    y = batch["data"]["amount"].to_numpy()
    pred = pd.read_parquet(tmp_path / "out.parquet")["prediction"].to_numpy()
    lb, la = (pred + 1.5 - y) ** 2, (pred - y) ** 2
    assert ev["loss"] == "squared_error" and ev["paired"]["n"] == N
    assert ev["paired"]["mean"] == pytest.approx((lb - la).mean(), rel=1e-9)


def test_ab_assignment_is_stable_near_the_split_and_serves_each_models_own_prediction(
        arts, batch, tmp_path):
    data = batch["data"].drop(columns=["y", "amount"])
    shuffled = tmp_path / "shuffled.parquet"
    data.sample(frac=1.0, random_state=3).to_parquet(shuffled, index=False)
    one = _run(arts["weak"], batch["input"], tmp_path / "one.csv", batch["labels"],
               chunk_rows=640, ab=arts["strong"], ab_split=0.3)
    _run(arts["weak"], shuffled, tmp_path / "two.csv", chunk_rows=1777, ab=arts["strong"],
         ab_split=0.3)
    a, b = pd.read_csv(tmp_path / "one.csv"), pd.read_csv(tmp_path / "two.csv")
    assert len(a) == len(b) == N
    arms = a.set_index("order_id")["served_by"]
    assert arms.equals(b.set_index("order_id")["served_by"].reindex(arms.index))
    expected = arm_of(a["order_id"], 0.3)
    fallback = a["order_id"].isin(batch["data"].loc[[3, 17, 400], "order_id"]) & expected
    assert ((a["served_by"] == "challenger").to_numpy() == (expected & ~fallback)).all()
    n, share = N, 0.3
    assert abs(expected.sum() - n * share) < 4 * np.sqrt(n * share * (1 - share))
    champion = nbprod.load(arts["weak"]).score(data, errors="reject").set_index("order_id")
    challenger = nbprod.load(arts["strong"]).score(data, errors="reject").set_index("order_id")
    served = a.set_index("order_id")
    for arm, model in (("champion", champion), ("challenger", challenger)):
        rows = served[served["served_by"] == arm]
        np.testing.assert_allclose(rows["proba_1"], model.loc[rows.index, "proba_1"], rtol=1e-12)
        assert (rows["prediction"] == model.loc[rows.index, "prediction"]).all()
    ab = one.summary()["ab"]
    assert ab["challenger"]["rows"] == int((a["served_by"] == "challenger").sum())
    assert ab["champion"]["rows"] + ab["challenger"]["rows"] == N
    assert ab["fallback"]["rows"] == int(fallback.sum()) and "x3" in ab["fallback"]["reason"]
    assert set(ab["challenger"]["metrics"]) == {"roc_auc"}
    for arm in ("champion", "challenger"):
        counts = a.loc[a["served_by"] == arm, "prediction"].astype(str).value_counts().to_dict()
        assert ab[arm]["prediction"]["class_counts"] == counts
    assert ab["evidence"]["challenger"]["n"] == ab["challenger"]["rows"]


def test_arm_rule_reads_the_id_not_its_spelling():
    assert canonical_id(42) == canonical_id(42.0) == canonical_id(np.int64(42)) == "42"
    assert canonical_id(None) is None and canonical_id(float("nan")) is None
    ids = pd.Series(np.arange(20_000))
    assert (arm_of(ids, 0.25) == arm_of(ids.astype(float), 0.25)).all()
    assert (arm_of(ids, 0.25) == arm_of(ids.astype(str), 0.25)).all()
    assert not arm_of(pd.Series([None]), 0.99).any()


@pytest.mark.parametrize("split", ["0", "1.5", "ten", "1"])
def test_ab_split_outside_zero_one_is_refused(arts, batch, tmp_path, split, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["score", arts["weak"], batch["input"], "-o", str(tmp_path / "o.csv"),
                  "--ab", arts["strong"], "--ab-split", split, "--no-mlflow"])
    assert exc.value.code == 2 and "--ab-split" in capsys.readouterr().err
    with pytest.raises(NbprodUsageError, match="ab_split"):
        _run(arts["weak"], batch["input"], tmp_path / "o.csv", ab=arts["strong"], ab_split=split)


def test_bad_challenger_usage_is_refused_before_any_work(arts, batch, tmp_path, capsys):
    out = tmp_path / "o.csv"
    base = ["score", arts["reg"], batch["input"], "-o", str(out), "--no-mlflow"]
    assert cli.main([*base, "--ab", arts["reg_up"], "--ab-split", "0.2"]) == cli.EXIT_USAGE
    said = capsys.readouterr().err
    assert "--ab" in said and "no id column" in said
    with pytest.raises(NbprodUsageError, match="--ab .*no id column"):
        _run(arts["reg"], batch["input"], out, ab=arts["reg_up"], ab_split=0.2)
    assert cli.main([*base, "--shadow", arts["reg_up"], "--ab", arts["reg_up"],
                     "--ab-split", "0.2"]) == cli.EXIT_USAGE
    with pytest.raises(NbprodUsageError, match="cannot be compared"):
        _run(arts["weak"], batch["input"], out, shadow=arts["reg"])
    assert not out.exists()


def test_a_tampered_challenger_is_refused_like_a_tampered_champion(arts, batch, tmp_path, capsys):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(arts["strong"], bad)
    victim = bad / "score.ipynb"
    victim.write_bytes(victim.read_bytes().replace(b"nbprod", b"nbprud", 1))
    out = str(tmp_path / "o.csv")
    as_champion = cli.main(["score", str(bad), batch["input"], "-o", out, "--no-mlflow"])
    said = capsys.readouterr().err
    as_shadow = cli.main(["score", arts["weak"], batch["input"], "-o", out, "--no-mlflow",
                          "--shadow", str(bad)])
    assert as_shadow == as_champion == cli.EXIT_ERROR
    assert capsys.readouterr().err == said
    with pytest.raises(IntegrityError):
        _run(arts["weak"], batch["input"], out, shadow=str(bad))


def _plant_equal_runs(name: str, champion: str, challenger: str, runs: int = 2) -> None:
    """Shadow runs recorded as a scoring run records them: a challenger whose per-row loss is
    the champion's within a few thousandths."""
    from mlflow.tracking import MlflowClient

    from nbprod.tracking.runs import experiment_name

    client = MlflowClient()
    exp = client.get_experiment_by_name(experiment_name(name))
    exp_id = exp.experiment_id if exp else client.create_experiment(experiment_name(name))
    for _ in range(runs):
        run = client.create_run(exp_id, tags={
            "nbprod.kind": "score", "nbprod.digest": nbprod.load(champion).digest,
            "nbprod.challenger.digest": nbprod.load(challenger).digest,
            "nbprod.challenger.mode": "shadow"})
        for k, v in (("n", 5000), ("mean", 0.0002), ("m2", 0.5)):
            client.log_metric(run.info.run_id, f"shadow.evidence.paired.{k}", v)
        client.set_terminated(run.info.run_id)


def test_promote_follows_the_evidence_over_runs(arts, batch, tmp_path, capsys):
    from mlflow.tracking import MlflowClient

    from nbprod.tracking.registry import register

    for k in ("weak", "strong", "reg", "reg_up"):  # weak and reg become champions
        register(arts[k])
    # a clearly better challenger: one real shadow run recorded in MLflow, then promoted
    _run(arts["weak"], batch["input"], tmp_path / "a.csv", batch["labels"], log_to_mlflow=True,
         shadow=arts["strong"])
    assert cli.main(["promote", arts["strong"], "--by", "tester"]) == cli.EXIT_OK
    said = capsys.readouterr().out
    assert "evidence over 1 shadow/A/B run(s) against champion version 1" in said
    assert "shadow: better: challenger minus champion mean loss -0.1" in said
    assert "is now champion (was 1)" in said and "FORCED" not in said
    # the old champion as the challenger is worse: refused, with the numbers
    _run(arts["strong"], batch["input"], tmp_path / "b.csv", batch["labels"], log_to_mlflow=True,
         shadow=arts["weak"])
    assert cli.main(["promote", arts["weak"], "--by", "tester"]) == cli.EXIT_ERROR
    err = capsys.readouterr().err
    assert "Refusing to promote ab_orders version 1" in err and "is worse than champion" in err
    assert "paired t-test" in err and "Use --force" in err
    # an equal challenger (planted runs): refused without --force, promoted and recorded with it
    _plant_equal_runs("ab_amounts", arts["reg"], arts["reg_up"])
    assert cli.main(["promote", arts["reg_up"], "--by", "tester"]) == cli.EXIT_ERROR
    assert "is equivalent to champion version 1" in capsys.readouterr().err
    assert cli.main(["promote", arts["reg_up"], "--by", "ana", "--reason", "new data source",
                     "--force"]) == cli.EXIT_OK
    assert "FORCED" in capsys.readouterr().out
    tags = MlflowClient().get_model_version("ab_amounts", "2").tags
    assert tags["nbprod.promoted_forced"] == "True" and tags["nbprod.promoted_by"] == "ana"
    assert tags["nbprod.promoted_reason"] == "new data source"
    recorded = json.loads(tags["nbprod.promoted_evidence"])
    assert recorded["verdict"] == "equivalent" and recorded["runs"] == 2
    assert recorded["shadow"]["n"] == 10_000


def test_nbprod_score_hands_shadow_to_the_artifacts_own_notebook(arts, batch, tmp_path):
    """End to end: the flag reaches the kernel through the run options, not a notebook parameter."""
    own = _run(arts["weak"], batch["input"], tmp_path / "own.csv")
    rc = cli.main(["score", arts["weak"], batch["input"], "-o", str(tmp_path / "cli.csv"),
                   "--shadow", arts["strong"], "--labels", batch["labels"],
                   "--summary", str(tmp_path / "s.json"), "--no-mlflow"])
    assert rc == cli.EXIT_OK
    assert (tmp_path / "cli.csv").read_bytes() == (tmp_path / "own.csv").read_bytes()
    sh = json.loads((tmp_path / "s.json").read_text())["shadow"]
    assert sh["challenger"]["rows"] == N - 3 and sh["unpaired"]["rows"] == 3
    assert sh["champion"]["prediction"] == own.summary()["prediction"]
    assert sh["evidence"]["paired"]["n"] == N - 3


def test_a_challenger_that_cannot_score_the_batch_costs_the_champion_nothing(arts, batch, tmp_path):
    inp = tmp_path / "no_x3.csv"
    pd.read_csv(batch["input"]).drop(columns=["x3"]).to_csv(inp, index=False)
    run = _run(arts["weak"], inp, tmp_path / "shadowed.csv", shadow=arts["strong"], chunk_rows=600)
    sh = run.summary()["shadow"]
    assert "x3" in sh["error"] and sh["challenger"] == {"rows": 0}
    ab = _run(arts["weak"], inp, tmp_path / "ab.csv", ab=arts["strong"], ab_split=0.5).summary()["ab"]
    served = pd.read_csv(tmp_path / "ab.csv")
    # every row is the champion's own (the shadow output is the champion's, as tested above)
    pd.testing.assert_frame_equal(served.drop(columns=["served_by"]),
                                  pd.read_csv(tmp_path / "shadowed.csv"))
    assert (served["served_by"] == "champion").all() and ab["champion"]["rows"] == N
    assert ab["fallback"]["rows"] == int(arm_of(served["order_id"], 0.5).sum()) > 0
    assert "x3" in ab["error"]
