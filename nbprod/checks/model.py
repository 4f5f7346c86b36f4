"""Model checks: overfitting gap, validation metric thresholds, CV stability, baselines."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core.metrics import Metric, resolve
from ..core.results import CheckResult, fmt
from ..exceptions import NbprodUsageError
from .context import evaluation, metric_range, number


def _metric(session: Any, name: str, check: str) -> Metric:
    return resolve(name, flag="metric", where=f" of %nbprod check {check}",
                   task=session.require_model().task)


def overfit(session: Any, *, metric: str, max_gap: Any, warn_gap: Any = None) -> CheckResult:
    """Fail when ``metric`` on train beats valid by more than ``max_gap`` (natural units)."""
    m = _metric(session, metric, "overfit")
    lo, hi = metric_range(m.scorer_name)
    span = (hi - lo) if lo is not None and hi is not None else None
    gap_max = number(max_gap, "max_gap", "overfit", lo=0.0, hi=span)
    gap_warn = None
    if warn_gap is not None:
        gap_warn = number(warn_gap, "warn_gap", "overfit", lo=0.0, hi=gap_max)
    ev = evaluation(session)
    ev.require_valid("overfit")
    s_train = m.score(ev.model, ev.X_train, ev.y_train)
    s_valid = m.score(ev.model, ev.X_valid, ev.y_valid)
    gap = s_train - s_valid  # bigger is better: a positive gap means train looks better
    v_train, v_valid = m.natural(s_train), m.natural(s_valid)
    relation = "below" if m.greater_is_better else "above"
    if gap > 0:
        text = (f"validation {m.label} {fmt(v_valid)} is {fmt(gap)} {relation} train "
                f"{fmt(v_train)}; allowed gap {fmt(gap_max)}")
    else:
        text = (f"validation {m.label} {fmt(v_valid)} is no worse than train {fmt(v_train)}; "
                f"allowed gap {fmt(gap_max)}")
    status = "fail" if gap > gap_max else ("warn" if gap_warn is not None and gap > gap_warn else "pass")
    return CheckResult(
        name=f"overfit:{m.name}", kind="overfit", status=status, message=text,
        value=round(gap, 10), threshold=gap_max,
        details={"metric": m.name, "train": v_train, "valid": v_valid, "gap": gap,
                 "warn_gap": gap_warn},
    )


def metric(session: Any, *, metric: str, min: Any = None, max: Any = None) -> CheckResult:
    """Validation ``metric`` must be at least ``min`` and/or at most ``max`` (natural units)."""
    m = _metric(session, metric, "metric")
    if min is None and max is None:
        raise NbprodUsageError(
            "%nbprod check metric needs a threshold: --min X (for scores) or --max X (for losses)."
        )
    lo, hi = metric_range(m.scorer_name)
    low = number(min, "min", "metric", lo=lo, hi=hi) if min is not None else None
    high = number(max, "max", "metric", lo=lo, hi=hi) if max is not None else None
    if low is not None and high is not None and low > high:
        raise NbprodUsageError(
            f"%nbprod check metric: --min {low:g} is above --max {high:g}; no value could pass."
        )
    ev = evaluation(session)
    ev.require_valid("metric")
    value = m.natural(m.score(ev.model, ev.X_valid, ev.y_valid))
    problems = []
    if low is not None and value < low:
        problems.append(f"below the minimum {fmt(low)}")
    if high is not None and value > high:
        problems.append(f"above the maximum {fmt(high)}")
    bounds = " and ".join(
        b for b in (f">= {fmt(low)}" if low is not None else "",
                    f"<= {fmt(high)}" if high is not None else "") if b
    )
    text = (f"validation {m.label} {fmt(value)} is {' and '.join(problems)}" if problems
            else f"validation {m.label} {fmt(value)} meets {bounds}")
    return CheckResult(
        name=f"metric:{m.name}", kind="metric", status="fail" if problems else "pass",
        message=text, value=value, threshold={"min": low, "max": high},
        details={"metric": m.name},
    )


def cv(session: Any, *, metric: str, folds: Any = 5, max_std: Any) -> CheckResult:
    """K-fold cross-validation of a clone of the model on train: fail on unstable scores."""
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    m = _metric(session, metric, "cv")
    k = number(folds, "folds", "cv", lo=2, hi=50, integer=True)
    lo, hi = metric_range(m.scorer_name)
    std_max = number(max_std, "max_std", "cv", lo=0.0,
                     hi=(hi - lo) if lo is not None and hi is not None else None)
    ev = evaluation(session)
    n = len(ev.y_train)
    if k > n:
        raise NbprodUsageError(f"%nbprod check cv: --folds {k} exceeds the {n} training rows.")
    if ev.task == "classification":
        smallest = int(ev.y_train.value_counts().min())
        splitter: Any = (StratifiedKFold(k, shuffle=True, random_state=0) if smallest >= k
                         else KFold(k, shuffle=True, random_state=0))
    else:
        splitter = KFold(k, shuffle=True, random_state=0)
    scores = cross_val_score(clone(ev.model), ev.X_train, ev.y_train, cv=splitter,
                             scoring=m.scorer, error_score="raise")
    values = np.array([m.natural(s) for s in scores])
    mean, std = float(values.mean()), float(values.std(ddof=1))
    status = "fail" if std > std_max else "pass"
    verb = "exceeds" if status == "fail" else "is within"
    text = (f"{k}-fold {m.label} {fmt(mean)} ± {fmt(std)} (folds "
            f"{', '.join(fmt(v) for v in values)}); standard deviation {verb} {fmt(std_max)}")
    return CheckResult(
        name=f"cv:{m.name}", kind="cv", status=status, message=text, value=std,
        threshold=std_max,
        details={"metric": m.name, "folds": values.tolist(), "mean": mean, "std": std, "k": k},
    )


def _simple_model(task: str, X: Any) -> Any:
    """A shallow tree behind a minimal preprocessing step that accepts any feature frame."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    tree = (DecisionTreeClassifier(max_depth=3, random_state=0) if task == "classification"
            else DecisionTreeRegressor(max_depth=3, random_state=0))
    if isinstance(X, pd.DataFrame):
        numeric = [c for c in X.columns if pd.api.types.is_numeric_dtype(X[c].dtype)
                   and not pd.api.types.is_bool_dtype(X[c].dtype)]
        other = [c for c in X.columns if c not in numeric]
        pre = ColumnTransformer([
            ("num", SimpleImputer(strategy="median", keep_empty_features=True), numeric),
            ("cat", make_pipeline(
                SimpleImputer(strategy="constant", fill_value="__missing__"),
                OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
            ), other),
        ])
        return make_pipeline(pre, tree)
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), tree)


