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
    """Mean drop of ``metric`` when each raw input column is shuffled (sklearn scorer)."""
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

    def score(frame: pd.DataFrame) -> float:
        return metric.score(cap.model, scorer.features(frame), y)

    base = score(raw)
    rng = np.random.default_rng(seed)
    columns: dict[str, dict[str, float]] = {}
    for col in raw.columns:
        drops = []
        for _ in range(n_repeats):
            shuffled = raw.copy()
            shuffled[col] = raw[col].to_numpy()[rng.permutation(len(raw))]
            drops.append(base - score(shuffled))
        columns[col] = {"mean": float(np.mean(drops)), "std": float(np.std(drops))}
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
