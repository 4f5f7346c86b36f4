"""Monitoring one scored batch: its drift against the reference, and the retrain signal.

Given a scored batch (:class:`~nbprod.core.scoring.Scored`) and the artifact's reference, this
module measures drift of the raw inputs, of the predictions and of the model-input features
(the statistics are :mod:`nbprod.monitoring.drift`'s), turns it into checks, and decides whether
to recommend retraining: at once when performance falls below its threshold or decays beyond
tolerance (:mod:`nbprod.monitoring.performance` measures it, with labels), or when dataset drift
persists over ``drift_runs`` consecutive runs (hysteresis rather than one noisy window).
"""

from __future__ import annotations

from typing import Any

from ..core.results import CheckResult, listing
from . import drift as dr

DEFAULT_DRIFT_RUNS = 3


# -- drift -----------------------------------------------------------------------------------
def measure_drift(art: Any, scored: Any, cfg: dr.DriftConfig | None = None) -> dict[str, Any]:
    return drift_from(art, drift_profiles(art, scored), cfg)


def drift_profiles(art: Any, scored: Any, *, mergeable: bool = False) -> dict[str, Any]:
    """The batch's counts in the reference's bins: raw inputs of the scored rows, outputs and
    model-input features. The profiles of a batch's chunks merge (:func:`merge_profiles`)."""
    from ..core.profile import feature_frame

    ref = art.reference
    train_profile = art.train_profile
    out_ref = ref["outputs"]["profile"]
    outputs = scored.all_outputs[[c for c in out_ref if c in scored.all_outputs.columns]]
    features = None
    if ref.get("features") and scored.features is not None:
        frame = feature_frame(scored.features)
        if frame is not None:
            features = dr.frame_batch_profile(frame, ref["features"]["profile"],
                                              mergeable=mergeable)
    return {"columns": dr.frame_batch_profile(scored.inputs, train_profile, mergeable=mergeable),
            "predictions": dr.frame_batch_profile(outputs, out_ref, mergeable=mergeable),
            "features": features}


def merge_profiles(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """:func:`drift_profiles` of two chunks of one batch, ``a`` before ``b``."""
    out: dict[str, Any] = {}
    for part in ("columns", "predictions", "features"):
        pa_, pb = a.get(part), b.get(part)
        if pa_ is None or pb is None:
            out[part] = pa_ if pb is None else pb
            continue
        out[part] = {c: (dr.merge(pa_[c], pb[c]) if c in pb else pa_[c]) for c in pa_}
        out[part].update({c: p for c, p in pb.items() if c not in pa_})
    return out


def drift_from(art: Any, profiles: dict[str, Any], cfg: dr.DriftConfig | None = None) -> dict[str, Any]:
    """Drift statistics, decisions and the dataset verdict from the batch's profiles."""
    cfg = cfg or dr.DriftConfig()
    ref = art.reference
    train_profile = art.snapshot("train")["profile"]
    batch = {c: dr.settled(p) for c, p in profiles["columns"].items()}
    columns = dr.compare(train_profile, batch, cfg)
    importance = {c: v["weight"] for c, v in (art.manifest.get("importance") or {}).get("columns", {}).items()}
    dataset = dr.dataset_verdict(columns, importance, cfg)
    out_ref = ref["outputs"]["profile"]
    out_batch = {c: dr.settled(p) for c, p in profiles["predictions"].items()}
    predictions = dr.compare(out_ref, out_batch, cfg)
    features = None
    if ref.get("features") and profiles.get("features") is not None:
        f_ref = ref["features"]["profile"]
        features = dr.compare(f_ref, {c: dr.settled(p) for c, p in profiles["features"].items()},
                              cfg)
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
    listed = listing([_named(c, cols[c]) for c in drifted], 5)
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
            message=(f"{len(f)} model-input feature(s) drifted: {listing(f)}" if f
                     else "model-input features in line with training"),
            value=len(f), details={"columns": f}))
    return out


def _named(column: str, d: dict[str, Any]) -> str:
    """A drifted column, with its moved category shares: ``cut (Fair: 2.8% -> 7.5%)``."""
    changes = d.get("share_changes") or []
    return f"{column} ({', '.join(changes[:2])})" if changes else column


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
