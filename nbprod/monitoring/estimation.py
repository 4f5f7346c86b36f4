"""Performance estimated before the labels arrive.

Labels come weeks late, or never. Until then these estimates say what the model's performance
probably is on a batch, **assuming the relation between inputs and target is unchanged** (no
concept drift). No method without labels can see concept drift; the labels path
(:mod:`nbprod.monitoring.performance`) stays the real check, and an estimate is only ever a
``warn``.

**Classifiers (binary): confidence-based performance estimation (CBPE).** At packaging the
positive-class probability is calibrated on the validation snapshot, the map chosen by 5-fold
out-of-fold Brier score among none, sigmoid (Platt) and isotonic ("auto"; an uncalibrated random
forest was off by 0.06-0.10 in ROC AUC without it). At scoring, every row counts into one of
1,000 fixed score bins by its predicted class (integer counts: chunks merge exactly); with p the
calibrated probability at each bin's score, the expected accuracy, F1 and ROC AUC follow in
closed form. The interval is the 2.5-97.5% range of the metric over 200 draws of labels from p,
each draw with a calibration map refitted on a bootstrap resample of the validation rows: where
the assumption holds, it covers the realised value about 95% of the time.

**Regressors: direct loss estimation (DLE).** At packaging the validation rows are grouped by
prediction (about 100 rows a group, 4 to 20 groups); each group's mean absolute and root mean
squared residual, placed at its mean prediction and joined linearly, growing linearly beyond the
outer groups (never falling), is a model of the error given the prediction, evaluated on 1,000
fixed prediction bins. At scoring the batch's integer counts per bin (and, for predictions beyond
the outer groups, their count and distance sums) give the expected MAE and RMSE, and R² from
Var(y) ~ Var(prediction) + E r².
The interval widens the sampling error by the estimator's own cross-fitted error at packaging.
It is blind to concept drift and tends to under-estimate the error of rows outside the training
range (measured 10-15% low).

Each estimator has the same shape as the other monitoring statistics: ``build_*`` at packaging
(JSON-able, small), :func:`partial` per chunk of outputs, :func:`merge`, :func:`finalize`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..core.profile import bin_counts, bin_index, cut_points
from ..core.results import number
from ..exceptions import NbprodUsageError

SCORE_BINS = 1000
BOOTSTRAP = 50  # calibration maps refitted on resamples of the validation rows
DRAWS = 200  # label draws for the interval
FOLDS = 5
MIN_VALID_ROWS = 100  # classifiers: fewer validation rows, nothing estimated
MIN_CLASS_ROWS = 10
MIN_REGRESSION_ROWS = 200
CALIBRATIONS = ("none", "sigmoid", "isotonic")
DEFAULT_TOLERANCE = 0.05  # relative to the validation value, when the checks declared none
ASSUMPTION = ("the relation between inputs and target is unchanged (no concept drift); "
              "it cannot be seen without labels")
CBPE_METHOD = "CBPE: expected value from probabilities calibrated on the validation snapshot"
DLE_METHOD = ("DLE: expected loss from the mean absolute and squared residual, by prediction, "
              "on the validation snapshot")
LABELS = {"roc_auc": "ROC AUC", "roc_auc_ovr": "ROC AUC (one-vs-rest)", "accuracy": "accuracy", "f1": "F1", "mae": "MAE", "rmse": "RMSE",
          "r2": "R²"}
LOSSES = ("mae", "rmse")
SCORERS = {"roc_auc": "roc_auc", "roc_auc_ovr": "roc_auc_ovr", "accuracy": "accuracy", "f1": "f1",
           "neg_mean_absolute_error": "mae", "neg_root_mean_squared_error": "rmse", "r2": "r2"}


# -- calibration maps (JSON) ------------------------------------------------------------------
def _logit(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 1e-6, 1 - 1e-6)
    return np.log(s / (1 - s))


def fit_calibration(kind: str, s: np.ndarray, y: np.ndarray,
                    weight: np.ndarray | None = None) -> dict[str, Any]:
    """A calibration map from scores ``s`` to P(y = 1), as JSON-able parameters."""
    if kind == "sigmoid":
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e6, max_iter=1000).fit(_logit(s)[:, None], y, sample_weight=weight)
        return {"kind": "sigmoid", "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])}
    if kind == "isotonic":
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(s, y, sample_weight=weight)
        return {"kind": "isotonic", "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    return {"kind": "none"}


def calibrate(cal: dict[str, Any], s: np.ndarray) -> np.ndarray:
    if cal["kind"] == "sigmoid":
        return 1 / (1 + np.exp(-(cal["a"] * _logit(s) + cal["b"])))
    if cal["kind"] == "isotonic":
        return np.interp(s, cal["x"], cal["y"])  # constant beyond the ends, as "clip"
    return np.clip(s, 0.0, 1.0)


def choose_calibration(s: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[str, dict[str, float]]:
    """The map with the lowest 5-fold out-of-fold Brier score, and every candidate's score."""
    from sklearn.model_selection import StratifiedKFold

    brier = {}
    for kind in CALIBRATIONS:
        oof = np.empty(len(s))
        for fit, held in StratifiedKFold(FOLDS, shuffle=True, random_state=seed).split(s[:, None], y):
            oof[held] = calibrate(fit_calibration(kind, s[fit], y[fit]), s[held])
        brier[kind] = float(np.mean((oof - y) ** 2))
    return min(brier, key=brier.get), brier


