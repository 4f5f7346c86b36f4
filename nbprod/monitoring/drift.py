"""Drift of a batch against the reference profiles recorded at packaging.

Everything here works on binned, mergeable counts. A batch is binned once against the
reference cut points (:func:`batch_profile`); profiles of chunks add up (:func:`merge`); the
statistics are computed from counts alone (:func:`column_drift`), so the reference data is never
re-read.

Statistics, per column:

- numeric: PSI over about ten groups of equal reference mass, and a scale-free effect size, the
  Wasserstein-1 distance between the binned distributions divided by the reference standard
  deviation (0.15 is about a shift of 0.15 standard deviations);
- categorical: PSI and the Jensen-Shannon distance over the reference categories, and the share
  of values never seen in training;
- every column: the change in null rate.
A Kolmogorov-Smirnov p-value is reported for information only.

Decisions are sample-size aware. A statistic counts as drift only when it exceeds both a
minimum effect size (``psi >= 0.1``, ``wasserstein >= 0.15``, ...) and its own noise level: the
``confidence`` quantile (default 0.999) of the statistic between two samples of the reference
distribution with the reference's size ``m`` and the batch's size ``n``. With
``n_eff = n*m/(n+m)``: PSI (a symmetric Kullback-Leibler divergence) times ``n_eff`` follows a
chi-square law with one degree of freedom less than its number of bins, and the binned
Wasserstein distance times ``sqrt(n_eff)`` follows the integral of a Brownian bridge over the
reference CDF, whose quantile is simulated once per column at packaging. Small windows therefore
need a large change before they alarm, and very large windows do not flag negligible shifts.

The dataset verdict weights each column by the permutation importance recorded at packaging:
the dataset drifted when the importance-weighted share of drifted columns reaches
``dataset_threshold`` (default 0.25).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..core.profile import bin_counts, bridge_quantiles, edges, numeric_values, spread

NEW = "__new__"
OTHER = "__other__"


@dataclass(frozen=True)
class DriftConfig:
    psi_threshold: float = 0.1
    wasserstein_threshold: float = 0.15
    new_category_threshold: float = 0.05
    null_rate_threshold: float = 0.05
    dataset_threshold: float = 0.25
    confidence: float = 0.999
    psi_groups: int = 10
    rare_category_share: float = 0.005  # rarer reference categories are pooled for PSI
    share_ratio_min: float = 1.5  # a category share must change x1.5 (or /1.5) to count
    joint_min_effect: float = 0.15  # joint drift: rise in mean reconstruction error, in sd

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- batch profiles (mergeable) ------------------------------------------------------------
NEW_COUNTS = 10_000  # distinct unseen values a mergeable profile counts, most frequent first


def batch_profile(s: pd.Series, ref: dict[str, Any], *, mergeable: bool = False) -> dict[str, Any]:
    """Counts of a batch column in the reference's bins (or categories).

    ``mergeable=True`` also keeps the counts of values never seen in training
    (``new_counts``, at most :data:`NEW_COUNTS` of them), so that the profiles of a batch's
    chunks merge (:func:`merge`) into the ``new_values`` of the whole batch; :func:`settled`
    drops them."""
    n = len(s)
    if ref["type"] == "numeric":
        values = numeric_values(s)
        out: dict[str, Any] = {"type": "numeric", "count": n, "null_count": n - int(values.size)}
        if "cuts" in ref:
            out["counts"] = bin_counts(values, np.asarray(ref["cuts"], dtype="float64")).tolist()
        if values.size:
            out["min"] = float(values.min())
            out["max"] = float(values.max())
        return out
    nonnull = s.dropna()
    out = {"type": "categorical", "count": n, "null_count": n - int(len(nonnull))}
    if "frequencies" in ref:
        counts: dict[str, int] = {}
        for value, c in nonnull.value_counts().items():  # count first: few distinct values
            key = _key(value)
            counts[key] = counts.get(key, 0) + int(c)
        known = ref["frequencies"]
        freq = {k: 0 for k in known}
        spill = OTHER if ref.get("other_count") else NEW
        freq[spill] = 0
        for k, v in counts.items():
            if k in known:
                freq[k] = v
            else:
                freq[spill] += v
        out["frequencies"] = freq
        if spill == NEW:
            new = {k: v for k, v in counts.items() if k not in known}
            out["new_values"] = _most_frequent(new, 20)
            if mergeable:
                out["new_counts"] = {k: new[k] for k in _most_frequent(new, NEW_COUNTS)}
    return out


def _most_frequent(counts: dict[str, int], limit: int) -> list[str]:
    """The ``limit`` most frequent keys; ties in the order of the keys (deterministic)."""
    return sorted(counts, key=lambda k: (-counts[k], k))[:limit]


def settled(profile: dict[str, Any]) -> dict[str, Any]:
    """A merged profile without what only merging needs (``new_counts``)."""
    return {k: v for k, v in profile.items() if k != "new_counts"}


def _key(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Combine the profiles of two chunks of one batch (same reference)."""
    out = dict(a)
    out["count"] = a["count"] + b["count"]
    out["null_count"] = a["null_count"] + b["null_count"]
    if "counts" in a:
        out["counts"] = (np.asarray(a["counts"]) + np.asarray(b["counts"])).tolist()
    if "frequencies" in a:
        keys = list(a["frequencies"]) + [k for k in b["frequencies"] if k not in a["frequencies"]]
        out["frequencies"] = {k: a["frequencies"].get(k, 0) + b["frequencies"].get(k, 0)
                              for k in keys}
    for key, pick in (("min", min), ("max", max)):
        vals = [p[key] for p in (a, b) if key in p]
        if vals:
            out[key] = pick(vals)
    if "new_counts" in a and "new_counts" in b:
        both = dict(a["new_counts"])
        for k, v in b["new_counts"].items():
            both[k] = both.get(k, 0) + v
        out["new_counts"] = {k: both[k] for k in _most_frequent(both, NEW_COUNTS)}
        out["new_values"] = _most_frequent(both, 20)
    elif "new_values" in a or "new_values" in b:
        out["new_values"] = list(dict.fromkeys(a.get("new_values", []) + b.get("new_values", [])))[:20]
    return out


