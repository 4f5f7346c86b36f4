"""Joint (multivariate) drift: do the rows still look like combinations seen in training?

Every column of a batch can keep its distribution while the columns stop moving together (for
example ``x``, ``y`` and ``z`` reassigned to other stones): no column-by-column test can see that.
This statistic looks at the rows as a whole, over the model's numeric raw inputs.

Method: PCA reconstruction error. At packaging the numeric inputs of the training snapshot are
standardised and a principal component analysis keeps the components that explain 90% of the
variance. A row's reconstruction error is its distance to that subspace: small for the kind of
row training held, large for a combination it never saw. The reference keeps the binned
profile of the training rows' errors, **cross-fitted** (each row scored by a PCA fitted on the
other folds; in-sample errors are optimistic and gave up to 32% false alarms on small
references).

At scoring, each batch (or chunk) gives integer counts of its rows' errors in the reference
bins (:func:`partial`); counts of chunks add up exactly (:func:`merge`). :func:`finalize` turns
them into the statistic: the batch's mean error minus the reference's, in reference standard
deviations (positive when the rows lie farther from the training data), from counts alone. Its
threshold is the larger of a minimum effect (0.15 sd, the same number as the column Wasserstein
minimum) and the ``confidence`` quantile (0.999) of the statistic between two samples of the
reference law of the batch's and the reference's sizes, by a Cornish–Fisher expansion with the
exact cumulants of the binned law (the errors are skewed: the normal law gave 1–2% false alarms
at 100 rows). Nothing is simulated at scoring.

Limits: categorical inputs are left out (one-hot columns dilute the numeric signal about
14-fold); the test is one-sided (rows collapsing onto the subspace, e.g. constant rows, give a
negative effect and no alarm; the column tests catch that); a change among a small share of rows
below the minimum effect is not reported, by design.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..core.profile import MAX_FEATURE_COLUMNS, bin_counts, cut_points, edges
from ..core.results import number
from ..core.text import one_line

METHOD = "pca_reconstruction"
EXPLAINED_VARIANCE = 0.9
FOLDS = 5
MIN_EFFECT = 0.15  # reference standard deviations of the per-row error
MIN_BATCH_ROWS = 30  # fewer complete rows: not judged
MIN_TRAIN_ROWS = 200  # and at least 10 per column
MAX_FIT_ROWS = 100_000  # larger training snapshots are sampled for the fit and the profile


# -- packaging -----------------------------------------------------------------------------------
def numeric_columns(frame: pd.DataFrame, exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The integer and float columns of ``frame`` (not bool, not datetime), less ``exclude``."""
    from ..core.schema import column_kind

    return [str(c) for c in frame.columns
            if str(c) not in exclude and column_kind(frame[c]) in ("integer", "float")][:MAX_FEATURE_COLUMNS]


def build(frame: pd.DataFrame, columns: list[str], *, variance: float = EXPLAINED_VARIANCE,
          folds: int = FOLDS, seed: int = 0) -> dict[str, Any]:
    """The reference of the joint statistic from the training rows (JSON-able, small).

    Constant columns are left out. When fewer than 2 columns remain, or fewer complete rows than
    max(200, 10 per column), the reference says why under ``skipped`` and the statistic is not
    computed at scoring.
    """
    out: dict[str, Any] = {"method": METHOD, "explained_variance": variance}
    X = _matrix(frame, columns)
    complete = np.isfinite(X).all(axis=1)
    sd = X[complete].std(axis=0) if complete.any() else np.zeros(len(columns))
    keep = sd > 0
    columns = [c for c, k in zip(columns, keep, strict=True) if k]
    complete = np.isfinite(X[:, keep]).all(axis=1)  # a gap in a constant column costs no row
    Xc = X[complete][:, keep]
    need = max(MIN_TRAIN_ROWS, 10 * len(columns))
    if len(columns) < 2:
        out["skipped"] = (f"needs at least 2 non-constant numeric input columns; the training "
                          f"snapshot has {len(columns)}")
        return out
    if len(Xc) < need:
        out["skipped"] = (f"needs at least {need} complete training rows for {len(columns)} numeric "
                          f"columns; the training snapshot has {len(Xc)}")
        return out
    if len(Xc) > MAX_FIT_ROWS:  # a seeded sample keeps packaging fast on large snapshots
        Xc = Xc[np.sort(np.random.default_rng(seed).choice(len(Xc), MAX_FIT_ROWS, replace=False))]
    mean = Xc.mean(axis=0)
    scale = Xc.std(axis=0)
    Z = (Xc - mean) / scale
    components, k = _pca(Z, variance)
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, len(Z))
    errors = np.empty(len(Z))
    residual_sq = np.zeros(len(columns))
    for f in range(folds):
        held = fold == f
        fit = Z[~held]
        centre = fit.mean(axis=0)
        v, _ = _pca(fit - centre, variance, k=k)  # the deployed model's k in every fold
        resid = _residuals(Z[held] - centre, v)
        errors[held] = np.sqrt(np.einsum("ij,ij->i", resid, resid))
        residual_sq += np.einsum("ij,ij->j", resid, resid)
    cuts = cut_points(errors)
    out.update(
        columns=columns, mean=mean.tolist(), scale=scale.tolist(), components=components.tolist(),
        k=int(k), folds=folds, seed=seed, rows=int(len(Z)), rows_incomplete=int((~complete).sum()),
        residual_mean_sq=(residual_sq / len(Z)).tolist(),
        profile={"count": int(errors.size), "cuts": cuts.tolist(),
                 "counts": bin_counts(errors, cuts).tolist(), "min": float(errors.min()),
                 "max": float(errors.max()), "mean": float(errors.mean()), "std": float(errors.std())},
    )
    return out


