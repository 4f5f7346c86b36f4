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
from .core.results import CheckResult

DEFAULT_DRIFT_RUNS = 3
BOOTSTRAP = 100
BOOTSTRAP_ROWS = 5000
DEFAULT_DECAY = 0.05  # relative decay tolerated when no overfit gap was declared
MIN_LABELLED_ROWS = 10  # fewer labelled rows are reported, never judged
MIN_MATCHED_SHARE = 0.5  # fewer label rows matching a scored row: warn (wrong file or ids?)


@dataclass
class Monitoring:
    drift: dict[str, Any]
    performance: dict[str, Any] | None
    retrain: dict[str, Any]
    checks: list[CheckResult] = field(default_factory=list)


# -- drift -----------------------------------------------------------------------------------
def measure_drift(art: Any, scored: Any, cfg: dr.DriftConfig | None = None) -> dict[str, Any]:
    from .core.profile import feature_frame

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
    """Labels as the model's classes (or floats); InputError when some cannot be."""
    from .exceptions import InputError
    from .performance import label_values

    lv = label_values(y, "classification" if classes else "regression", classes)
    if lv.invalid:
        shown = ", ".join(f"{v} ({n} rows)" for v, n in list(lv.invalid.items())[:5])
        raise InputError(f"The labels hold {lv.reason}: {shown}.")
    return lv.values.reset_index(drop=True)


def _labels_check(perf: dict[str, Any], invalid: dict[str, int], reason: str | None,
                  usable: int) -> CheckResult:
    """How the labels joined and whether they make sense for this model."""
    join = perf["join"]
    scored, label_rows, matched = perf["rows"], perf["label_rows"], perf["matched_label_rows"]
    counts = (f"{usable:,} of {scored:,} scored rows labelled; {matched:,} of {label_rows:,} "
              f"label rows matched a scored row ({join})")
    problems, status = [], "pass"
    if invalid:
        status = "fail"
        shown = ", ".join(f"{v} ({n} row{'s' if n != 1 else ''})"
                          for v, n in list(invalid.items())[:5])
        more = f" and {len(invalid) - 5} more" if len(invalid) > 5 else ""
        problems.append(f"the labels contradict the model: {sum(invalid.values()):,} hold "
                        f"{reason}: {shown}{more}")
    if perf["empty_targets"]:
        problems.append(f"{perf['empty_targets']:,} label rows have an empty target (not used)")
    if matched == 0:
        problems.append("no label matched a scored row: are these the labels of this batch, "
                        "with the ids written the same way?")
    elif matched < MIN_MATCHED_SHARE * (label_rows - perf["empty_targets"]):
        problems.append(f"only {matched / max(label_rows, 1):.0%} of the label rows matched: "
                        "are these the labels of this batch, with the ids written the same way?")
    if 0 < usable < MIN_LABELLED_ROWS:
        problems.append(f"{usable} labelled row{'s are' if usable != 1 else ' is'} too few to "
                        f"judge performance (at least {MIN_LABELLED_ROWS})")
    if problems and status == "pass":
        status = "warn"
    if usable == 0 and status == "pass":
        status = "warn"
    message = counts + ("; " + "; ".join(problems) if problems else "")
    return CheckResult(name="labels", kind="labels", status=status, message=message,
                       value=usable, threshold=MIN_LABELLED_ROWS,
                       details={"labelled_rows": usable, "label_rows": label_rows,
                                "matched_label_rows": matched, "scored_rows": scored,
                                "empty_targets": perf["empty_targets"], "invalid": invalid,
                                "join": join})


def _single_class_reason(yk: pd.Series, m: Any, task: str) -> str | None:
    if task != "classification" or yk.nunique() >= 2:
        return None
    from .performance import label_text

    only = label_text(yk.iloc[0]) if len(yk) else "none"
    return f"the labelled rows all hold class {only}; {m.label} needs at least two classes"