# -- packaging -------------------------------------------------------------------------------
def build_classifier(outputs: pd.DataFrame, y: Any, classes: list[Any], *,
                     calibration: str = "auto", seed: int = 0) -> dict[str, Any]:
    """The CBPE reference from the model's outputs on the validation snapshot and its labels.

    Binary: the positive class's score (the second class, as scikit-learn orders them).
    Multiclass: each class's score one-vs-rest, calibrated on its own (``per_class``)."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    from ..core.scoring import proba_column

    out: dict[str, Any] = {"method": "cbpe", "task": "classification"}
    if len(classes) < 2:
        out["skipped"] = f"needs at least 2 classes; this model has {len(classes)}"
        return out
    S = np.column_stack([outputs[proba_column(c)].to_numpy(dtype="float64") for c in classes])
    yv = np.asarray(y)
    keep = np.isfinite(S).all(axis=1) & pd.notna(yv)
    S, yv = S[keep], yv[keep]
    pred = outputs["prediction"].to_numpy()[keep]
    shown = classes[1:] if len(classes) == 2 else classes
    fewest = min(shown, key=lambda c: int((yv == c).sum()))
    n_fewest = int((yv == fewest).sum())
    if len(yv) < MIN_VALID_ROWS or n_fewest < MIN_CLASS_ROWS or len(yv) - n_fewest < MIN_CLASS_ROWS:
        out["skipped"] = (f"needs at least {MIN_VALID_ROWS} validation rows with {MIN_CLASS_ROWS} of "
                          f"each class; the validation snapshot has {len(yv)} rows, {n_fewest} of "
                          f"class {str(fewest)[:40]!r}")
        return out
    plain = [c.item() if isinstance(c, np.generic) else c for c in classes]
    if len(classes) == 2:
        y1 = (yv == classes[1]).astype("int64")
        pred1 = pred == classes[1]
        binary = _score_reference(S[:, 1], y1, calibration, seed)
        if (fits := _stored_bootstrap(binary, seed)) is not None:
            binary["bootstrap"] = fits
        out.update(positive_class=plain[1], **binary, rows=int(len(yv)), seed=seed,
                   validation={"roc_auc": float(roc_auc_score(y1, S[:, 1])),
                               "accuracy": float(accuracy_score(y1, pred1)),
                               "f1": float(f1_score(y1, pred1.astype("int64")))})
        return out
    per_class = [_score_reference(S[:, j], (yv == c).astype("int64"), calibration, seed)
                 for j, c in enumerate(classes)]
    for j, r in enumerate(per_class):  # class j's draws use seed + j + 1 (_cbpe_multiclass)
        if (fits := _stored_bootstrap(r, seed + j + 1)) is not None:
            r["bootstrap"] = fits
    aucs = [roc_auc_score((yv == c).astype("int64"), S[:, j]) for j, c in enumerate(classes)]
    out.update(classes=plain, per_class=per_class, rows=int(len(yv)), seed=seed,
               validation={"roc_auc_ovr": float(np.mean(aucs)),
                           "accuracy": float(np.mean(pred == yv))})
    return out


def _score_reference(s: np.ndarray, y1: np.ndarray, calibration: str, seed: int) -> dict[str, Any]:
    """One score's calibration map and its 1,000 bins (with the validation rows' counts)."""
    if calibration == "auto":
        kind, brier = choose_calibration(s, y1, seed)
    else:
        kind, brier = calibration, {}
    cuts = cut_points(s, SCORE_BINS)
    bins = bin_index(s, cuts)
    k = cuts.size + 1
    count = np.bincount(bins, minlength=k)
    total = np.bincount(bins, weights=s, minlength=k)
    bounds = np.concatenate([[s.min()], cuts, [s.max()]])
    middle = (bounds[:-1] + bounds[1:]) / 2
    return {"calibration": fit_calibration(kind, s, y1), "calibration_choice": brier,
            "cuts": cuts.tolist(), "scores": np.where(count > 0, total / np.maximum(count, 1), middle).tolist(),
            "valid_counts": count.tolist(),
            "valid_positives": np.bincount(bins, weights=y1, minlength=k).astype("int64").tolist()}


def build_regressor(prediction: Any, y: Any, *, seed: int = 0) -> dict[str, Any]:
    """The DLE reference from the predictions on the validation snapshot and its labels."""
    out: dict[str, Any] = {"method": "dle", "task": "regression"}
    p = np.asarray(prediction, dtype="float64")
    yv = pd.to_numeric(pd.Series(np.asarray(y)), errors="coerce").to_numpy(dtype="float64")
    keep = np.isfinite(p) & np.isfinite(yv)
    p, yv = p[keep], yv[keep]
    if len(p) < MIN_REGRESSION_ROWS:
        out["skipped"] = (f"needs at least {MIN_REGRESSION_ROWS} validation rows with a finite "
                          f"prediction and target; the validation snapshot has {len(p)}")
        return out
    r = yv - p
    groups = int(min(20, max(4, len(p) // 100)))
    error = ErrorModel.fit(p, r, groups)
    # the estimator's own error: each fold estimated by a model fitted on the other folds
    fold = np.random.default_rng(seed).integers(0, FOLDS, len(p))
    rel: dict[str, list[float]] = {"mae": [], "rmse": []}
    for f in range(FOLDS):
        fit, held = fold != f, fold == f
        g = ErrorModel.fit(p[fit], r[fit], groups)
        mae, rmse = np.mean(np.abs(r[held])), math.sqrt(np.mean(r[held] ** 2))
        rel["mae"].append((np.mean(g.absolute(p[held])) - mae) / mae if mae > 0 else 0.0)
        rel["rmse"].append((math.sqrt(np.mean(g.squared(p[held]))) - rmse) / rmse if rmse > 0 else 0.0)
    cuts = cut_points(p, SCORE_BINS)
    bins = bin_index(p, cuts)
    count = np.bincount(bins, minlength=cuts.size + 1)
    reps = np.bincount(bins, p, minlength=cuts.size + 1) / np.maximum(count, 1)
    mse = float(np.mean(r ** 2))
    out.update(
        cuts=cuts.tolist(), abs_error=error.absolute(reps).tolist(), sq_error=error.squared(reps).tolist(),
        tails=error.tails(float(p.min()), float(p.max())), groups=groups,
        rows=int(len(p)), centre=float(p.mean()),
        relative_error={m: float(math.sqrt(np.mean(np.square(v)))) for m, v in rel.items()},
        kurtosis=float(np.mean(r ** 4) / mse ** 2) if mse > 0 else 3.0,
        validation={"mae": float(np.mean(np.abs(r))), "rmse": math.sqrt(mse),
                    "r2": float(1 - mse / np.var(yv)) if np.var(yv) > 0 else None},
    )
    return out


@dataclass
class ErrorModel:
    """The expected absolute and squared residual given the prediction: group means placed at
    each group's mean prediction, linear between them, and beyond the ends growing linearly
    (the root of the squared one too) with the slope of the two outer groups, never falling."""

    centre: np.ndarray
    abs_mean: np.ndarray
    root_sq: np.ndarray

    @classmethod
    def fit(cls, p: np.ndarray, r: np.ndarray, groups: int) -> ErrorModel:
        g = bin_index(p, cut_points(p, groups))
        count = np.bincount(g)
        have = count > 0
        mean = lambda v: (np.bincount(g, v) / np.maximum(count, 1))[have]  # noqa: E731
        return cls(mean(p), mean(np.abs(r)), np.sqrt(mean(r ** 2)))

    def _slopes(self, v: np.ndarray) -> tuple[float, float]:
        if v.size < 2:
            return 0.0, 0.0
        c = self.centre
        low = (v[0] - v[1]) / (c[1] - c[0]) if c[1] > c[0] else 0.0
        high = (v[-1] - v[-2]) / (c[-1] - c[-2]) if c[-1] > c[-2] else 0.0
        return max(low, 0.0), max(high, 0.0)

    def _at(self, v: np.ndarray, p: np.ndarray) -> np.ndarray:
        low, high = self._slopes(v)
        c = self.centre
        out = np.interp(p, c, v)
        out = np.where(p > c[-1], v[-1] + high * (p - c[-1]), out)
        return np.where(p < c[0], v[0] + low * (c[0] - p), out)

    def absolute(self, p: np.ndarray) -> np.ndarray:
        return self._at(self.abs_mean, p)

    def squared(self, p: np.ndarray) -> np.ndarray:
        return self._at(self.root_sq, p) ** 2

    def tails(self, low: float, high: float) -> dict[str, Any]:
        """What the estimate needs for predictions beyond the validation range [low, high] (the
        bins count them at the range's end): per end, the root squared error there and the
        outward slopes (absolute; root of squared)."""
        ends = np.array([low, high])
        return {"range": [float(low), float(high)],
                "absolute": {"slope": list(self._slopes(self.abs_mean))},
                "root_squared": {"value": np.sqrt(self.squared(ends)).tolist(),
                                 "slope": list(self._slopes(self.root_sq))}}


# -- scoring: partial, merge -------------------------------------------------------------------
def partial(outputs: pd.DataFrame, ref: dict[str, Any]) -> dict[str, Any]:
    """A batch's (or chunk's) part: integer counts of its rows per score bin (classifiers: by
    predicted class) or per prediction group (regressors, with two sums for the variance of the
    predictions). Rows with a non-finite score are left out and counted."""
    if ref["task"] == "classification":
        from ..core.scoring import proba_column

        classes = ref["classes"] if "per_class" in ref else [ref["positive_class"]]
        scores = [outputs[proba_column(c)].to_numpy(dtype="float64") for c in classes]
        ok = np.logical_and.reduce([np.isfinite(v) for v in scores])
        pred = outputs["prediction"].to_numpy()[ok]
        parts = []
        for c, v, r in zip(classes, scores, ref.get("per_class", [ref]), strict=True):
            positive = pred == c
            cuts = np.asarray(r["cuts"])
            parts.append({"predicted_positive": bin_counts(v[ok][positive], cuts).tolist(),
                          "predicted_negative": bin_counts(v[ok][~positive], cuts).tolist()})
        out = {"rows": int(ok.sum()), "rows_left_out": int((~ok).sum())}
        return {**out, "per_class": parts} if "per_class" in ref else {**out, **parts[0]}
    p = outputs["prediction"].to_numpy(dtype="float64")
    ok = np.isfinite(p)
    p = p[ok]
    d = p - ref["centre"]
    out = {"rows": int(ok.sum()), "rows_left_out": int((~ok).sum()),
           "counts": bin_counts(p, np.asarray(ref["cuts"])).tolist(),
           "sum": float(d.sum()), "sum_sq": float(d @ d)}
    if "tails" in ref:  # predictions beyond the validation range: how far (count, sums)
        low, high = ref["tails"]["range"]
        for side, beyond in (("below", np.clip(low - p, 0, None)), ("above", np.clip(p - high, 0, None))):
            e = beyond[beyond > 0]
            out[side] = [int(e.size), float(e.sum()), float(e @ e)]
    return out


def merge(a: Any, b: Any) -> Any:
    """The partial of two chunks of one batch: counts and sums add, item by item."""
    if isinstance(a, dict):
        return {k: merge(v, b[k]) for k, v in a.items()}
    if isinstance(a, list):
        return [merge(x, y) for x, y in zip(a, b, strict=True)]
    return a + b


# -- the estimate -------------------------------------------------------------------------------
@dataclass
class EstimatedMetric:
    value: float | None
    lower: float | None
    upper: float | None
    validation: float | None
    tolerance: float | None
    decay: float | None  # positive: worse than at validation
    dropped: bool  # the whole interval lies beyond the tolerance, on the worse side
    method: str


@dataclass
class EstimatedPerformance:
    """Performance estimated without labels, each metric with its interval and reason."""

    method: str
    assumption: str
    rows: int
    metrics: dict[str, EstimatedMetric] = field(default_factory=dict)
    reason: str = ""
    calibration: str | None = None
    dropped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finalize(ref: dict[str, Any], part: dict[str, Any],
             tolerances: dict[str, float] | None = None) -> EstimatedPerformance:
    """The estimate of a batch from its merged partial. ``tolerances`` per metric (absolute, in
    the metric's units) default to 5% of the validation value."""
    if ref["task"] != "classification":
        est = _dle(ref, part)
    else:
        est = _cbpe_multiclass(ref, part) if "per_class" in ref else _cbpe(ref, part)
    if not est.metrics:
        return est
    dropped = []
    for name, m in est.metrics.items():
        valid = m.validation
        if valid is None or m.value is None:
            continue
        m.tolerance = float((tolerances or {}).get(name) or DEFAULT_TOLERANCE * max(abs(valid), 1e-12))
        loss = name in LOSSES
        m.decay = (m.value - valid) if loss else (valid - m.value)
        m.dropped = bool((m.lower - valid if loss else valid - m.upper) > m.tolerance)
        if m.dropped:
            dropped.append(name)
    est.dropped = dropped
    est.reason = describe(est)
    return est


def describe(est: EstimatedPerformance) -> str:
    """The estimate in words: each metric with its interval, against validation."""
    parts = []
    for name, m in est.metrics.items():
        if m.value is None:
            continue
        text = f"{LABELS.get(name, name)} {number(m.value)} [{number(m.lower)}, {number(m.upper)}]"
        if m.validation is not None:
            text += f" (validation {number(m.validation)}" + (
                f"; dropped beyond the tolerance {number(m.tolerance)})" if m.dropped else ")")
        parts.append(text)
    return "estimated " + "; ".join(parts) if parts else est.reason


def _cbpe(ref: dict[str, Any], part: dict[str, Any]) -> EstimatedPerformance:
    est = EstimatedPerformance(method=CBPE_METHOD, assumption=ASSUMPTION + "; the calibration of "
                               "the probabilities holds under an input shift", rows=int(part["rows"]),
                               calibration=ref["calibration"]["kind"])
    pos = np.asarray(part["predicted_positive"], dtype="float64")
    neg = np.asarray(part["predicted_negative"], dtype="float64")
    if pos.sum() + neg.sum() < 1:
        est.reason = "not estimated: no row with a finite score"
        return est
    scores = np.asarray(ref["scores"])
    p = calibrate(ref["calibration"], scores)
    values = _expected(p, pos, neg)
    draws = _draws(ref, scores, pos, neg)
    method = {"roc_auc": "expected ROC AUC under the calibrated probabilities",
              "accuracy": "expected share of correct predictions",
              "f1": "expected F1 from expected confusion counts"}
    _add_metrics(est, ref, values, draws, method)
    return est


def _num(x: float) -> float | None:
    return float(x) if x is not None and math.isfinite(x) else None


def _expected(p: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> dict[str, float]:
    """Expected ROC AUC, accuracy and F1 from per-bin counts by predicted class."""
    c = pos + neg
    n = c.sum()
    tp, fp, fn = float(pos @ p), float(pos @ (1 - p)), float(neg @ p)
    accuracy = (tp + float(neg @ (1 - p))) / n
    f1 = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) > 0 else math.nan
    positives, negatives = c * p, c * (1 - p)
    below = np.cumsum(negatives) - negatives
    self_pairs = c * p * (1 - p)  # a row is never paired with itself
    den = positives.sum() * negatives.sum() - self_pairs.sum()
    # within a bin, pairs count as ties (1/2): sum_b P_b N_b minus the pairs of a row with itself
    num = float(positives @ below + 0.5 * (np.sum(positives * negatives) - self_pairs.sum()))
    auc = num / den if den > 0 else math.nan
    return {"roc_auc": auc, "accuracy": accuracy, "f1": f1}


def bootstrap_calibrations(ref: dict[str, Any], rng: np.random.Generator) -> list[dict[str, Any]]:
    """The :data:`BOOTSTRAP` calibration maps refitted on resamples of one score's validation
    bins, drawn from ``rng`` (left as after drawing them, computed or not). A sigmoid's refits
    (a logistic regression each, most of a scoring run's estimation time) are made once at
    packaging and stored in the reference (``bootstrap``); an isotonic map's cost little and
    are refitted; references written before either are refitted too, to the same maps."""
    # a model left uncalibrated still has calibration uncertainty: bootstrap a sigmoid, which
    # holds the identity map
    kind = ref["calibration"]["kind"] if ref["calibration"]["kind"] != "none" else "sigmoid"
    stored = ref.get("bootstrap")
    count = np.asarray(ref["valid_counts"], dtype="float64")
    ones = np.asarray(ref["valid_positives"], dtype="float64")
    cells = np.concatenate([ones, count - ones])
    scores = np.asarray(ref["scores"], dtype="float64")
    k = count.size
    fits = []
    for _ in range(BOOTSTRAP):
        w = rng.multinomial(int(cells.sum()), cells / cells.sum()).astype("float64")
        if stored is not None:
            continue  # drawn all the same: the label draws that follow use this rng
        have = w > 0
        s = np.concatenate([scores, scores])[have]
        y = np.concatenate([np.ones(k), np.zeros(k)])[have]
        fits.append(fit_calibration(kind, s, y, w[have]))
    return list(stored) if stored is not None else fits


def _stored_bootstrap(ref: dict[str, Any], seed: int) -> list[dict[str, Any]] | None:
    """What packaging stores as ``bootstrap`` for one score: the sigmoid refits (see
    :func:`bootstrap_calibrations`), drawn with the seed its scoring draws will use."""
    if ref["calibration"]["kind"] not in ("sigmoid", "none"):
        return None
    return bootstrap_calibrations(ref, np.random.default_rng(seed))


def _draws(ref: dict[str, Any], scores: np.ndarray, pos: np.ndarray,
           neg: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric's realised value over DRAWS label draws, each from a bootstrap calibration."""
    rng = np.random.default_rng(ref.get("seed", 0))
    maps = [calibrate(c, scores) for c in bootstrap_calibrations(ref, rng)]
    P = np.stack([maps[d % len(maps)] for d in range(DRAWS)])  # DRAWS x bins
    y_pos = rng.binomial(pos.astype("int64"), P)  # actual positives among predicted positive
    y_neg = rng.binomial(neg.astype("int64"), P)
    n = pos.sum() + neg.sum()
    tp = y_pos.sum(axis=1)
    fp = pos.sum() - tp
    fn = y_neg.sum(axis=1)
    accuracy = (tp + neg.sum() - fn) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = 2 * tp / (2 * tp + fp + fn)
        positives = y_pos + y_neg
        negatives = (pos + neg) - positives
        below = np.cumsum(negatives, axis=1) - negatives
        num = np.sum(positives * below, axis=1) + 0.5 * np.sum(positives * negatives, axis=1)
        auc = num / (positives.sum(axis=1) * negatives.sum(axis=1))
    return {"roc_auc": auc, "accuracy": accuracy, "f1": f1, "tp": tp}


def _cbpe_multiclass(ref: dict[str, Any], part: dict[str, Any]) -> EstimatedPerformance:
    """Macro one-vs-rest ROC AUC (the mean over classes of each class's expected AUC) and the
    expected accuracy (each row's calibrated probability of its predicted class)."""
    kinds = sorted({r["calibration"]["kind"] for r in ref["per_class"]})
    est = EstimatedPerformance(method=CBPE_METHOD + " (each class one-vs-rest)",
                               assumption=ASSUMPTION + "; the calibration of the probabilities "
                               "holds under an input shift", rows=int(part["rows"]),
                               calibration="/".join(kinds))
    n = float(part["rows"])
    if n < 1:
        est.reason = "not estimated: no row with finite scores"
        return est
    aucs, tps, draws_auc, draws_tp = [], [], [], []
    for r, p_ in zip(ref["per_class"], part["per_class"], strict=True):
        pos = np.asarray(p_["predicted_positive"], dtype="float64")
        neg = np.asarray(p_["predicted_negative"], dtype="float64")
        scores = np.asarray(r["scores"])
        p = calibrate(r["calibration"], scores)
        aucs.append(_expected(p, pos, neg)["roc_auc"])
        tps.append(float(pos @ p))
        d = _draws({**r, "seed": ref.get("seed", 0) + len(aucs)}, scores, pos, neg)
        draws_auc.append(d["roc_auc"])
        draws_tp.append(d["tp"])
    values = {"roc_auc_ovr": float(np.nanmean(aucs)), "accuracy": sum(tps) / n}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a class absent from the batch
        draws = {"roc_auc_ovr": np.nanmean(np.stack(draws_auc), axis=0),
                 "accuracy": np.sum(np.stack(draws_tp), axis=0) / n}
    method = {"roc_auc_ovr": "mean over classes of the expected one-vs-rest ROC AUC",
              "accuracy": "expected share of correct predictions"}
    _add_metrics(est, ref, values, draws, method)
    return est


def _dle(ref: dict[str, Any], part: dict[str, Any]) -> EstimatedPerformance:
    est = EstimatedPerformance(method=DLE_METHOD, assumption=ASSUMPTION + "; rows outside the "
                               "training range tend to be under-estimated", rows=int(part["rows"]))
    c = np.asarray(part["counts"], dtype="float64")
    n = c.sum()
    if n < 1:
        est.reason = "not estimated: no row with a finite prediction"
        return est
    g1, g2 = np.asarray(ref["abs_error"]), np.asarray(ref["sq_error"])
    mae, mse = float(c @ g1 / n), float(c @ g2 / n)
    if "tails" in ref:  # beyond the validation range, the error grows with the distance
        t = ref["tails"]
        for i, side in ((0, "below"), (1, "above")):
            _, e1, e2 = part[side]
            a, k = t["root_squared"]["value"][i], t["root_squared"]["slope"][i]
            mae += t["absolute"]["slope"][i] * e1 / n
            mse += (2 * a * k * e1 + k * k * e2) / n  # (a + k e)^2 - a^2, the bins count a^2
    rmse = math.sqrt(mse)
    rel = ref["relative_error"]
    half_mae = 1.96 * math.sqrt(max(float(c @ (g2 - g1 ** 2)), 0.0)) / n + rel["mae"] * mae
    # the relative standard error of a root mean square: sqrt(kurtosis - 1) / (2 sqrt(n))
    half_rmse = rmse * (1.96 * math.sqrt(max(ref["kurtosis"] - 1, 0.0)) / (2 * math.sqrt(n)) + rel["rmse"])
    mean = part["sum"] / n
    var_pred = max(part["sum_sq"] / n - mean ** 2, 0.0)

    def r2(m: float) -> float:
        return 1 - m / (var_pred + m) if var_pred + m > 0 else math.nan

    lo_rmse, hi_rmse = max(rmse - half_rmse, 0.0), rmse + half_rmse
    valid = ref["validation"]
    common = "; interval: sampling error widened by the estimator's cross-fitted error at packaging"
    est.metrics = {
        "mae": EstimatedMetric(mae, max(mae - half_mae, 0.0), mae + half_mae, valid.get("mae"), None, None,
                               False, "mean expected |residual| of each prediction group" + common),
        "rmse": EstimatedMetric(rmse, lo_rmse, hi_rmse, valid.get("rmse"), None, None, False,
                                "root mean expected squared residual" + common),
        "r2": EstimatedMetric(_num(r2(mse)), _num(r2(hi_rmse ** 2)), _num(r2(lo_rmse ** 2)), valid.get("r2"),
                              None, None, False,
                              "1 - MSE / (Var(prediction) + MSE): assumes residuals with mean 0 "
                              "given the prediction"),
    }
    return est


def tolerances(reference: dict[str, Any]) -> dict[str, float]:
    """The decay each estimated metric may show before its check warns: the ``max_decay`` the
    packaging checks declared for the same metric, where there is one."""
    from ..core.metrics import resolve

    out = {}
    for name, th in ((reference.get("metrics") or {}).get("thresholds") or {}).items():
        try:
            short = SCORERS.get(resolve(name).scorer_name)
        except NbprodUsageError:  # a name this version does not know: no tolerance from it
            continue
        if short and th.get("max_decay") is not None:
            out[short] = float(th["max_decay"])
    return out


def _add_metrics(est: Any, ref: dict[str, Any], values: dict[str, float],
                 draws: dict[str, np.ndarray], method: dict[str, str]) -> None:
    """Each estimated metric with the 95% interval of its label draws."""
    for name, value in values.items():
        lo, hi = (np.nanquantile(draws[name], [0.025, 0.975]) if np.isfinite(draws[name]).any()
                  else (np.nan, np.nan))
        est.metrics[name] = EstimatedMetric(
            value=_num(value), lower=_num(min(lo, value)), upper=_num(max(hi, value)),
            validation=ref["validation"].get(name), tolerance=None, decay=None, dropped=False,
            method=method[name] + "; 95% interval of the realised value (label draws x "
                                  "calibration bootstrap)")
