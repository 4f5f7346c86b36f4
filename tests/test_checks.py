"""Checks through the real magics: overfit, metric, cv, baseline, data, bounds, gating."""

from __future__ import annotations

import json

import numpy as np
import pytest
from IPython.core.error import UsageError

from nbprod.jupyter.display import CHECK_MIME

from .conftest import run


def _session(shell):
    return shell.magics_manager.registry["NbprodMagics"].session


def _setup(shell, train, valid, model_code, features="def features(df):\n    return df\n"):
    shell.user_ns["train"] = train
    shell.user_ns["valid"] = valid
    run(shell, "%nbprod snapshot train --role train --target target")
    run(shell, "%nbprod snapshot valid --role valid --target target")
    run(shell, "%%nbprod features\n" + features)
    run(shell, "%%nbprod model\n" + model_code)


TREE = ("from sklearn.tree import DecisionTreeClassifier\n"
        "model = DecisionTreeClassifier(random_state=0).fit(train.drop(columns=['target']), train['target'])\n")
LOGREG = ("from sklearn.linear_model import LogisticRegression\n"
          "from sklearn.pipeline import make_pipeline\nfrom sklearn.preprocessing import StandardScaler\n"
          "model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=2000))"
          ".fit(train.drop(columns=['target']), train['target'])\n")


def _cancer(cancer):
    df = cancer.drop(columns=["patient_id"])
    return df.iloc[:400], df.iloc[400:]


def test_unpruned_tree_fails_overfit_and_regularised_model_passes(shell, cancer):
    train, valid = _cancer(cancer)
    _setup(shell, train, valid, TREE)
    run(shell, "%nbprod check overfit --metric roc_auc --max-gap 0.03 --warn-gap 0.01")
    res = _session(shell).checks["overfit:roc_auc"]
    assert res.status == "fail"
    assert res.details["train"] == 1.0 and res.details["valid"] < 0.97
    from nbprod.core.results import number

    assert res.message.startswith(f"validation ROC AUC {number(res.details['valid'])} is ")
    assert "below train 1; allowed gap 0.03" in res.message

    run(shell, "%%nbprod model\n" + LOGREG)
    run(shell, "%nbprod check overfit --metric roc_auc --max-gap 0.03")
    res = _session(shell).checks["overfit:roc_auc"]  # re-running replaces the earlier result
    assert res.status == "pass" and res.value < 0.03
    assert len([n for n in _session(shell).checks if n.startswith("overfit")]) == 1


def test_losses_gap_in_the_right_direction(shell, diabetes):
    model = ("from sklearn.ensemble import RandomForestRegressor\n"
             "model = RandomForestRegressor(n_estimators=30, random_state=0)"
             ".fit(train.drop(columns=['target']), train['target'])\n")
    _setup(shell, diabetes.iloc[:330], diabetes.iloc[330:], model)
    run(shell, "%nbprod check overfit --metric mae --max-gap 5")
    res = _session(shell).checks["overfit:mae"]
    assert res.details["valid"] > res.details["train"] > 0  # natural units: positive MAE
    assert res.status == "fail" and "above train" in res.message
    run(shell, "%nbprod check metric rmse --max 80")
    assert _session(shell).checks["metric:rmse"].status == "pass"
    run(shell, "%nbprod check metric r2 --min 0.9")
    assert _session(shell).checks["metric:r2"].status == "fail"


def test_leaked_feature_is_caught_by_data(shell, cancer):
    train, valid = _cancer(cancer)
    rng = np.random.default_rng(0)
    train = train.assign(followup_code=train["target"] * 10 + rng.normal(0, 0.5, len(train)))
    valid = valid.assign(followup_code=valid["target"] * 10 + rng.normal(0, 0.5, len(valid)))
    _setup(shell, train, valid, LOGREG)
    result = shell.run_cell("%nbprod check data")
    leak = _session(shell).checks["data:leakage"]
    assert leak.status == "fail" and leak.details["columns"] == ["followup_code"]
    assert "'followup_code' alone predicts the target" in leak.message
    assert _session(shell).checks["data:overlap"].status == "pass"
    assert result.success
    run(shell, "%nbprod check metric matthews_corrcoef --min -0.5")  # a correlation: [-1, 1]
    assert _session(shell).checks["metric:matthews_corrcoef"].status == "pass"


