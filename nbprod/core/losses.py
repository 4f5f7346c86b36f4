"""Per-row losses and their mergeable statistics: what a scoring run with labels records so that
a champion and a challenger can be judged over many runs (:mod:`nbprod.lifecycle.evidence`).

Per-row losses (lower is better): the Brier score for classifiers (sum over classes of the squared
difference between the predicted probability and the one-hot label) and the squared error for
regressors. :class:`LossStats` keeps n, mean and M2 of a sample and merges exactly enough for any
n (Chan's pairwise formula), so chunks and runs add up.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..exceptions import NbprodUsageError

LOSS_NAMES = {"classifier": "brier", "regressor": "squared_error"}


@dataclass(frozen=True)
class LossStats:
    """Mergeable statistics of a sample of per-row values: count, mean and M2 (the sum of squared
    deviations from the mean). Two samples merge with Chan et al.'s pairwise formula, which stays
    accurate for any n (a running sum of squares cancels badly when the mean is large against the
    spread)."""

    n: int = 0
    mean: float = math.nan
    m2: float = 0.0

    @classmethod
    def of(cls, values: Any) -> LossStats:
        v = np.asarray(values, dtype=float).ravel()
        if not np.isfinite(v).all():
            raise NbprodUsageError(f"expected finite per-row losses, received {int((~np.isfinite(v)).sum())} "
                                   "non-finite value(s): drop rows without a label or prediction first")
        if not v.size:
            return cls()
        mean = float(v.mean())
        return cls(int(v.size), mean, float(((v - mean) ** 2).sum()))

    def __add__(self, other: LossStats) -> LossStats:
        if not other.n:
            return self
        if not self.n:
            return other
        n = self.n + other.n
        delta = other.mean - self.mean
        return LossStats(n, self.mean + delta * other.n / n,
                         self.m2 + other.m2 + delta * delta * self.n * other.n / n)

    @property
    def variance(self) -> float:
        """Sample variance (n - 1 in the denominator); NaN below two values."""
        if self.n < 2:
            return math.nan
        return max(self.m2, 0.0) / (self.n - 1)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LossStats:
        n = int(d["n"])
        return cls(n, float(d["mean"]) if n else math.nan, float(d["m2"]) if n else 0.0)


def merge(stats: Any) -> LossStats:
    """The statistics of all runs together."""
    total = LossStats()
    for s in stats:
        total = total + s
    return total


def row_losses(y_true: Any, prediction: Any, *, task: str, classes: Any = None) -> np.ndarray:
    """Per-row loss: Brier score for a classifier (``prediction`` is the (rows, classes)
    probability matrix, columns in ``classes`` order), squared error for a regressor."""
    y = np.asarray(y_true)
    if task == "regressor":
        return (np.asarray(prediction, dtype=float).ravel() - y.astype(float)) ** 2
    if task != "classifier":
        raise NbprodUsageError(f"expected task 'classifier' or 'regressor', received {str(task)[:40]!r}")
    p = np.asarray(prediction, dtype=float)
    cls = list(classes)
    if p.ndim != 2 or p.shape[1] != len(cls):
        raise NbprodUsageError(f"expected a probability matrix with {len(cls)} columns (one per class), "
                               f"received shape {p.shape}")
    onehot = (y.reshape(-1, 1) == np.asarray(cls, dtype=object).reshape(1, -1)).astype(float)
    return ((p - onehot) ** 2).sum(axis=1)


def paired_stats(champion_loss: Any, challenger_loss: Any) -> LossStats:
    """Shadow: statistics of challenger loss minus champion loss, row by row."""
    a = np.asarray(champion_loss, dtype=float).ravel()
    b = np.asarray(challenger_loss, dtype=float).ravel()
    if a.shape != b.shape:
        raise NbprodUsageError(f"expected the same rows for both models, received {a.size} champion "
                               f"and {b.size} challenger losses")
    return LossStats.of(b - a)
