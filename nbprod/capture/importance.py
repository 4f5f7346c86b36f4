"""Permutation importance of the raw input columns, through the feature function and model.

Computed at packaging time on the validation snapshot (or train when there is none) and recorded
in the manifest; monitoring weights drift by it, because drift in a column the model ignores
matters less.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..core.metrics import Metric, default_metric

MAX_ROWS = 5000
REPEATS = 5


def permutation_importance(session: Any, metric: Metric | None = None, *,
                           n_repeats: int = REPEATS, max_rows: int = MAX_ROWS,
                           seed: int = 0) -> dict[str, Any]:
    """Mean drop of ``metric`` when each raw input column is shuffled
    (:func:`sklearn.inspection.permutation_importance` on the raw inputs, scored through the
    feature function and the model)."""
    snap = session.valid or session.train
    cap = session.require_model()
    scorer = session.live_scorer()
    metric = metric or default_metric(cap.task, len(getattr(cap.model, "classes_", [])) or None)
    raw = scorer.prepare(snap.data)
    y = snap.y
    if len(raw) > max_rows:
        pick = np.sort(np.random.default_rng(seed).choice(len(raw), max_rows, replace=False))
        raw, y = raw.iloc[pick], y.iloc[pick]
    raw = raw.reset_index(drop=True)
    y = y.reset_index(drop=True)

    def score(_model: Any, frame: pd.DataFrame, labels: pd.Series) -> float:
        return metric.score(cap.model, scorer.features(frame), labels)

    from sklearn.inspection import permutation_importance as permute

    # the raw columns are shuffled, and the feature function runs inside the score
    result = permute(cap.model, raw, y, scoring=score, n_repeats=n_repeats, random_state=seed)
    base = score(cap.model, raw, y)
    columns: dict[str, dict[str, float]] = {
        col: {"mean": float(mean), "std": float(std)}
        for col, mean, std in zip(raw.columns, result.importances_mean, result.importances_std,
                                  strict=True)
    }
    total = sum(max(v["mean"], 0.0) for v in columns.values())
    for v in columns.values():
        v["weight"] = (max(v["mean"], 0.0) / total) if total > 0 else 1.0 / len(columns)
    return {
        "metric": metric.name,
        "baseline_score": metric.natural(base),
        "rows": len(raw),
        "snapshot": snap.role,
        "repeats": n_repeats,
        "columns": columns,
    }
