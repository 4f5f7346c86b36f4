"""What checks evaluate on: features of the snapshots, computed once per capture state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..exceptions import NbprodUsageError

BOUNDED_01 = ("roc_auc", "accuracy", "balanced_accuracy", "f1", "precision", "recall",
              "average_precision", "jaccard", "top_k_accuracy")
BOUNDED_11 = ("matthews_corrcoef",)  # a correlation: -1 (always wrong) to 1


@dataclass
class Evaluation:
    """Feature matrices and labels of the snapshots, through the live feature function."""

    session: Any
    X_train: Any
    y_train: pd.Series
    X_valid: Any | None
    y_valid: pd.Series | None

    @property
    def model(self) -> Any:
        return self.session.require_model().model

    @property
    def task(self) -> str:
        return self.session.require_model().task

    def require_valid(self, check: str) -> None:
        if self.X_valid is None:
            raise NbprodUsageError(
                f"%nbprod check {check} needs a validation snapshot: run "
                "`%nbprod snapshot DF --role valid --target COL` first."
            )


def evaluation(session: Any) -> Evaluation:
    """The session's :class:`Evaluation`, recomputed only when a capture changed (kept in the
    session's ``evaluation_cache``, keyed by the captures it was computed from)."""
    feats = session.require_features()
    cap = session.require_model()
    train = session.train
    valid = session.valid
    key = (id(feats), id(cap), train.fingerprint, valid.fingerprint if valid else None)
    cached = session.evaluation_cache
    if cached is not None and cached[0] == key:
        return cached[1]
    scorer = session.live_scorer()
    X_train = scorer.features(scorer.prepare(train.data))
    X_valid = y_valid = None
    if valid is not None:
        X_valid = scorer.features(scorer.prepare(valid.data))
        y_valid = valid.y
    ev = Evaluation(session, X_train, train.y, X_valid, y_valid)
    session.evaluation_cache = (key, ev)
    return ev


def number(value: Any, option: str, check: str, *, lo: float | None = None,
           hi: float | None = None, integer: bool = False) -> float:
    """Validate a threshold; errors read: what was expected, what was received."""
    kind = "an integer" if integer else "a number"
    if lo is not None and hi is not None:
        expected = f"{kind} in [{lo:g}, {hi:g}]"
    elif lo is not None:
        expected = f"{kind} >= {lo:g}"
    else:
        expected = kind
    try:
        v = float(value)
        if integer and not float(v).is_integer():
            raise ValueError
    except (TypeError, ValueError):
        raise NbprodUsageError(
            f"The '{option}' option of %nbprod check {check} must be {expected}. Got {value!r}."
        ) from None
    if v != v or (lo is not None and v < lo) or (hi is not None and v > hi):
        raise NbprodUsageError(
            f"The '{option}' option of %nbprod check {check} must be {expected}. Got {value!r}."
        )
    return int(v) if integer else v


def metric_range(scorer_name: str) -> tuple[float | None, float | None]:
    """The natural-unit range of a metric, for validating thresholds."""
    base = scorer_name.split("_ov")[0]
    if any(base.startswith(b) for b in BOUNDED_01):
        return 0.0, 1.0
    if base in BOUNDED_11:
        return -1.0, 1.0
    if scorer_name.startswith("neg_"):
        return 0.0, None
    if scorer_name == "r2" or scorer_name == "explained_variance":
        return None, 1.0
    return None, None