def test_leakage_without_a_validation_snapshot_uses_cross_validation(shell, cancer):
    train, _ = _cancer(cancer)
    rng = np.random.default_rng(1)
    shell.user_ns["train"] = train.assign(
        followup_code=train["target"] * 10 + rng.normal(0, 0.5, len(train)))
    run(shell, "%nbprod snapshot train --role train --target target")
    run(shell, "%%nbprod features\ndef features(df):\n    return df\n")
    run(shell, "%nbprod check data")
    leak = _session(shell).checks["data:leakage"]
    assert leak.status == "fail" and leak.details["columns"] == ["followup_code"]
    assert 0.5 < leak.details["scores"]["mean_radius"] < 1.0  # an honest, not perfect, column


def test_data_checks_on_quality_problems(shell, mixed):
    df = mixed.drop(columns=["email"]).rename(columns={"label": "target"})
    train = df.iloc[:600].assign(constant=1)
    valid = df.iloc[550:].assign(constant=1)  # 50 rows overlap with train
    valid = valid.assign(plan=valid["plan"].where(valid.index % 7 != 0, "enterprise"))
    model = ("from sklearn.dummy import DummyClassifier\n"
             "model = DummyClassifier().fit(train[['usage']], train['target'])\n")
    _setup(shell, train, valid, model, features="def features(df):\n    return df[['usage']]\n")
    run(shell, "%nbprod check data --max-null-rate 0.05")
    checks = _session(shell).checks
    assert checks["data:constant"].status == "warn" and "constant" in checks["data:constant"].details["columns"]
    assert checks["data:nulls"].status == "warn"
    assert checks["data:overlap"].status == "fail" and "by identical rows" in checks["data:overlap"].message
    unseen = checks["data:unseen-categories"]
    assert unseen.status == "warn" and unseen.details["columns"]["plan"]["values"] == ["enterprise"]


def test_unstable_setup_fails_cv(shell, cancer):
    train, valid = _cancer(cancer)
    _setup(shell, train.iloc[:60], valid, TREE)
    run(shell, "%nbprod check cv --metric accuracy --folds 10 --max-std 0.05")
    res = _session(shell).checks["cv:accuracy"]
    assert res.status == "fail" and len(res.details["folds"]) == 10
    assert res.value == pytest.approx(np.std(res.details["folds"], ddof=1))
    assert "standard deviation exceeds 0.05" in res.message


def test_model_no_better_than_dummy_fails_baseline(shell, cancer):
    train, valid = _cancer(cancer)
    constant = ("from sklearn.dummy import DummyClassifier\n"
                "model = DummyClassifier(strategy='stratified', random_state=0)"
                ".fit(train.drop(columns=['target']), train['target'])\n")
    _setup(shell, train, valid, constant)
    run(shell, "%nbprod check baseline --metric roc_auc --min-gain 0.05")
    res = _session(shell).checks["baseline:roc_auc"]
    assert res.status == "fail" and "beats the dummy model (0.5) by only" in res.message
    assert res.details["model"] < 0.55
    run(shell, "%%nbprod model\n" + LOGREG)
    run(shell, "%nbprod check baseline --metric roc_auc --min-gain 0.05")
    assert _session(shell).checks["baseline:roc_auc"].status in ("pass", "warn")


def test_results_display_as_json_bundle_and_html(shell, cancer):
    train, valid = _cancer(cancer)
    _setup(shell, train, valid, LOGREG)
    from nbprod.jupyter.display import ResultsView

    view = ResultsView(_session(shell).check("metric", metric="roc_auc", min=0.9))
    bundle = view._repr_mimebundle_()
    assert bundle[CHECK_MIME]["results"][0]["name"] == "metric:roc_auc"
    json.dumps(bundle[CHECK_MIME])
    assert "<table>" in bundle["text/html"] and "PASS" in bundle["text/html"]


