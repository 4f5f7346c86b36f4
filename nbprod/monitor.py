"""Monitoring a scored batch: drift, performance decay and the retrain signal.

Given a scored batch (:class:`~nbprod.scoring.Scored`) and the artifact's reference, this
module measures drift of the raw inputs, of the predictions and of the model-input features;
with labels it measures performance against the validation values and thresholds recorded at
packaging; and it decides whether to recommend retraining: at once when performance falls below
its threshold or decays beyond tolerance, or when dataset drift persists over ``drift_runs``
consecutive runs (hysteresis rather than one noisy window).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import drift as dr
from .results import CheckResult

DEFAULT_DRIFT_RUNS = 3
BOOTSTRAP = 100
BOOTSTRAP_ROWS = 5000
DEFAULT_DECAY = 0.05  # relative decay tolerated when no overfit gap was declared


@dataclass
class Monitoring:
    drift: dict[str, Any]
    performance: dict[str, Any] | None
    retrain: dict[str, Any]
    checks: list[CheckResult] = field(default_factory=list)


# -- drift -----------------------------------------------------------------------------------
def measure_drift(art: Any, scored: Any, cfg: dr.DriftConfig | None = None) -> dict[str, Any]:
    from .reference import feature_frame

    cfg = cfg or dr.DriftConfig()
    ref = art.reference
    train_profile = art.snapshot("train")["profile"]
    batch = dr.frame_batch_profile(scored.inputs, train_profile)
    columns = dr.compare(train_profile, batch, cfg)
    importance = {c: v["weight"] for c, v in (art.manifest.get("importance") or {}).get("columns", {}).items()}
    dataset = dr.dataset_verdict(columns, importance, cfg)
    out_ref = ref["outputs"]["profile"]
    outputs = scored.all_outputs[[c for c in out_ref if c in scored.all_outputs.columns]]
    out_batch = dr.frame_batch_profile(outputs, out_ref)
    predictions = dr.compare(out_ref, out_batch, cfg)
    features = None
    if ref.get("features"):
        frame = feature_frame(scored.features)
        if frame is not None:
            f_ref = ref["features"]["profile"]
            features = dr.compare(f_ref, dr.frame_batch_profile(frame, f_ref), cfg)
    return {
        "dataset": dataset,
        "columns": columns,
        "predictions": {"drifted": any(v["drifted"] for v in predictions.values()),
                        "reference": ref["outputs"]["snapshot"], "columns": predictions},
        "features": ({"drifted": [c for c, v in features.items() if v["drifted"]], "columns": features}
                     if features is not None else None),
        "config": cfg.to_dict(),
        # the batch's counts in the reference bins, for the drift explorer (nbprod.explore)
        "profiles": {"columns": shareable_profiles(batch, train_profile), "predictions": out_batch},
    }


def shareable_profiles(batch: dict[str, Any], reference: dict[str, Any]) -> dict[str, Any]:
    """Batch profiles fit for the summary JSON: PII columns keep their counts only."""
    return {c: ({k: p[k] for k in ("type", "count", "null_count")} if reference[c].get("hidden") else p)
            for c, p in batch.items()}


def drift_checks(d: dict[str, Any]) -> list[CheckResult]:
    ds = d["dataset"]
    cols = d["columns"]
    drifted = ds["drifted_columns"]
    if ds["drifted"]:
        status = "fail"
    elif drifted:
        status = "warn"
    else:
        status = "pass"
    listed = ", ".join(drifted[:5]) + (" ..." if len(drifted) > 5 else "")
    text = (f"{len(drifted)} of {len(cols)} input columns drifted (importance-weighted share "
            f"{ds['weighted_share']:.0%}, alarm at {ds['threshold']:.0%})" + (f": {listed}" if drifted else ""))
    out = [CheckResult(name="drift:dataset", kind="drift", status=status, message=text,
                       value=ds["weighted_share"], threshold=ds["threshold"],
                       details={"drifted_columns": drifted, "rule": ds["rule"]})]
    preds = d["predictions"]
    moved = [c for c, v in preds["columns"].items() if v["drifted"]]
    out.append(CheckResult(
        name="drift:predictions", kind="drift", status="warn" if moved else "pass",
        message=(f"prediction distribution moved ({', '.join(moved)}) against the "
                 f"{preds['reference']} snapshot" if moved else
                 f"prediction distribution in line with the {preds['reference']} snapshot"),
        value=len(moved), details={"columns": moved}))
    if d["features"] is not None:
        f = d["features"]["drifted"]
        out.append(CheckResult(
            name="drift:features", kind="drift", status="warn" if f else "pass",
            message=(f"{len(f)} model-input feature(s) drifted: {', '.join(f[:5])}" if f
                     else "model-input features in line with training"),
            value=len(f), details={"columns": f}))
    return out


# -- performance -----------------------------------------------------------------------------
def _precomputed(task: str, outputs: pd.DataFrame, classes: list[Any] | None) -> Any:
    """An estimator that answers with already computed outputs, indexed by row number."""
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin

    pred = outputs["prediction"].to_numpy()
    if task == "classification":
        proba = outputs[[f"proba_{c}" for c in classes or []]].to_numpy(dtype="float64")

        class Fixed(ClassifierMixin, BaseEstimator):
            def __init__(self) -> None:
                self.classes_ = np.asarray(classes)

            def predict(self, X):
                return pred[np.asarray(X)[:, 0]]

            def predict_proba(self, X):
                return proba[np.asarray(X)[:, 0]]

        return Fixed()

    class FixedReg(RegressorMixin, BaseEstimator):
        def predict(self, X):
            return pred[np.asarray(X)[:, 0]]

    return FixedReg()


def _coerce_labels(y: pd.Series, classes: list[Any] | None) -> pd.Series:
    if not classes:
        return pd.to_numeric(y)
    sample = classes[0]
    if isinstance(sample, bool):
        return y.map(lambda v: str(v).strip().lower() in ("true", "1"))
    if isinstance(sample, int | float):
        return pd.to_numeric(y).astype(type(sample))
    return y.astype("object").map(str)


def evaluate_performance(art: Any, scored: Any, labels: pd.DataFrame) -> tuple[dict[str, Any], list[CheckResult]]:
    from .metrics import resolve
    from .performance import align_labels

    outputs = scored.all_outputs
    positions = getattr(scored, "positions", None)
    if (not art.id_column and positions is not None and len(positions) != scored.rows_in
            and len(labels) == scored.rows_in):
        labels = labels.iloc[positions]  # by row order: the labels of the rows not rejected
    y = align_labels(art, outputs, labels)
    known = y.notna().to_numpy()
    perf: dict[str, Any] = {"labelled_rows": int(known.sum()), "rows": len(outputs), "metrics": {}}
    if not known.any():
        perf["note"] = "no scored row has a label"
        return perf, [CheckResult(name="performance", kind="performance", status="skip",
                                  message="labels given, but no scored row has one")]
    yk = _coerce_labels(y[known].reset_index(drop=True), art.classes)
    est = _precomputed(art.task, outputs.loc[known].reset_index(drop=True), art.classes)
    rows = np.arange(len(yk)).reshape(-1, 1)
    ref = art.reference["metrics"]
    checks = []
    rng = np.random.default_rng(0)
    for name, info in ref["values"].items():
        m = resolve(name)
        try:
            current = m.natural(m.score(est, rows, yk))
        except ValueError as exc:  # e.g. ROC AUC on a batch with a single class
            perf["metrics"][name] = {"error": str(exc)}
            continue
        boot_n = min(len(yk), BOOTSTRAP_ROWS)
        sims = []
        for _ in range(BOOTSTRAP):
            pick = rng.integers(0, len(yk), boot_n)
            try:
                sims.append(m.natural(m.score(est, rows[pick], yk.iloc[pick])))
            except ValueError:
                continue
        se = float(np.std(sims)) * math.sqrt(boot_n / len(yk)) if len(sims) > 10 else float("nan")
        valid = info["value"]
        th = ref.get("thresholds", {}).get(name, {})
        sign = 1 if m.greater_is_better else -1
        decay = sign * (valid - current)  # positive: worse than at validation
        tolerance = th.get("max_decay") if th.get("max_decay") is not None else DEFAULT_DECAY * max(abs(valid), 1e-12)
        noise = 2 * se if se == se else 0.0
        breaches = []
        if th.get("min") is not None and current < th["min"]:
            breaches.append(f"below the minimum {th['min']:.3g}")
        if th.get("max") is not None and current > th["max"]:
            breaches.append(f"above the maximum {th['max']:.3g}")
        decayed = decay > max(tolerance, noise)
        problems = breaches + ([f"{decay:.3g} worse than at validation ({valid:.3g}); tolerated "
                                f"{max(tolerance, noise):.3g}"] if decayed else [])
        perf["metrics"][name] = {"value": current, "validation": valid, "decay": decay,
                                 "standard_error": se, "tolerance": tolerance,
                                 "min": th.get("min"), "max": th.get("max"),
                                 "below_threshold": bool(breaches), "decayed": decayed}
        label = m.label
        checks.append(CheckResult(
            name=f"performance:{name}", kind="performance", status="fail" if problems else "pass",
            message=(f"{label} {current:.3g} on {len(yk):,} labelled rows is " + "; ".join(problems))
            if problems else f"{label} {current:.3g} on {len(yk):,} labelled rows (validation {valid:.3g})",
            value=current, threshold={"min": th.get("min"), "max": th.get("max"), "max_decay": tolerance},
            details=perf["metrics"][name]))
    perf["decayed"] = any(c.status == "fail" for c in checks)
    return perf, checks


# -- retrain -----------------------------------------------------------------------------------
def retrain_decision(checks: list[CheckResult], dataset_drifted: bool,
                     previous_drift: list[bool], drift_runs: int = DEFAULT_DRIFT_RUNS) -> dict[str, Any]:
    """Whether to retrain: performance now, or drift in ``drift_runs`` consecutive runs.

    ``previous_drift`` holds the dataset-drift flags of earlier runs of the same artifact, newest
    first.
    """
    streak = 0
    if dataset_drifted:
        streak = 1
        for flag in previous_drift:
            if not flag:
                break
            streak += 1
    reasons = [f"{c.name}: {c.message}" for c in checks if c.kind == "performance" and c.status == "fail"]
    if dataset_drifted and streak >= drift_runs:
        reasons.append(f"dataset drift persisted over {streak} consecutive runs (threshold {drift_runs})")
    elif dataset_drifted:
        note = f"dataset drift in {streak} consecutive run(s); retraining is advised at {drift_runs}"
    return {
        "recommended": bool(reasons),
        "reasons": reasons,
        "consecutive_drift_runs": streak,
        "drift_runs_required": drift_runs,
        **({"note": note} if dataset_drifted and streak < drift_runs else {}),
    }