def frame_batch_profile(df: pd.DataFrame, reference: dict[str, dict[str, Any]], *,
                        mergeable: bool = False) -> dict[str, Any]:
    return {c: batch_profile(df[c], reference[c], mergeable=mergeable)
            for c in reference if c in df.columns}


# -- statistics ------------------------------------------------------------------------------
def _psi(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """PSI between proportion arrays along the last axis."""
    return np.sum((q - p) * np.log(q / p), axis=-1)


def _proportions(counts: np.ndarray) -> np.ndarray:
    smoothed = counts + 0.5
    return smoothed / smoothed.sum(axis=-1, keepdims=True)


def _groups(ref_counts: np.ndarray, k: int) -> np.ndarray:
    """Group label of each fine bin so that groups hold about equal reference mass."""
    cum = np.cumsum(ref_counts) / max(ref_counts.sum(), 1)
    return np.minimum((cum * k - 1e-9).astype(int).clip(min=0), k - 1)


def _grouped(counts: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    out = np.zeros(counts.shape[:-1] + (k,))
    for g in range(k):
        out[..., g] = counts[..., labels == g].sum(axis=-1)
    return out[..., np.unique(labels)]


def _wasserstein(ref_counts: np.ndarray, cur_counts: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """W1 between two binned distributions (trapezoid over the CDFs at the bin edges)."""
    fr = np.cumsum(ref_counts, axis=-1) / ref_counts.sum(axis=-1, keepdims=True)
    fc = np.cumsum(cur_counts, axis=-1) / cur_counts.sum(axis=-1, keepdims=True)
    d = np.abs(fr - fc)[..., :-1]  # CDF difference at each inner cut point
    zero = np.zeros(d.shape[:-1] + (1,))
    at_edges = np.concatenate([zero, d, zero], axis=-1)
    return np.sum((at_edges[..., :-1] + at_edges[..., 1:]) / 2 * np.diff(edges), axis=-1)


def _n_eff(n: float, m: float) -> float:
    return n * m / (n + m) if n and m else 1.0


def _chi2(q: float, dof: int) -> float:
    from scipy.stats import chi2

    return float(chi2.ppf(q, max(dof, 1)))


def bridge_quantile(ref: dict[str, Any], q: float) -> float:
    """The stored quantile from packaging, or a fresh simulation for another confidence."""
    stored = ref.get("bridge_quantiles") or {}
    return stored.get(str(q)) or bridge_quantiles(ref, (q,))[str(q)]


def _ks_pvalue(ref_counts: np.ndarray, cur_counts: np.ndarray) -> float:
    from scipy.special import kolmogorov

    n, m = cur_counts.sum(), ref_counts.sum()
    if n == 0 or m == 0:
        return 1.0
    d = float(np.max(np.abs(np.cumsum(ref_counts) / m - np.cumsum(cur_counts) / n)))
    return float(kolmogorov(d * math.sqrt(n * m / (n + m))))


def _null_drift(ref: dict[str, Any], cur: dict[str, Any], cfg: DriftConfig) -> dict[str, Any]:
    m, n = ref["count"], cur["count"]
    p0 = ref["null_count"] / m if m else 0.0
    p1 = cur["null_count"] / n if n else 0.0
    pooled = (ref["null_count"] + cur["null_count"]) / max(m + n, 1)
    noise = 3 * math.sqrt(max(pooled * (1 - pooled), 1.0 / max(m + n, 1)) * (1 / max(n, 1) + 1 / max(m, 1)))
    threshold = max(cfg.null_rate_threshold, noise)
    return {"null_rate_reference": p0, "null_rate": p1, "null_rate_change": p1 - p0,
            "null_rate_threshold": threshold, "null_drifted": abs(p1 - p0) > threshold}


def column_drift(ref: dict[str, Any], cur: dict[str, Any],
                 cfg: DriftConfig = DriftConfig()) -> dict[str, Any]:
    """Drift statistics, their sample-size aware thresholds and the decision for one column."""
    out: dict[str, Any] = {"type": ref["type"], "rows": cur["count"]}
    out.update(_null_drift(ref, cur, cfg))
    reasons = ["null rate"] if out["null_drifted"] else []
    severity = abs(out["null_rate_change"]) / out["null_rate_threshold"]
    if ref.get("hidden"):
        out.update(drifted=bool(reasons), reasons=reasons, severity=severity, note="PII: nulls only")
        return out
    if ref["type"] == "numeric" and "counts" in ref and "counts" in cur and sum(cur["counts"]):
        rc = np.asarray(ref["counts"], dtype="float64")
        cc = np.asarray(cur["counts"], dtype="float64")
        n_eff = _n_eff(cc.sum(), rc.sum())
        labels = _groups(rc, cfg.psi_groups)
        k = cfg.psi_groups
        psi = float(_psi(_proportions(_grouped(rc, labels, k)), _proportions(_grouped(cc, labels, k))))
        w = float(_wasserstein(rc, cc, edges(ref))) / spread(ref)
        psi_t = max(cfg.psi_threshold, _chi2(cfg.confidence, len(np.unique(labels)) - 1) / n_eff)
        w_t = max(cfg.wasserstein_threshold, bridge_quantile(ref, cfg.confidence) / math.sqrt(n_eff))
        out.update(psi=psi, psi_threshold=psi_t, wasserstein=w, wasserstein_threshold=w_t,
                   ks_pvalue=_ks_pvalue(rc, cc))
        if psi > psi_t:
            reasons.append("distribution (PSI)")
        if w > w_t:
            reasons.append("location/scale (Wasserstein)")
        severity = max(severity, psi / psi_t, w / w_t)
    elif ref["type"] == "categorical" and "frequencies" in ref and "frequencies" in cur:
        keys = list(ref["frequencies"])
        spill = OTHER if ref.get("other_count") else NEW
        rc = np.array([ref["frequencies"][k] for k in keys] + [ref.get("other_count", 0)], dtype="float64")
        cc = np.array([cur["frequencies"].get(k, 0) for k in keys] + [cur["frequencies"].get(spill, 0)],
                      dtype="float64")
        n, m = cc.sum(), rc.sum()
        if n > 0:
            from scipy.spatial.distance import jensenshannon

            # pool rare reference categories (and unseen values) so that PSI's noise law holds
            common = rc / m >= cfg.rare_category_share
            common[-1] = False
            rg = np.append(rc[common], rc[~common].sum())
            cg = np.append(cc[common], cc[~common].sum())
            if rg[-1] == 0 and cg[-1] == 0:
                rg, cg = rg[:-1], cg[:-1]
            psi = float(_psi(_proportions(rg), _proportions(cg)))
            psi_t = max(cfg.psi_threshold, _chi2(cfg.confidence, max(len(rg) - 1, 1)) / _n_eff(n, m))
            out.update(psi=psi, psi_threshold=psi_t,
                       jensen_shannon=float(jensenshannon(rc / m, cc / n, base=2)))
            if psi > psi_t:
                reasons.append("category frequencies (PSI)")
            severity = max(severity, psi / psi_t)
            severity = _category_shares(out, reasons, severity, keys, rc, cc, cfg)
            if spill == NEW:
                new_share = float(cc[-1] / n)
                # values unseen in training appear even without drift, about as often as the
                # categories the reference saw once (Good-Turing)
                singles = sum(1 for v in ref["frequencies"].values() if v == 1) / m
                new_t = max(cfg.new_category_threshold, singles + 3 * math.sqrt(max(singles, 1 / m) / n))
                out.update(new_share=new_share, new_share_threshold=new_t,
                           new_values=cur.get("new_values", []))
                if new_share > new_t:
                    reasons.append("new categories")
                severity = max(severity, new_share / new_t)
    out.update(drifted=bool(reasons), reasons=reasons, severity=float(severity))
    return out


def _category_shares(out: dict[str, Any], reasons: list[str], severity: float, keys: list[str],
                     rc: np.ndarray, cc: np.ndarray, cfg: DriftConfig) -> float:
    """Add the per-category share test (:mod:`nbprod.monitoring.shares`) to a column's result."""
    from .shares import category_shares, share_changes

    cats = category_shares(keys, rc[:-1], cc[:-1], rc[-1], cc[-1], confidence=cfg.confidence,
                           ratio_min=cfg.share_ratio_min, rare_share=cfg.rare_category_share)
    changes = share_changes(cats)
    out.update(categories=cats, share_changes=changes)
    if changes:
        reasons.append(f"category share ({', '.join(changes[:3])}{', ...' if len(changes) > 3 else ''})")
    moved = [abs(c["log_ratio"]) / c["threshold"] for c in cats.values() if math.isfinite(c["threshold"])]
    return max([severity, *moved])


def compare(reference: dict[str, dict[str, Any]], batch: dict[str, dict[str, Any]],
            cfg: DriftConfig = DriftConfig()) -> dict[str, dict[str, Any]]:
    return {c: column_drift(reference[c], batch[c], cfg) for c in batch if c in reference}


def dataset_verdict(columns: dict[str, dict[str, Any]], importance: dict[str, float] | None,
                    cfg: DriftConfig = DriftConfig()) -> dict[str, Any]:
    """Importance-weighted share of drifted columns, and whether it reaches the threshold."""
    names = list(columns)
    if not names:
        return {"drifted": False, "weighted_share": 0.0, "threshold": cfg.dataset_threshold,
                "drifted_columns": [], "rule": "no columns to compare"}
    weights = {c: float((importance or {}).get(c, 0.0)) for c in names}
    total = sum(weights.values())
    if total <= 0:
        weights = {c: 1.0 / len(names) for c in names}
        total = 1.0
    drifted = [c for c in names if columns[c]["drifted"]]
    share = sum(weights[c] for c in drifted) / total
    for c in names:
        columns[c]["importance"] = weights[c] / total
        columns[c]["score"] = columns[c]["importance"] * columns[c]["severity"]
    return {
        "drifted": share >= cfg.dataset_threshold,
        "weighted_share": share,
        "share": len(drifted) / len(names),
        "threshold": cfg.dataset_threshold,
        "drifted_columns": sorted(drifted, key=lambda c: -columns[c]["score"]),
        "rule": (f"the dataset has drifted when the permutation-importance-weighted share of "
                 f"drifted input columns reaches {cfg.dataset_threshold:.0%}"),
    }