def test_package_refuses_on_failed_check_then_force_records_override(shell, cancer, in_tmp):
    train, valid = _cancer(cancer)
    _setup(shell, train, valid, TREE)
    run(shell, "%nbprod check overfit --metric roc_auc --max-gap 0.01")
    with pytest.raises(UsageError, match=r"Refusing to package: 1 check\(s\) failed: overfit:roc_auc"):
        run(shell, "%nbprod package art --no-mlflow")
    assert not (in_tmp / "art").exists()
    run(shell, "%nbprod package art --no-mlflow --force")
    m = json.loads((in_tmp / "art" / "nbprod.json").read_text())
    assert m["override"]["checks"] == ["overfit:roc_auc"]
    assert "allowed gap 0.01" in m["override"]["messages"]["overfit:roc_auc"]
    assert m["override"]["by"] and m["override"]["at"]
    assert set(m["importance"]["columns"]) == set(m["input_columns"])
    assert abs(sum(c["weight"] for c in m["importance"]["columns"].values()) - 1) < 1e-9


def test_bounds_are_derived_and_enforced_by_policy(shell, diabetes, in_tmp):
    import nbprod

    model = ("from sklearn.linear_model import Ridge\n"
             "model = Ridge().fit(train.drop(columns=['target']), train['target'])\n")
    _setup(shell, diabetes.iloc[:330], diabetes.iloc[330:], model)
    run(shell, "%nbprod check bounds --max 250 --policy flag")
    spec = _session(shell).bounds
    assert spec["max"] == 250 and spec["derived"] == ["min"] and spec["policy"] == "flag"
    run(shell, "%nbprod package art --no-mlflow")
    art = nbprod.load(in_tmp / "art")
    new = diabetes.drop(columns=["target"]).iloc[:50].copy()
    new.loc[new.index[:3], "bmi"] = 3.0  # absurd BMI drives predictions far above 250
    scored = art.score(new)
    assert scored["out_of_bounds"].tolist()[:3] == [True, True, True]
    assert not scored["out_of_bounds"].iloc[3:].any()

    run(shell, "%nbprod check bounds --max 250 --policy fail")
    run(shell, "%nbprod package art2 --no-mlflow")
    from nbprod.exceptions import OutputBoundsError

    with pytest.raises(OutputBoundsError, match=r"3 prediction\(s\) break the output bounds .*rows \[0, 1, 2\]"):
        nbprod.load(in_tmp / "art2").score(new)


def test_fail_policy_that_refuses_the_reference_fails_the_check(shell, diabetes, in_tmp):
    import nbprod

    model = ("from sklearn.linear_model import Ridge\n"
             "model = Ridge().fit(train.drop(columns=['target']), train['target'])\n")
    _setup(shell, diabetes.iloc[:330], diabetes.iloc[330:], model)
    run(shell, "%nbprod check bounds --max 150 --policy fail")  # the model's own answers reach 250+
    res = _session(shell).checks["bounds"]
    assert res.status == "fail" and res.value > 0
    assert "policy fail refuses every batch holding such a row" in res.message
    with pytest.raises(UsageError, match="Refusing to package: 1 check\\(s\\) failed: bounds"):
        run(shell, "%nbprod package art --no-mlflow")
    # forced: parity replay compares the raw outputs and their bounds verdict, so it passes
    run(shell, "%nbprod package art --no-mlflow --force")
    art = nbprod.load(in_tmp / "art")
    assert art.manifest["bounds"]["policy"] == "fail" and art.manifest["override"]["checks"] == ["bounds"]


