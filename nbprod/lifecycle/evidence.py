"""Evidence over runs: is the challenger better, worse or equivalent to the champion?

Each scoring run with labels reduces its rows to mergeable loss statistics (:class:`LossStats`:
n, mean and M2, merged with Chan's formula), so runs add up however they were chunked. Per-row losses:
the Brier score for classifiers (sum over classes of the squared difference between the
predicted probability and the one-hot label) and the squared error for regressors. Lower is
better.

- shadow (both models score the same rows): the statistics of the paired difference, challenger
  loss minus champion loss, row by row; :func:`decide_paired` runs a paired t-test on them.
- A/B (each row is served by one arm): one :class:`LossStats` per arm; :func:`decide_welch` runs
  Welch's two-sample t-test (unequal variances).

The decision uses the two-sided confidence interval of the mean loss difference (challenger
minus champion) at ``confidence``, and a minimum effect ``min_effect`` (in loss units):

- ``equivalent`` when the interval lies inside (-min_effect, +min_effect);
- otherwise ``better`` when it lies below 0, ``worse`` when it lies above 0;
- otherwise ``not yet distinguishable`` (also with fewer than 2 rows in a sample).

:func:`promotion_allowed` allows a promotion only on ``better``: an equivalent challenger gives
no reason to change, and an undecided one no evidence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from ..core.losses import LossStats, merge, paired_stats, row_losses  # noqa: F401 (re-exported)
from ..exceptions import NbprodUsageError

BETTER, WORSE, EQUIVALENT, UNDECIDED = "better", "worse", "equivalent", "not yet distinguishable"
DEFAULT_MIN_EFFECT = 0.005
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True)
class Evidence:
    verdict: str
    test: str
    n: int | tuple[int, int]
    difference: float       # mean loss, challenger minus champion (negative: challenger better)
    low: float
    high: float
    p_value: float
    min_effect: float
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["n"] = list(self.n) if isinstance(self.n, tuple) else self.n
        return d

    def describe(self) -> str:
        from ..core.results import number

        n = " + ".join(number(k) for k in self.n) if isinstance(self.n, tuple) else number(self.n)
        return (f"{self.verdict}: challenger minus champion mean loss {number(self.difference)} "
                f"({number(self.confidence * 100)}% CI {number(self.low)} .. {number(self.high)}, "
                f"p{'<0.0001' if self.p_value < 1e-4 else '=' + number(self.p_value)}, n={n}, {self.test}, minimum effect "
                f"{number(self.min_effect)})")


def _check(min_effect: float, confidence: float) -> None:
    if not (isinstance(min_effect, int | float) and math.isfinite(min_effect) and min_effect >= 0):
        raise NbprodUsageError(f"expected min_effect >= 0, received {str(min_effect)[:40]!r}")
    if not (isinstance(confidence, int | float) and 0 < confidence < 1):
        raise NbprodUsageError(f"expected confidence in (0, 1), e.g. 0.95, received {str(confidence)[:40]!r}")


def _verdict(low: float, high: float, min_effect: float) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return UNDECIDED
    if -min_effect < low and high < min_effect:
        return EQUIVALENT
    if high < 0:
        return BETTER
    if low > 0:
        return WORSE
    return UNDECIDED


def _interval(diff: float, se: float, df: float, confidence: float) -> tuple[float, float, float]:
    from scipy import stats

    if not (df > 0 and math.isfinite(se)):
        return math.nan, math.nan, math.nan
    if se == 0:
        return diff, diff, (1.0 if diff == 0 else 0.0)
    half = float(stats.t.ppf((1 + confidence) / 2, df)) * se
    p = float(2 * stats.t.sf(abs(diff / se), df))
    return diff - half, diff + half, p


def decide_paired(diff: LossStats, *, min_effect: float = DEFAULT_MIN_EFFECT,
                  confidence: float = DEFAULT_CONFIDENCE) -> Evidence:
    """Shadow evidence: paired t-test on the per-row loss differences (challenger - champion)."""
    _check(min_effect, confidence)
    se = math.sqrt(diff.variance / diff.n) if diff.n >= 2 else math.nan
    low, high, p = _interval(diff.mean, se, diff.n - 1, confidence)
    return Evidence(_verdict(low, high, min_effect), "paired t-test", diff.n, diff.mean, low, high, p,
                    float(min_effect), float(confidence))


def decide_welch(champion: LossStats, challenger: LossStats, *, min_effect: float = DEFAULT_MIN_EFFECT,
                 confidence: float = DEFAULT_CONFIDENCE) -> Evidence:
    """A/B evidence: Welch's two-sample t-test on the arms' per-row losses."""
    _check(min_effect, confidence)
    n = (champion.n, challenger.n)
    diff = challenger.mean - champion.mean if min(n) else math.nan
    if min(n) < 2:
        low = high = p = math.nan
    else:
        va, vb = champion.variance / champion.n, challenger.variance / challenger.n
        se = math.sqrt(va + vb)
        denom = va * va / (champion.n - 1) + vb * vb / (challenger.n - 1)
        df = (va + vb) ** 2 / denom if denom > 0 else math.inf
        low, high, p = _interval(diff, se, df, confidence)
    return Evidence(_verdict(low, high, min_effect), "Welch t-test", n, diff, low, high, p,
                    float(min_effect), float(confidence))


def promotion_allowed(evidence: Evidence | None) -> bool:
    """Promotion goes ahead without --force only when the challenger is shown better."""
    return evidence is not None and evidence.verdict == BETTER


# -- over recorded runs ---------------------------------------------------------------------
def accumulate(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The loss statistics of recorded shadow and A/B runs, added up per mode: ``{"shadow":
    {"runs", "paired"}, "ab": {"runs", "champion", "challenger"}}`` (a mode without runs is
    absent). Each run is ``{"mode", "metrics"}`` with metrics ``<mode>.evidence.<part>.n|mean|m2``
    (:func:`nbprod.tracking.runs.challenger_metrics`)."""
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        mode, metrics = run.get("mode"), run.get("metrics") or {}
        parts = ("paired",) if mode == "shadow" else ("champion", "challenger") if mode == "ab" else ()
        if not parts:
            continue
        entry = out.setdefault(mode, {"runs": 0, **{p: LossStats() for p in parts}})
        entry["runs"] += 1
        for p in parts:
            n = metrics.get(f"{mode}.evidence.{p}.n")
            if n:
                entry[p] = entry[p] + LossStats.from_dict({
                    "n": n, "mean": metrics.get(f"{mode}.evidence.{p}.mean", math.nan),
                    "m2": metrics.get(f"{mode}.evidence.{p}.m2", 0.0)})
    return out


