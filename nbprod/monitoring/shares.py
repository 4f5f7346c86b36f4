"""Category shares: did one category of a column become much more (or less) common?

PSI judges a categorical column as a whole, so a rare category that triples (``cut == "Fair"``
from 3% to 9% of the rows) stays under its minimum effect. This test looks at each category on
its own:

- **groups tested**: every reference category with at least ``rare_category_share`` (0.5%) of
  the reference values; rarer ones, the "other" values and values never seen in training are
  pooled into one group, ``(rare/other)``;
- **effect**: the log ratio of the batch share to the reference share (counts smoothed by 0.5),
  with a **minimum effect** of ``ln(share_ratio_min)`` (x1.5 or /1.5). The absolute change this
  asks for scales with the share: +1.5 points at 3%, +20 points at 40%;
- **noise**: with no change, a category's batch count given its total count in both samples
  follows a binomial law (the exact conditional test, counts only). A category counts as
  changed when its two-sided p-value is below ``(1 - confidence) / k`` (Bonferroni over the k
  groups: the column's false-alarm budget stays at 0.1%) and its effect reaches the minimum.
  The reported ``threshold`` is the log ratio that decision asks for: the larger of the minimum
  effect and the log ratio at the critical count.

Everything comes from the profiles' integer frequencies, so it merges exactly like them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

POOLED = "(rare/other)"


def category_shares(names: list[str], ref_counts: np.ndarray, cur_counts: np.ndarray,
                    spill_ref: float, spill_cur: float, *, confidence: float = 0.999,
                    ratio_min: float = 1.5, rare_share: float = 0.005) -> dict[str, dict[str, Any]]:
    """Per category (and the pooled rest): shares, ratio, log ratio, threshold, p-value, drifted.

    ``ref_counts``/``cur_counts`` are the counts of ``names`` in the reference and the batch;
    ``spill_ref``/``spill_cur`` the counts of everything else (other and unseen values).
    """
    from scipy.stats import binom

    m = float(ref_counts.sum() + spill_ref)
    n = float(cur_counts.sum() + spill_cur)
    if m <= 0 or n <= 0:
        return {}
    common = ref_counts / m >= rare_share
    groups = {name: (float(a), float(b)) for name, a, b, c in zip(names, ref_counts, cur_counts, common, strict=True) if c}
    rest = (float(ref_counts[~common].sum() + spill_ref), float(cur_counts[~common].sum() + spill_cur))
    if rest[0] or rest[1]:
        groups[POOLED] = rest
    k = len(groups)
    alpha = (1 - confidence) / max(k, 1)
    floor = math.log(ratio_min)
    f = n / (n + m)
    a = np.array([g[0] for g in groups.values()])
    b = np.array([g[1] for g in groups.values()])
    total = a + b
    log_ratio = _log_ratio(b, a, n, m)
    # one call per law for every group at once (scipy's per-call overhead dominates otherwise)
    p_value = np.minimum(1.0, 2 * np.minimum(binom.cdf(b, total, f), binom.sf(b - 1, total, f)))
    # the decision as a threshold on |log ratio|: at the critical count in the direction of the
    # change (where the two-sided p-value reaches alpha)
    up = b >= total * f
    critical = np.where(up, binom.isf(alpha / 2, total, f) + 1, binom.ppf(alpha / 2, total, f) - 1)
    possible = (critical >= 0) & (critical <= total)  # else no count is significant this way
    with np.errstate(invalid="ignore"):
        at_critical = np.where(possible, np.abs(_log_ratio(critical, total - critical, n, m)), np.inf)
    threshold = np.maximum(floor, at_critical)
    drifted = (p_value < alpha) & (np.abs(log_ratio) >= floor)
    return {name: {"reference_share": float(a[i] / m), "share": float(b[i] / n),
                   "ratio": float(math.exp(log_ratio[i])), "log_ratio": float(log_ratio[i]),
                   "threshold": float(threshold[i]), "p_value": float(p_value[i]),
                   "drifted": bool(drifted[i])}
            for i, name in enumerate(groups)}


def _log_ratio(b: np.ndarray, a: np.ndarray, n: float, m: float) -> np.ndarray:
    return np.log(((b + 0.5) / (n + 1)) / ((a + 0.5) / (m + 1)))


def share_changes(categories: dict[str, dict[str, Any]], limit: int = 10) -> list[str]:
    """The changed categories in words, largest change (relative to its threshold) first:
    ``"Fair: 2.8% -> 7.5%"``."""
    moved = [(name, c) for name, c in categories.items() if c["drifted"]]
    moved.sort(key=lambda nc: -abs(nc[1]["log_ratio"]) / nc[1]["threshold"])
    return [f"{_short(name)}: {c['reference_share']:.1%} -> {c['share']:.1%}" for name, c in moved[:limit]]


def _short(name: str, limit: int = 40) -> str:
    return name if len(name) <= limit else name[: limit - 3] + "..."