def evaluate_performance(art: Any, scored: Any, labels: pd.DataFrame) -> tuple[dict[str, Any], list[CheckResult]]:
    """Metrics on the labelled rows against validation, and a ``labels`` check on the labels.

    Never passes on nonsense: labels with classes the model never saw or targets that are not
    finite numbers fail the ``labels`` check (and are left out of the metrics); a metric that
    cannot be computed (a single class, too few rows, an undefined value) is a ``warn`` with
    the reason; too few or no matched labels are a ``warn`` with the counts.
    """
    import warnings

    from .core.metrics import resolve
    from .performance import join_labels, label_values

    outputs = scored.all_outputs
    positions = getattr(scored, "positions", None)
    if (not art.id_column and positions is not None and len(positions) != scored.rows_in
            and len(labels) == scored.rows_in):
        labels = labels.iloc[positions]  # by row order: the labels of the rows not rejected
    joined = join_labels(art, outputs, labels)
    y = joined.y
    known = y.notna().to_numpy()
    lv = label_values(y[known], art.task, art.classes)
    usable_pos = np.flatnonzero(known)[lv.valid]
    usable = len(usable_pos)
    perf: dict[str, Any] = {"labelled_rows": usable, "rows": len(outputs),
                            "label_rows": joined.label_rows, "matched_label_rows": joined.matched,
                            "empty_targets": joined.empty, "invalid_labels": lv.invalid,
                            "join": joined.how, "metrics": {}}
    label_check = _labels_check(perf, lv.invalid, lv.reason, usable)
    checks = [label_check]
    ref = art.reference["metrics"]
    if usable == 0:
        perf["note"] = "no scored row has a usable label"
        for name in ref["values"]:
            perf["metrics"][name] = {"value": None, "error": "no labelled rows"}
        perf["decayed"] = False
        return perf, checks
    yk = lv.values.reset_index(drop=True)
    est = _precomputed(art.task, outputs.iloc[usable_pos].reset_index(drop=True), art.classes)
    rows = np.arange(len(yk)).reshape(-1, 1)
    rng = np.random.default_rng(0)
    for name, info in ref["values"].items():
        m = resolve(name)
        label = m.label
        why = _single_class_reason(yk, m, art.task) if _needs_two_classes(m) else None
        current = math.nan
        if why is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # undefined metrics come back as NaN here
                try:
                    current = m.natural(m.score(est, rows, yk))
                except ValueError as exc:  # e.g. a log loss without every class
                    why = f"{label} could not be computed: {str(exc)[:200]}"
        if why is None and not math.isfinite(current):
            why = f"{label} is undefined on these {len(yk):,} labelled rows"
        valid = info.get("value")
        if why is not None:
            perf["metrics"][name] = {"value": None, "validation": valid, "error": why}
            checks.append(CheckResult(
                name=f"performance:{name}", kind="performance", status="warn",
                message=f"{label} not measured on {len(yk):,} labelled rows: {why}",
                value=None, details=perf["metrics"][name]))
            continue
        se = _bootstrap_se(m, est, rows, yk, rng)
        th = ref.get("thresholds", {}).get(name, {})
        if valid is None or not math.isfinite(valid):
            perf["metrics"][name] = {"value": current, "validation": None, "standard_error": se,
                                     "error": "no validation value recorded at packaging"}
            checks.append(CheckResult(
                name=f"performance:{name}", kind="performance", status="warn",
                message=f"{label} {current:.3g} on {len(yk):,} labelled rows; no validation "
                        "value was recorded at packaging to compare it with",
                value=current, details=perf["metrics"][name]))
            continue
        sign = 1 if m.greater_is_better else -1
        decay = sign * (valid - current)  # positive: worse than at validation
        tolerance = th.get("max_decay") if th.get("max_decay") is not None else DEFAULT_DECAY * max(abs(valid), 1e-12)
        noise = 2 * se if se is not None else 0.0
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
        few = len(yk) < MIN_LABELLED_ROWS
        if problems:
            status = "warn" if few else "fail"
            text = f"{label} {current:.3g} on {len(yk):,} labelled rows is " + "; ".join(problems)
        elif few:
            status = "warn"
            text = (f"{label} {current:.3g} on only {len(yk):,} labelled rows (validation "
                    f"{valid:.3g}): too few to judge (at least {MIN_LABELLED_ROWS})")
        else:
            status = "pass"
            text = f"{label} {current:.3g} on {len(yk):,} labelled rows (validation {valid:.3g})"
        if few and problems:
            text += f"; but {len(yk):,} labelled rows are too few to judge (at least {MIN_LABELLED_ROWS})"
        checks.append(CheckResult(
            name=f"performance:{name}", kind="performance", status=status, message=text,
            value=current, threshold={"min": th.get("min"), "max": th.get("max"), "max_decay": tolerance},
            details=perf["metrics"][name]))
    perf["decayed"] = any(c.status == "fail" for c in checks if c.kind == "performance")
    return perf, checks


def _needs_two_classes(m: Any) -> bool:
    """Metrics undefined on labels of a single class (ROC AUC, log loss, average precision)."""
    name = m.scorer_name
    return name.startswith(("roc_auc", "neg_log_loss", "average_precision", "neg_brier"))


def _bootstrap_se(m: Any, est: Any, rows: np.ndarray, yk: pd.Series,
                  rng: np.random.Generator) -> float | None:
    """Bootstrap standard error of the metric at this batch size (None when undefined)."""
    import warnings

    boot_n = min(len(yk), BOOTSTRAP_ROWS)
    sims = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(BOOTSTRAP):
            pick = rng.integers(0, len(yk), boot_n)
            try:
                value = m.natural(m.score(est, rows[pick], yk.iloc[pick]))
            except ValueError:
                continue
            if math.isfinite(value):
                sims.append(value)
    if len(sims) <= 10:
        return None
    return float(np.std(sims)) * math.sqrt(boot_n / len(yk))


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