def baseline(session: Any, *, metric: str, min_gain: Any) -> CheckResult:
    """The model must beat a dummy by ``min_gain``; warn when a shallow tree comes close."""
    from sklearn.dummy import DummyClassifier, DummyRegressor

    m = _metric(session, metric, "baseline")
    lo, hi = metric_range(m.scorer_name)
    gain_min = number(min_gain, "min_gain", "baseline", lo=0.0,
                      hi=(hi - lo) if lo is not None and hi is not None else None)
    ev = evaluation(session)
    ev.require_valid("baseline")
    dummy = (DummyClassifier(strategy="prior") if ev.task == "classification"
             else DummyRegressor(strategy="mean")).fit(ev.X_train, ev.y_train)
    simple = _simple_model(ev.task, ev.X_train).fit(ev.X_train, ev.y_train)
    s_model = m.score(ev.model, ev.X_valid, ev.y_valid)
    s_dummy = m.score(dummy, ev.X_valid, ev.y_valid)
    s_simple = m.score(simple, ev.X_valid, ev.y_valid)
    gain, gain_simple = s_model - s_dummy, s_model - s_simple
    v = {k: m.natural(s) for k, s in (("model", s_model), ("dummy", s_dummy), ("simple", s_simple))}
    if gain < gain_min:
        status = "fail"
        text = (f"validation {m.label} {fmt(v['model'])} beats the dummy model "
                f"({fmt(v['dummy'])}) by only {fmt(gain)}; required gain {fmt(gain_min)}")
    elif gain_simple < gain_min:
        status = "warn"
        if gain_simple < 0:
            text = (f"a depth-3 tree scores better ({m.label} {fmt(v['simple'])}) than the model "
                    f"({fmt(v['model'])}): a simpler model may serve")
        else:
            text = (f"validation {m.label} {fmt(v['model'])} is within {fmt(gain_min)} of a "
                    f"depth-3 tree ({fmt(v['simple'])}): a simpler model may serve")
    else:
        status = "pass"
        text = (f"validation {m.label} {fmt(v['model'])} beats the dummy ({fmt(v['dummy'])}) by "
                f"{fmt(gain)} and a depth-3 tree ({fmt(v['simple'])}) by {fmt(gain_simple)}")
    return CheckResult(
        name=f"baseline:{m.name}", kind="baseline", status=status, message=text,
        value=gain, threshold=gain_min,
        details={"metric": m.name, **v, "gain_over_dummy": gain, "gain_over_simple": gain_simple},
    )
