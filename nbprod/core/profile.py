"""Mergeable statistical profiles of columns: the drift reference.

A numeric column is summarised by fixed cut points (reference quantiles, or the midpoints
between values for columns with few distinct values) and the count of values falling in each
bin, plus nulls, min, max, mean, standard deviation and 101 quantiles. A categorical column is
summarised by the frequency of its most common values and an "other" count. Because the bins
are fixed, the counts of two chunks of data add up: profiles of new data are computed against
the reference cut points and merged by summing counts, so monitoring never re-reads the
reference data.

A numeric profile also stores the noise law of the binned Wasserstein distance that drift
decisions use (:func:`bridge_quantiles`, simulated once here at packaging), and
:func:`feature_frame` puts the model-input features in a form these profiles take.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .schema import column_kind

NUMERIC_BINS = 100
TOP_CATEGORIES = 100
QUANTILE_POINTS = 101
MAX_FEATURE_COLUMNS = 200  # model-input features profiled for feature drift


def numeric_values(s: pd.Series) -> np.ndarray:
    """The non-null values of a numeric, bool or datetime column as float64."""
    if pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = s.dropna()
        return s.to_numpy().astype("datetime64[ns]").astype("int64").astype("float64")
    values = s.to_numpy(dtype="float64", na_value=np.nan)
    return values[~np.isnan(values)]


def cut_points(values: np.ndarray, bins: int = NUMERIC_BINS) -> np.ndarray:
    """Inner cut points for ``values``: one bin per value when few, else quantile bins."""
    if values.size == 0:
        return np.empty(0)
    uniques = np.unique(values)
    if uniques.size <= bins:
        return (uniques[:-1] + uniques[1:]) / 2.0
    qs = np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1])
    return np.unique(qs)


_GRID = 4096


def bin_index(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Bin of each value: 0 for (-inf, c0), i for [c_{i-1}, c_i), len(cuts) for [c_last, inf).

    Exactly ``np.searchsorted(cuts, values, side="right")``, faster on large arrays: values are
    first placed on a uniform grid over the cut range; a grid cell whose neighbourhood (itself
    and the cells either side, to absorb rounding) holds no cut point maps straight to its bin,
    and only values in the few cells near a cut point are searched.
    """
    if values.size < 50_000 or cuts.size < 2 or not cuts[-1] > cuts[0]:
        return np.searchsorted(cuts, values, side="right")
    lo, hi = float(cuts[0]), float(cuts[-1])
    scale = (_GRID - 1) / (hi - lo)
    cell = np.floor(np.clip((values - lo) * scale, -1, _GRID)).astype(np.int64)  # -1 .. _GRID
    edges = lo + np.arange(-1, _GRID + 2) / scale  # edges[k] is the left edge of cell k - 1
    left = np.searchsorted(cuts, edges[:-3], side="right")  # bin at the previous cell's left edge
    right = np.searchsorted(cuts, edges[3:], side="left")  # bin before the next cell's right edge
    sure = np.concatenate([[True], left == right, [True]])
    table = np.concatenate([[0], left, [cuts.size]])
    out = table[cell + 1]
    unsure = ~sure[cell + 1]
    if unsure.any():
        out[unsure] = np.searchsorted(cuts, values[unsure], side="right")
    return out