@pytest.mark.parametrize(
    ("line", "needle"),
    [
        ("%nbprod check overfit --metric roc_auc --max-gap 2",
         "The 'max_gap' option of %nbprod check overfit must be a number in [0, 1]. Got '2'."),
        ("%nbprod check overfit --metric roc_auc --max-gap x",
         "The 'max_gap' option of %nbprod check overfit must be a number in [0, 1]. Got 'x'."),
        ("%nbprod check overfit --metric roc_auc --max-gap 0.1 --warn-gap 0.2",
         "The 'warn_gap' option of %nbprod check overfit must be a number in [0, 0.1]. Got '0.2'."),
        ("%nbprod check overfit --metric rocauc --max-gap 0.1", "Did you mean 'roc_auc'?"),
        ("%nbprod check overfit --max-gap 0.1", "required: --metric"),
        ("%nbprod check metric roc_auc", "needs a threshold: --min X"),
        ("%nbprod check metric roc_auc --min 0.9 --max 0.8", "--min 0.9 is above --max 0.8"),
        ("%nbprod check metric mae --max 3", "a regression metric, but the model is a classifier"),
        ("%nbprod check metric matthews_corrcoef --min -1.5",
         "The 'min' option of %nbprod check metric must be a number in [-1, 1]. Got '-1.5'."),
        ("%nbprod check cv --metric accuracy --folds 1 --max-std 0.1",
         "The 'folds' option of %nbprod check cv must be an integer in [2, 50]. Got '1'."),
        ("%nbprod check cv --metric accuracy --folds 2.5 --max-std 0.1", "must be an integer"),
        ("%nbprod check cv --metric accuracy --max-std -1", "The 'max_std' option"),
        ("%nbprod check baseline --metric roc_auc --min-gain 1.5", "The 'min_gain' option"),
        ("%nbprod check data --leakage-threshold 0.2", "The 'leakage_threshold' option"),
        ("%nbprod check data --max-null-rate 2", "The 'max_null_rate' option"),
        ("%nbprod check bounds --policy ignore", "invalid choice: 'ignore'"),
        ("%nbprod check bounds --min 0", "--min/--max apply to regression outputs"),
        ("%nbprod check bounds --classes 0,7", "--classes names '7'"),
        ("%nbprod check overfti --metric roc_auc", "did you mean 'overfit'"),
        ("%nbprod check", "needs a KIND"),
        ("%nbprod check cv --metric accuracy --max-std 0.1 --fold 3", "did you mean '--folds'"),
    ],
)
def test_bad_check_arguments_are_clear_usage_errors(shell, cancer, line, needle):
    train, valid = _cancer(cancer)
    _setup(shell, train, valid, LOGREG)
    with pytest.raises(UsageError) as err:
        run(shell, line)
    assert needle in str(err.value)


def test_checks_needing_valid_say_so(shell, cancer):
    train, _ = _cancer(cancer)
    shell.user_ns["train"] = train
    run(shell, "%nbprod snapshot train --role train --target target")
    run(shell, "%%nbprod features\ndef features(df):\n    return df\n")
    run(shell, "%%nbprod model\n" + LOGREG)
    with pytest.raises(UsageError, match="needs a validation snapshot"):
        run(shell, "%nbprod check overfit --metric roc_auc --max-gap 0.1")


def test_scoring_run_counts_out_of_bounds_and_shows_the_override(shell, diabetes, in_tmp):
    from nbprod.jobs import run as nbrun

    model = ("from sklearn.linear_model import Ridge\n"
             "model = Ridge().fit(train.drop(columns=['target', 'patient']), train['target'])\n")
    d = diabetes.assign(patient=[f"p{i}" for i in range(len(diabetes))])
    shell.user_ns["train"], shell.user_ns["valid"] = d.iloc[:330], d.iloc[330:]
    run(shell, "%nbprod snapshot train --role train --target target --id patient")
    run(shell, "%nbprod snapshot valid --role valid --target target --id patient")
    run(shell, "%%nbprod features\ndef features(df):\n    return df\n")
    run(shell, "%%nbprod model\n" + model)
    run(shell, "%nbprod check metric r2 --min 0.9")  # fails: Ridge is far from 0.9
    run(shell, "%nbprod check bounds --max 250")
    run(shell, "%nbprod package art --no-mlflow --force")

    new = d.drop(columns=["target"]).iloc[:40].copy()
    new.loc[new.index[:2], "bmi"] = 3.0
    new.loc[new.index[5], "age"] = 0.2  # outside the training range (max about 0.11)
    new.to_csv("batch.csv", index=False)
    result = nbrun.execute(input_path="batch.csv", output_path="out.csv",
                                artifact_path="art", summary_path="summary.json")
    summary = json.loads((in_tmp / "summary.json").read_text())
    checks = {c["name"]: c for c in summary["checks"]}
    assert checks["output:bounds"]["status"] == "fail"
    assert checks["output:bounds"]["details"]["count"] == 2
    assert checks["output:bounds"]["details"]["ids"] == ["p0", "p1"]
    assert checks["input:out-of-range"]["details"]["columns"]["age"]["above"] == 1
    assert summary["status"] == "alert"
    assert summary["artifact"]["override"]["checks"] == ["metric:r2"]
    from nbprod.jupyter.report import verdict

    assert "Packaged past failed checks" in verdict(result)._repr_html_()
    out = __import__("pandas").read_csv(in_tmp / "out.csv")
    assert out["out_of_bounds"].sum() == 2 and len(out) == 40
