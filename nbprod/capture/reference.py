"""The monitoring reference written at packaging: ``reference.json`` in the artifact.

It holds what scoring runs compare against, computed once from the snapshots so that scoring
never re-reads them: the profile of the model's outputs on the validation snapshot (prediction
drift), the profile of the model-input features on the training snapshot (feature drift), and
the validation value of every metric the checks named (performance decay). Feature columns
that carry personal data (a hidden input passed through, or its values) keep counts only.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..core.profile import feature_frame, frame_profile

REFERENCE_FILE = "reference.json"


def metric_names(session: Any) -> list[str]:
    from ..core.metrics import default_metric

    cap = session.require_model()
    n_classes = len(getattr(cap.model, "classes_", [])) or None
    names = [default_metric(cap.task, n_classes).name]
    for c in session.checks.values():
        m = c.details.get("metric") if c.details else None
        if m and m not in names:
            names.append(m)
    return names


def build(session: Any, root: Any = None) -> dict[str, Any]:
    """The reference; with ``root`` (the artifact being written, its snapshot samples already
    there) also the explanation reference (:func:`explanations`)."""
    from ..checks.context import evaluation
    from ..core.metrics import resolve

    ev = evaluation(session)
    scorer = session.live_scorer()
    on_valid = ev.X_valid is not None
    X_ref, y_ref = (ev.X_valid, ev.y_valid) if on_valid else (ev.X_train, ev.y_train)
    outputs = scorer.predict(X_ref, pd.RangeIndex(len(y_ref)))
    feats = feature_frame(ev.X_train)
    carried: dict[str, str] = {}
    if feats is not None and session.train.pii:
        from ..core.pii import carried_columns

        carried = carried_columns(feats, session.train.data, session.train.pii)
    metrics: dict[str, Any] = {}
    for name in metric_names(session):
        m = resolve(name)
        metrics[name] = {"value": m.natural(m.score(ev.model, X_ref, y_ref)),
                         "greater_is_better": m.greater_is_better}
    thresholds: dict[str, dict[str, Any]] = {}
    for c in session.checks.values():
        name = (c.details or {}).get("metric")
        if name is None or name not in metrics:
            continue
        if c.kind == "metric" and isinstance(c.threshold, dict):
            thresholds.setdefault(name, {}).update(c.threshold)
        elif c.kind == "overfit":  # the allowed train/valid gap also bounds later decay
            thresholds.setdefault(name, {})["max_decay"] = c.threshold
    extra: dict[str, Any] = {}
    if root is not None:
        extra["explanations"] = explanations(session, root, carried)
        extra["partial_dependence"] = dependence(session, ev, extra["explanations"], carried)
    return {
        **extra,
        "outputs": {"snapshot": "valid" if on_valid else "train", "rows": len(outputs),
                    "profile": frame_profile(outputs)},
        "features": ({"snapshot": "train", "profile": frame_profile(feats, hidden=set(carried)),
                      "pii": carried} if feats is not None else None),
        "metrics": {"snapshot": "valid" if on_valid else "train", "rows": len(y_ref),
                    "values": metrics, "thresholds": thresholds},
    }


def explanations(session: Any, root: Any, carried: dict[str, str]) -> dict[str, Any]:
    """Mean absolute contribution per model input on validation rows (training rows when there
    is no validation snapshot), measured from the background the artifact's explanations use
    (the stored sample of that snapshot): what explanation drift compares a batch with."""
    from pathlib import Path

    from ..monitoring.explanations import reference

    snap = session.valid or session.train
    background = pd.read_parquet(Path(root) / f"snapshots/{snap.role}.sample.parquet")
    rows = snap.data.drop(columns=[c for c in (snap.target,) if c in snap.data.columns])
    return reference(session.live_scorer(), rows, background, snapshot=snap.role,
                     carried=set(carried))


def dependence(session: Any, ev: Any, explained: dict[str, Any],
               carried: dict[str, str]) -> dict[str, Any] | None:
    """Partial dependence of the inputs the model leans on most (:mod:`nbprod.capture.dependence`)."""
    from .dependence import compute

    mean_abs = explained.get("mean_abs")
    if not mean_abs:
        return None
    ranked = sorted(mean_abs, key=lambda n: -mean_abs[n])
    cap = session.require_model()
    features = ev.X_valid if ev.X_valid is not None else ev.X_train
    hidden = set(carried) | set(session.train.pii)
    return compute(cap.model, cap.task, features, ranked, hidden=hidden)