def judge(runs: list[dict[str, Any]], *, min_effect: float = DEFAULT_MIN_EFFECT,
          confidence: float = DEFAULT_CONFIDENCE) -> dict[str, Evidence]:
    """The evidence of each mode with recorded runs: a paired test (shadow), Welch's (A/B)."""
    out: dict[str, Evidence] = {}
    for mode, entry in accumulate(runs).items():
        if mode == "shadow":
            out[mode] = decide_paired(entry["paired"], min_effect=min_effect, confidence=confidence)
        else:
            out[mode] = decide_welch(entry["champion"], entry["challenger"],
                                     min_effect=min_effect, confidence=confidence)
    return out


def overall(judged: dict[str, Evidence]) -> str | None:
    """One verdict from the modes' evidence: ``worse`` if any says worse, ``better`` only when
    all say better, otherwise the shadow verdict (the paired test is the sharper one), else
    A/B's; None without evidence."""
    if not judged:
        return None
    verdicts = [e.verdict for e in judged.values()]
    if WORSE in verdicts:
        return WORSE
    if all(v == BETTER for v in verdicts):
        return BETTER
    return (judged.get("shadow") or judged["ab"]).verdict


def promotion_problem(judged: dict[str, Evidence], champion_version: str) -> str | None:
    """Why the recorded evidence contradicts promoting the challenger, or None when it supports
    it (or there is none)."""
    verdict = overall(judged)
    if verdict is None or verdict == BETTER:
        return None
    said = "; ".join(f"{mode}: {e.describe()}" for mode, e in judged.items())
    why = {WORSE: "the challenger is worse than", EQUIVALENT: "the challenger is equivalent to",
           UNDECIDED: "the challenger is not yet distinguishable from"}[verdict]
    return f"over its shadow/A/B runs {why} champion version {champion_version} ({said})"
