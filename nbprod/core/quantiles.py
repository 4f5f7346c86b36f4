"""Exact quantiles of a column too large to hold: from sorted runs spilled to disk.

A batch scored in chunks writes each chunk's predictions, sorted, to a ``.npy`` file
(:func:`spill`). :func:`describe` then gives what ``Series.describe()`` gives for the whole
column (count, mean, std, min, quartiles, max) without loading it: the mean and standard
deviation merge over the chunks (Chan's formulas), and each order statistic is found by a binary
search over the float64 values, counting the values at or below a candidate in every run
(memory-mapped, a few pages each). Quantiles interpolate linearly, as numpy and pandas do, so
they equal the in-memory figures; the mean and standard deviation agree to rounding (about
1e-15 relative).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

QUANTILES = (0.25, 0.5, 0.75)


def moments(values: np.ndarray) -> tuple[int, float, float]:
    """(count, mean, sum of squared deviations) of ``values``."""
    n = int(values.size)
    if not n:
        return 0, 0.0, 0.0
    mean = float(values.mean())
    return n, mean, float(((values - mean) ** 2).sum())


def merge_moments(a: tuple[int, float, float], b: tuple[int, float, float]) -> tuple[int, float, float]:
    na, ma, sa = a
    nb, mb, sb = b
    n = na + nb
    if not na or not nb:
        return a if nb == 0 else b
    delta = mb - ma
    return n, ma + delta * nb / n, sa + sb + delta * delta * na * nb / n


def spill(path: Path, values: np.ndarray) -> None:
    """Write ``values`` as a sorted float64 run."""
    np.save(path, np.sort(np.asarray(values, dtype="float64")), allow_pickle=False)


def _key(x: float) -> int:
    """An int64 that orders like the float (for the binary search)."""
    i = int(np.array(x, dtype="float64").view("int64"))
    return i if i >= 0 else -(i & 0x7FFFFFFFFFFFFFFF) - 1


def _value(k: int) -> float:
    i = k if k >= 0 else -(k + 1) | (-0x8000000000000000)
    return float(np.array(i, dtype="int64").view("float64"))


def order_statistic(runs: list[np.ndarray], rank: int) -> float:
    """The value of 0-based ``rank`` among all values of the sorted ``runs``."""
    lo = min(float(r[0]) for r in runs if len(r))
    hi = max(float(r[-1]) for r in runs if len(r))
    klo, khi = _key(lo), _key(hi)
    while klo < khi:  # the smallest value v with count(<= v) > rank
        mid = klo + (khi - klo) // 2
        v = _value(mid)
        count = sum(int(np.searchsorted(r, v, side="right")) for r in runs)
        if count > rank:
            khi = mid
        else:
            klo = mid + 1
    return _value(klo)


def describe(paths: list[Path], stats: tuple[int, float, float]) -> dict[str, Any]:
    """``Series.describe()``'s mean, std, min, 25%, 50%, 75%, max of the spilled runs
    (``stats`` are their merged :func:`moments`)."""
    n, mean, ss = stats
    runs = [np.load(p, mmap_mode="r", allow_pickle=False) for p in paths]
    runs = [r for r in runs if len(r)]
    if not n or not runs:
        return {k: math.nan for k in ("mean", "std", "min", "25%", "50%", "75%", "max")}
    out: dict[str, Any] = {"mean": mean, "std": math.sqrt(ss / (n - 1)) if n > 1 else math.nan,
                           "min": min(float(r[0]) for r in runs),
                           "max": max(float(r[-1]) for r in runs)}
    for q in QUANTILES:
        out[f"{round(q * 100)}%"] = quantile(runs, n, q)
    return out


def quantile(runs: list[np.ndarray], n: int, q: float) -> float:
    """The ``q`` quantile of the ``n`` values of the sorted ``runs``, interpolated linearly
    between order statistics as ``numpy.quantile`` does."""
    pos = (n - 1) * q
    below = math.floor(pos)
    a = order_statistic(runs, below)
    b = order_statistic(runs, below + 1) if below + 1 < n else a
    return float(np.quantile(np.array([a, b]), pos - below))
