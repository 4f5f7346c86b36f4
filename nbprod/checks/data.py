"""Data checks on the snapshots: quality, train/valid overlap, leakage, balance, coverage."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..core.results import CheckResult, fmt, listing
from ..core.snapshot import row_hashes
from .context import number

LEAKAGE_ROWS = 50_000


def data(
    session: Any,
    *,
    max_null_rate: Any = 0.3,
    max_duplicate_share: Any = 0.01,
    max_overlap: Any = 0.0,
    leakage_threshold: Any = 0.98,
    min_class_share: Any = 0.05,
    max_out_of_range: Any = 0.01,
) -> list[CheckResult]:
    """Every data check; each result is named ``data:<aspect>``."""
    opts = {
        "max_null_rate": number(max_null_rate, "max_null_rate", "data", lo=0, hi=1),
        "max_duplicate_share": number(max_duplicate_share, "max_duplicate_share", "data", lo=0, hi=1),
        "max_overlap": number(max_overlap, "max_overlap", "data", lo=0, hi=1),
        "leakage_threshold": number(leakage_threshold, "leakage_threshold", "data", lo=0.5, hi=1),
        "min_class_share": number(min_class_share, "min_class_share", "data", lo=0, hi=0.5),
        "max_out_of_range": number(max_out_of_range, "max_out_of_range", "data", lo=0, hi=1),
    }
    train = session.train
    valid = session.valid
    task = session.model_capture.task if session.model_capture else _guess_task(train.y)
    results = [
        _nulls(train, valid, opts["max_null_rate"]),
        _constant(train),
        _duplicates(train, opts["max_duplicate_share"]),
        _overlap(train, valid, opts["max_overlap"]),
        _leakage(train, valid, task, opts["leakage_threshold"]),
        _imbalance(train, task, opts["min_class_share"]),
        _unseen_categories(train, valid),
        _out_of_range(train, valid, opts["max_out_of_range"]),
    ]
    return results


def _guess_task(y: pd.Series) -> str:
    if pd.api.types.is_float_dtype(y.dtype) and y.nunique() > 20:
        return "regression"
    return "classification"


def _result(aspect: str, status: str, message: str, value: Any = None, threshold: Any = None,
            **details: Any) -> CheckResult:
    return CheckResult(name=f"data:{aspect}", kind="data", status=status, message=message,
                       value=value, threshold=threshold, details=details)


def _skip(aspect: str, why: str) -> CheckResult:
    return _result(aspect, "skip", why)


def _nulls(train, valid, limit: float) -> CheckResult:
    rates = {f"train.{c}": float(r) for c, r in train.X.isna().mean().items() if r > 0}
    if valid is not None:
        rates |= {f"valid.{c}": float(r) for c, r in valid.X.isna().mean().items() if r > 0}
    worst = max(rates.items(), key=lambda kv: kv[1], default=(None, 0.0))
    over = {k: v for k, v in rates.items() if v > limit}
    if over:
        text = (f"{len(over)} column(s) have more than {limit:.0%} nulls; worst {worst[0]} "
                f"{worst[1]:.1%}")
        return _result("nulls", "warn", text, worst[1], limit, rates=rates)
    text = (f"null rates at most {worst[1]:.1%} ({worst[0]}); limit {limit:.0%}" if worst[0]
            else "no nulls in any input column")
    return _result("nulls", "pass", text, worst[1], limit, rates=rates)


def _constant(train) -> CheckResult:
    constant = [c for c in train.feature_columns if train.data[c].nunique(dropna=True) <= 1]
    if constant:
        return _result("constant", "warn",
                       f"{len(constant)} constant column(s) carry no information: "
                       + listing(constant, 10), len(constant), 0, columns=constant)
    return _result("constant", "pass", "no constant columns", 0, 0)


def _duplicates(train, limit: float) -> CheckResult:
    cols = [c for c in train.data.columns if c != train.id]
    dup = pd.Series(row_hashes(train.data[cols])).duplicated()
    share = float(dup.mean())
    status = "warn" if share > limit else "pass"
    return _result("duplicates", status,
                   f"{int(dup.sum())} duplicate training row(s) ({share:.1%}); limit {limit:.0%}",
                   share, limit)


def _overlap(train, valid, limit: float) -> CheckResult:
    if valid is None:
        return _skip("overlap", "no validation snapshot")
    if train.id:
        shared = np.intersect1d(train.data[train.id].astype("str").to_numpy(),
                                valid.data[valid.id].astype("str").to_numpy())
        share = len(shared) / len(valid.data)
        how = f"by id {train.id!r}"
        examples = shared[:5].tolist()
        if train.id in train.pii:  # personal ids are never quoted: validation row numbers
            in_valid = valid.data[valid.id].astype("str").isin(shared).to_numpy()
            examples = [f"valid row {i}" for i in np.flatnonzero(in_valid)[:5].tolist()]
    else:
        cols = [c for c in train.data.columns if c != train.id]
        seen = set(row_hashes(train.data[cols]).tolist())
        hv = row_hashes(valid.data[cols])
        hit = np.fromiter((h in seen for h in hv.tolist()), bool, len(hv))
        share = float(hit.mean())
        how = "by identical rows"
        examples = np.flatnonzero(hit)[:5].tolist()
    if share > limit:
        return _result("overlap", "fail",
                       f"{share:.1%} of validation rows also appear in train ({how}), e.g. "
                       f"{examples}; validation scores overstate performance", share, limit,
                       examples=examples)
    return _result("overlap", "pass", f"{share:.1%} of validation rows in train ({how})",
                   share, limit)


def _leakage(train, valid, task: str, threshold: float) -> CheckResult:
    """Fit a small tree on each input column alone; near-perfect prediction means leakage."""
    from sklearn.model_selection import cross_val_predict

    scores: dict[str, float] = {}
    tr = train.data if len(train.data) <= LEAKAGE_ROWS else train.data.sample(LEAKAGE_ROWS, random_state=0)
    for col in train.feature_columns:
        if col in train.pii:
            continue
        x_tr = _encode(tr[col], tr[col])
        if x_tr is None:
            continue
        model = _tree(task)
        if valid is not None:
            x_va = _encode(valid.data[col], tr[col])
            model.fit(x_tr, tr[train.target])
            scores[col] = _power(task, model, x_va, valid.data[valid.target])
        else:
            pred = cross_val_predict(model, x_tr, tr[train.target], cv=3,
                                     method="predict_proba" if task == "classification" else "predict")
            # cross_val_predict fits clones: its probability columns follow the sorted labels
            scores[col] = _power_from_pred(task, pred, tr[train.target],
                                           np.unique(tr[train.target].to_numpy()))
    if not scores:
        return _skip("leakage", "no input column could be scored on its own")
    col, best = max(scores.items(), key=lambda kv: kv[1])
    measure = "R²" if task == "regression" else "ROC AUC / balanced accuracy"
    if best >= threshold:
        leaks = sorted((c for c, s in scores.items() if s >= threshold), key=lambda c: -scores[c])
        return _result("leakage", "fail",
                       f"column {col!r} alone predicts the target with {measure} {fmt(best)} "
                       f"(threshold {fmt(threshold)}): likely leakage of the label",
                       best, threshold, columns=leaks, scores=scores)
    return _result("leakage", "pass",
                   f"no single column predicts the target (best {col!r}: {measure} {fmt(best)}; "
                   f"threshold {fmt(threshold)})", best, threshold, scores=scores)


def _encode(s: pd.Series, reference: pd.Series) -> np.ndarray | None:
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.astype("float64").fillna(-1).to_numpy().reshape(-1, 1)
    if pd.api.types.is_numeric_dtype(s.dtype):
        v = s.to_numpy(dtype="float64", na_value=np.nan)
        fill = np.nanmin(reference.to_numpy(dtype="float64", na_value=np.nan)) - 1 if reference.notna().any() else 0
        return np.where(np.isnan(v), fill, v).reshape(-1, 1)
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        return None
    codes = {v: i for i, v in enumerate(reference.astype("str").value_counts().index)}
    return s.astype("str").map(codes).fillna(-1).to_numpy(dtype="float64").reshape(-1, 1)


def _tree(task: str):
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if task == "classification":
        return DecisionTreeClassifier(max_depth=6, min_samples_leaf=5, random_state=0)
    return DecisionTreeRegressor(max_depth=6, min_samples_leaf=5, random_state=0)


def _power(task: str, model, x, y: pd.Series) -> float:
    if task == "classification":
        return _power_from_pred(task, model.predict_proba(x), y, model.classes_)
    return _power_from_pred(task, model.predict(x), y, None)


def _power_from_pred(task: str, pred: np.ndarray, y: pd.Series, classes) -> float:
    """R² (floored at 0), else ROC AUC for two classes or balanced accuracy; ``pred`` columns
    follow ``classes``."""
    from sklearn import metrics as m

    y = y.to_numpy()
    if task == "regression":
        r2 = float(m.r2_score(y, pred))
        return max(r2, 0.0)
    if len(np.unique(y)) < 2:
        return 0.0
    if len(classes) == 2 and set(np.unique(y)) <= set(classes):
        return float(m.roc_auc_score(y == classes[1], pred[:, 1]))
    labels = np.asarray(classes)[np.argmax(pred, axis=1)]
    return float(m.balanced_accuracy_score(y, labels))


def _imbalance(train, task: str, limit: float) -> CheckResult:
    if task != "classification":
        return _skip("imbalance", "regression target")
    shares = train.y.value_counts(normalize=True)
    cls, share = str(shares.index[-1]), float(shares.iloc[-1])
    dist = {str(k): float(v) for k, v in shares.items()}
    if share < limit:
        return _result("imbalance", "warn",
                       f"class {cls!r} is only {share:.1%} of training rows (limit {limit:.0%}); "
                       "use class weights, resampling or a metric that respects imbalance",
                       share, limit, shares=dist)
    return _result("imbalance", "pass", f"smallest class {cls!r} is {share:.1%} of training rows",
                   share, limit, shares=dist)


def _unseen_categories(train, valid) -> CheckResult:
    if valid is None:
        return _skip("unseen-categories", "no validation snapshot")
    found: dict[str, dict[str, Any]] = {}
    for spec in train.schema.select(train.feature_columns).columns:
        if spec.kind not in ("string", "category", "bool") or spec.name in train.pii:
            continue
        known = set(train.data[spec.name].dropna().astype("str").unique())
        values = valid.data[spec.name].dropna().astype("str")
        new = values[~values.isin(known)]
        if len(new):
            found[spec.name] = {"rows": int(len(new)), "values": sorted(new.unique())[:10]}
    if found:
        parts = [f"{c} ({d['rows']} rows, e.g. {d['values'][0]!r})" for c, d in found.items()]
        return _result("unseen-categories", "warn",
                       "validation has categories never seen in training: " + "; ".join(parts),
                       sum(d["rows"] for d in found.values()), 0, columns=found)
    return _result("unseen-categories", "pass", "every validation category was seen in training", 0, 0)


def _out_of_range(train, valid, limit: float) -> CheckResult:
    if valid is None:
        return _skip("out-of-range", "no validation snapshot")
    shares: dict[str, float] = {}
    allowed: dict[str, float] = {}
    for spec in train.schema.select(train.feature_columns).columns:
        if spec.kind not in ("integer", "float") or spec.name in train.pii:
            continue
        t = train.data[spec.name]
        v = valid.data[spec.name].dropna()
        outside = float(((v < t.min()) | (v > t.max())).mean()) if len(v) else 0.0
        if outside > 0:
            shares[spec.name] = outside
            # unchanged data falls outside the min/max of n training values with probability
            # 2/(n+1): tolerate that plus three standard errors at this validation size
            p = 2.0 / (t.notna().sum() + 1)
            allowed[spec.name] = max(limit, p + 3 * float(np.sqrt(p * (1 - p) / len(v))))
    over = {c: s for c, s in shares.items() if s > allowed[c]}
    if over:
        worst = max(over, key=over.get)
        return _result("out-of-range", "warn",
                       f"{len(over)} column(s) have more validation values outside the training "
                       f"range than chance explains; worst {worst!r} {over[worst]:.1%} "
                       f"(tolerated {allowed[worst]:.1%})",
                       over[worst], allowed[worst], shares=shares, tolerated=allowed)
    top = max(shares.values(), default=0.0)
    message = ("every validation value inside the training range" if not shares else
               f"validation values outside the training range no more often than chance explains "
               f"(at most {top:.1%} of a column)")
    return _result("out-of-range", "pass", message, top, limit, shares=shares)