def bin_counts(values: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Counts of ``values`` in the bins (-inf, c0), [c0, c1), ..., [c_last, +inf)."""
    return np.bincount(bin_index(values, cuts), minlength=cuts.size + 1)


def numeric_profile(s: pd.Series, *, hidden: bool = False) -> dict[str, Any]:
    values = numeric_values(s)
    n = int(len(s))
    out: dict[str, Any] = {
        "type": "numeric",
        "count": n,
        "null_count": n - int(values.size),
    }
    if hidden:
        return out
    finite = values[np.isfinite(values)]  # +-inf count in the outer bins, not in the statistics
    if finite.size < values.size:
        out["infinite_count"] = int(values.size - finite.size)
    if finite.size:
        cuts = cut_points(finite)
        out.update(
            min=float(finite.min()),
            max=float(finite.max()),
            mean=float(finite.mean()),
            std=float(finite.std()),
            cuts=cuts.tolist(),
            counts=bin_counts(values, cuts).tolist(),
            quantiles=np.quantile(finite, np.linspace(0, 1, QUANTILE_POINTS)).tolist(),
        )
        out["bridge_quantiles"] = bridge_quantiles(out)  # drift noise law, computed once
    return out


def categorical_profile(s: pd.Series, *, hidden: bool = False) -> dict[str, Any]:
    n = int(len(s))
    nonnull = s.dropna()
    out: dict[str, Any] = {
        "type": "categorical",
        "count": n,
        "null_count": n - int(len(nonnull)),
        "n_unique": int(nonnull.nunique()),
    }
    if hidden:
        return out
    merged: dict[str, int] = {}
    for value, c in nonnull.value_counts().items():  # count first: few distinct values
        merged[_key(value)] = merged.get(_key(value), 0) + int(c)
    freq = pd.Series(merged, dtype="int64").sort_values(ascending=False, kind="stable")
    top = freq.iloc[:TOP_CATEGORIES]
    out["frequencies"] = {str(k): int(v) for k, v in top.items()}
    out["other_count"] = int(freq.iloc[TOP_CATEGORIES:].sum())
    return out


def _key(value: Any) -> str:
    if isinstance(value, np.generic):
        value = value.item()
    return str(value)


def column_profile(s: pd.Series, *, hidden: bool = False) -> dict[str, Any]:
    """Profile one column; ``hidden`` (PII) keeps only counts, never values."""
    kind = column_kind(s)
    if kind in ("integer", "float", "datetime"):
        prof = numeric_profile(s, hidden=hidden)
    else:
        prof = categorical_profile(s, hidden=hidden)
    prof["kind"] = kind
    if hidden:
        prof["hidden"] = True
    return prof


def frame_profile(df: pd.DataFrame, *, hidden: set[str] | frozenset[str] = frozenset()) -> dict:
    return {str(c): column_profile(df[c], hidden=c in hidden) for c in df.columns}


def feature_frame(X: Any) -> pd.DataFrame | None:
    """The model-input features as a frame of at most MAX_FEATURE_COLUMNS named columns."""
    if isinstance(X, pd.DataFrame):
        frame = X
    elif isinstance(X, np.ndarray) and X.ndim == 2 and X.dtype.kind in "biuf":
        frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    else:
        return None  # sparse or exotic feature matrices are not profiled
    if frame.shape[1] > MAX_FEATURE_COLUMNS:
        frame = frame.iloc[:, :MAX_FEATURE_COLUMNS]
    frame = frame.copy(deep=False)
    frame.columns = [str(c) for c in frame.columns]
    return frame


# -- the noise law of drift's binned Wasserstein distance ----------------------------------
def edges(ref: dict[str, Any], current: dict[str, Any] | None = None) -> np.ndarray:
    """The bins' edges: the cut points, bounded by the reference min and max. Drift's CDF
    integral uses these (so the estimate does not depend on how extreme the batch's own min and
    max happen to be). With ``current``, a batch's profile in the same bins, the outer edges
    widen to the batch's min and max: the range its counts span (:func:`binned_quantiles`)."""
    cuts = np.asarray(ref["cuts"], dtype="float64")
    lo = ref.get("min", cuts[0] if cuts.size else 0.0)
    hi = ref.get("max", cuts[-1] if cuts.size else 0.0)
    if current is not None:
        lo, hi = min(lo, current.get("min", lo)), max(hi, current.get("max", hi))
    return np.concatenate([[min(lo, cuts[0]) if cuts.size else lo], cuts,
                           [max(hi, cuts[-1]) if cuts.size else hi]])


def binned_quantiles(counts: list[int], edges: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """Quantiles of a binned distribution, interpolating linearly inside each bin."""
    c = np.asarray(counts, dtype="float64")
    if c.sum() == 0:
        return [float("nan")] * len(qs)
    cum = np.concatenate([[0.0], np.cumsum(c) / c.sum()])
    return [float(np.interp(q, cum, edges)) for q in qs]


def spread(ref: dict[str, Any]) -> float:
    """A numeric profile's scale: its standard deviation, else its range, else 1."""
    return float(ref.get("std") or (ref.get("max", 0) - ref.get("min", 0)) or 1.0)


BRIDGE_QUANTILES = (0.99, 0.995, 0.999)
BRIDGE_SIMULATIONS = 10_000


def bridge_quantiles(ref: dict[str, Any], qs: tuple[float, ...] = BRIDGE_QUANTILES,
                     seed: int = 0) -> dict[str, float]:
    """Quantiles of the binned, spread-normalised Wasserstein distance times sqrt(n_eff) under
    no drift: the integral of a Brownian bridge over the reference CDF (simulated).

    The simulation (some 40 ms a column) depends only on the bins' counts and edges, so its
    result is kept per process (:data:`BRIDGE_CACHE_SIZE` profiles): packaging profiles the same
    training columns for the snapshot, the row rules and the feature reference."""
    key = (tuple(ref["counts"]), tuple(edges(ref).tolist()), spread(ref), tuple(qs), seed)
    found = _BRIDGE_CACHE.get(key)
    if found is None:
        found = _simulate_bridge(ref, qs, seed)
        if len(_BRIDGE_CACHE) >= BRIDGE_CACHE_SIZE:
            _BRIDGE_CACHE.pop(next(iter(_BRIDGE_CACHE)))  # the oldest
        _BRIDGE_CACHE[key] = found
    return dict(found)


BRIDGE_CACHE_SIZE = 1024
_BRIDGE_CACHE: dict[tuple, dict[str, float]] = {}


def _simulate_bridge(ref: dict[str, Any], qs: tuple[float, ...], seed: int) -> dict[str, float]:
    counts = np.asarray(ref["counts"], dtype="float64")
    p = counts / counts.sum()
    rng = np.random.default_rng(seed)
    steps = rng.standard_normal((BRIDGE_SIMULATIONS, p.size), dtype=np.float32)
    walk = np.cumsum(steps * np.sqrt(p, dtype=np.float32), axis=1)
    bridge = np.abs(walk - np.cumsum(p).astype(np.float32) * walk[:, -1:])[:, :-1]
    # trapezoid over [lo, c0, ..., c_last, hi] with the bridge pinned to 0 at both ends
    widths = np.diff(edges(ref)).astype(np.float32)
    halves = (widths[:-1] + widths[1:]) / 2  # each inner cut point's share of the integral
    w = bridge @ halves
    return {str(q): float(np.quantile(w, q)) / spread(ref) for q in qs}