def _matrix(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    if not columns:
        return np.empty((len(frame), 0))
    return np.column_stack([frame[c].to_numpy(dtype="float64", na_value=np.nan) for c in columns])


def _pca(Z: np.ndarray, variance: float, k: int | None = None) -> tuple[np.ndarray, int]:
    """Top principal directions of centred ``Z`` (rows of the result), enough for ``variance``."""
    _, s, vt = np.linalg.svd(Z, full_matrices=False)
    if k is None:
        share = np.cumsum(s ** 2) / np.sum(s ** 2)
        k = int(np.searchsorted(share, variance) + 1)
        k = max(1, min(k, Z.shape[1] - 1))  # keep a residual space
    return vt[:k], k


def _residuals(Z: np.ndarray, components: np.ndarray) -> np.ndarray:
    return Z - (Z @ components.T) @ components


# -- scoring: partial, merge ----------------------------------------------------------------------
def partial(frame: pd.DataFrame, ref: dict[str, Any]) -> dict[str, Any]:
    """A batch's (or chunk's) part of the statistic: counts of its rows' reconstruction errors
    in the reference bins, the rows used and the rows left out (a non-finite or missing value
    among the columns). Residual sums per column explain which columns carry the change."""
    cols = ref["columns"]
    missing = [c for c in cols if c not in frame.columns]
    if missing:  # scoring conforms the input first; a caller that did not gets every row left out
        return {"rows": 0, "rows_incomplete": int(len(frame)),
                "counts": [0] * len(ref["profile"]["counts"]), "residual_sq": [0.0] * len(cols)}
    X = _matrix(frame, cols)
    complete = np.isfinite(X).all(axis=1)
    Z = (X[complete] - np.asarray(ref["mean"])) / np.asarray(ref["scale"])
    resid = _residuals(Z, np.asarray(ref["components"], dtype="float64"))
    errors = np.sqrt(np.einsum("ij,ij->i", resid, resid))
    return {"rows": int(complete.sum()), "rows_incomplete": int((~complete).sum()),
            "counts": bin_counts(errors, np.asarray(ref["profile"]["cuts"])).tolist(),
            "residual_sq": np.einsum("ij,ij->j", resid, resid).tolist()}


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The partial of two chunks of one batch: counts add (exactly)."""
    return {"rows": a["rows"] + b["rows"], "rows_incomplete": a["rows_incomplete"] + b["rows_incomplete"],
            "counts": [x + y for x, y in zip(a["counts"], b["counts"], strict=True)],
            "residual_sq": [x + y for x, y in zip(a["residual_sq"], b["residual_sq"], strict=True)]}


# -- the decision -------------------------------------------------------------------------------
@dataclass
class JointDrift:
    """The joint-drift decision of one batch, with its reason in words."""

    drifted: bool
    statistic: float | None
    threshold: float | None
    reason: str
    method: str = METHOD
    columns: list[str] = field(default_factory=list)
    components: int | None = None
    explained_variance: float | None = None
    rows: int = 0
    rows_incomplete: int = 0
    min_effect: float = MIN_EFFECT
    confidence: float = 0.999
    contributions: dict[str, float] = field(default_factory=dict)
    counts: list[int] | None = None  # the batch's error counts, for the drift explorer

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def finalize(ref: dict[str, Any], part: dict[str, Any], *, confidence: float = 0.999,
             min_effect: float = MIN_EFFECT) -> JointDrift:
    """Decide from the merged partial: statistic, threshold, drifted, and why."""
    base = {"columns": list(ref.get("columns", [])), "components": ref.get("k"),
            "explained_variance": ref.get("explained_variance"), "min_effect": min_effect,
            "confidence": confidence, "method": ref.get("method", METHOD)}
    if ref.get("skipped"):
        return JointDrift(False, None, None, f"not computed: {ref['skipped']}", **base)
    n, bad = int(part["rows"]), int(part["rows_incomplete"])
    base.update(rows=n, rows_incomplete=bad)
    if n < MIN_BATCH_ROWS:
        return JointDrift(False, None, None,
                          f"not computed: {n} complete rows over the {len(base['columns'])} numeric "
                          f"columns, fewer than {MIN_BATCH_ROWS}", **base)
    prof = ref["profile"]
    values = bin_values(prof)
    rc = np.asarray(prof["counts"], dtype="float64")
    cc = np.asarray(part["counts"], dtype="float64")
    sd = float(prof["std"]) or 1.0
    statistic = float((cc @ values) / cc.sum() - (rc @ values) / rc.sum()) / sd
    threshold = max(min_effect, noise_threshold(prof, n, confidence))
    drifted = statistic > threshold
    contributions = _contributions(ref, part)
    lead = ", ".join(one_line(c) for c, _ in sorted(contributions.items(), key=lambda kv: -kv[1])[:3]
                     if contributions[c] > 0)
    if drifted:
        reason = (f"the rows lie farther from the training data's principal components: mean "
                  f"reconstruction error up {number(statistic)} sd (alarm at {number(threshold)})"
                  + (f"; most from {lead}" if lead else ""))
    else:
        reason = (f"the rows keep the training data's joint structure: reconstruction error "
                  f"{'+' if statistic > 0 else ''}{number(statistic)} sd (alarm at {number(threshold)})")
    if bad and bad / (n + bad) > 0.05:
        reason += f"; {bad:,} rows with a missing or non-finite value were left out"
    return JointDrift(bool(drifted), statistic, float(threshold), reason, contributions=contributions,
                      counts=[int(c) for c in part["counts"]], **base)


def _contributions(ref: dict[str, Any], part: dict[str, Any]) -> dict[str, float]:
    """Each column's share of the rise in mean squared residual over the reference's."""
    cols = ref["columns"]
    if not part["rows"] or not ref.get("residual_mean_sq"):
        return {}
    batch = np.asarray(part["residual_sq"]) / part["rows"]
    reference = np.asarray(ref["residual_mean_sq"])
    rise = np.clip(batch - reference, 0, None)
    total = rise.sum()
    if total <= 0:
        return {c: 0.0 for c in cols}
    return {c: round(float(r / total), 4) for c, r in zip(cols, rise, strict=True)}


def bin_values(prof: dict[str, Any]) -> np.ndarray:
    """V per bin such that the binned mean shift (the area between the reference and batch CDFs
    over the reference edges) is mean_batch(V) - mean_reference(V)."""
    e = edges(prof)
    weights = (e[2:] - e[:-2]) / 2  # each inner cut point's share of the trapezoid
    tail = np.concatenate([np.cumsum(weights[::-1])[::-1], [0.0]])  # sum over inner cuts i > j
    return -tail


def noise_threshold(prof: dict[str, Any], n: int, confidence: float = 0.999) -> float:
    """The ``confidence`` quantile of the statistic under no drift, a batch of ``n`` rows against
    the reference's: Cornish–Fisher with the exact cumulants of the difference of two means of
    the binned reference law. In reference standard deviations."""
    from scipy.stats import norm

    counts = np.asarray(prof["counts"], dtype="float64")
    m = counts.sum()
    p = counts / m
    v = bin_values(prof)
    c = v - p @ v
    k2, k3 = float(p @ c ** 2), float(p @ c ** 3)
    k4 = float(p @ c ** 4) - 3 * k2 ** 2
    K2 = k2 * (1 / n + 1 / m)
    if K2 <= 0:
        return 0.0
    K3 = k3 * (1 / n ** 2 - 1 / m ** 2)
    K4 = k4 * (1 / n ** 3 + 1 / m ** 3)
    g1, g2 = K3 / K2 ** 1.5, K4 / K2 ** 2
    z = float(norm.ppf(confidence))
    w = z + (z ** 2 - 1) * g1 / 6 + (z ** 3 - 3 * z) * g2 / 24 - (2 * z ** 3 - 5 * z) * g1 ** 2 / 36
    return w * math.sqrt(K2) / (float(prof["std"]) or 1.0)
