"""Drift statistics on binned profiles: detection, false alarms, mergeability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nbprod.core.profile import frame_profile
from nbprod.monitoring import drift as dr

CATS = list("abcdefgh")
P = [0.3, 0.2, 0.15, 0.1, 0.1, 0.07, 0.05, 0.03]


def _frame(n: int, seed: int, shift: float = 0.0, cat_p=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = {f"x{i}": rng.normal(size=n) for i in range(8)}
    cols["x0"] = cols["x0"] + shift
    cols["skewed"] = rng.gamma(2.0, 3.0, size=n)
    cols["count"] = rng.poisson(3, size=n)
    for j in range(4):
        probs = cat_p if (j == 0 and cat_p is not None) else P
        cols[f"c{j}"] = pd.array(rng.choice(CATS, size=n, p=probs), dtype="str")
    return pd.DataFrame(cols)


@pytest.fixture(scope="module")
def reference() -> dict:
    return frame_profile(_frame(20_000, seed=1))


def _run(reference, batch: pd.DataFrame):
    cols = dr.compare(reference, dr.frame_batch_profile(batch, reference))
    return cols, dr.dataset_verdict(cols, None)


def test_planted_shifts_are_found_and_nothing_else(reference):
    moved = [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.3]  # mass moves to the rarest categories
    cols, verdict = _run(reference, _frame(10_000, seed=2, shift=0.6, cat_p=moved))
    drifted = {c for c, d in cols.items() if d["drifted"]}
    assert drifted == {"x0", "c0"}
    assert "location/scale (Wasserstein)" in cols["x0"]["reasons"]
    assert cols["x0"]["wasserstein"] == pytest.approx(0.6, abs=0.1)  # in standard deviations
    assert "category frequencies (PSI)" in cols["c0"]["reasons"]
    assert verdict["drifted_columns"][0] in ("x0", "c0")


def test_new_categories_and_null_rates_are_drift(reference):
    batch = _frame(5_000, seed=3)
    batch.loc[:999, "c1"] = "zeta"  # 20% values never seen in training
    batch.loc[:1499, "x3"] = np.nan  # null rate 0 -> 30%
    cols, _ = _run(reference, batch)
    assert cols["c1"]["new_share"] == pytest.approx(0.2) and "new categories" in cols["c1"]["reasons"]
    assert cols["c1"]["new_values"] == ["zeta"]
    assert cols["x3"]["null_rate"] == pytest.approx(0.3) and "null rate" in cols["x3"]["reasons"]


def test_large_window_ignores_negligible_shift(reference):
    cols, verdict = _run(reference, _frame(1_000_000, seed=4, shift=0.03))
    assert not cols["x0"]["drifted"]  # 0.03 standard deviations: real, but negligible
    assert not verdict["drifted"]


@pytest.mark.parametrize(("n", "seeds"), [(100, 150), (10_000, 60), (1_000_000, 3)])
def test_unchanged_data_raises_no_dataset_alarm(reference, n, seeds):
    column_alarms = 0
    columns = 0
    for seed in range(seeds):
        cols, verdict = _run(reference, _frame(n, seed=1000 + seed))
        assert not verdict["drifted"], f"false dataset alarm at n={n}, seed={seed}: {verdict}"
        column_alarms += sum(d["drifted"] for d in cols.values())
        columns += len(cols)
    # per-column false alarms stay rare (measured: about 1% at 100 rows, 0 at 10k and 1M)
    assert column_alarms / columns < 0.03


def test_chunks_merge_into_the_whole(reference):
    batch = _frame(9_000, seed=5)
    whole = dr.frame_batch_profile(batch, reference)
    parts = [dr.frame_batch_profile(batch.iloc[i:i + 3000], reference) for i in (0, 3000, 6000)]
    for col in whole:
        merged = dr.merge(dr.merge(parts[0][col], parts[1][col]), parts[2][col])
        assert merged["count"] == whole[col]["count"]
        assert merged.get("counts") == whole[col].get("counts")
        assert merged.get("frequencies") == whole[col].get("frequencies")
    a = dr.compare(reference, whole)["x0"]
    b = dr.compare(reference, {c: dr.merge(dr.merge(parts[0][c], parts[1][c]), parts[2][c])
                               for c in whole})["x0"]
    assert a["psi"] == pytest.approx(b["psi"]) and a["wasserstein"] == pytest.approx(b["wasserstein"])


def test_importance_weights_the_dataset_verdict(reference):
    cols, _ = _run(reference, _frame(10_000, seed=6, shift=0.8))
    assert cols["x0"]["drifted"]
    unimportant = dr.dataset_verdict(cols, {"x0": 0.01, **{c: 1.0 for c in cols if c != "x0"}})
    important = dr.dataset_verdict(cols, {"x0": 0.9, **{c: 0.01 for c in cols if c != "x0"}})
    assert not unimportant["drifted"] and important["drifted"]
    assert "permutation-importance-weighted share" in important["rule"]


@pytest.mark.parametrize("seed", range(5))
def test_fast_binning_equals_searchsorted(seed):
    from nbprod.core.profile import bin_index

    rng = np.random.default_rng(seed)
    ref = rng.gamma(1.0 + seed, 2.0, 20_000)
    cuts = np.unique(np.quantile(ref, np.linspace(0, 1, 101)[1:-1]))
    values = np.concatenate([cuts, np.nextafter(cuts, -np.inf), np.nextafter(cuts, np.inf),
                             [np.inf, -np.inf, 0.0], rng.gamma(1.0 + seed, 2.5, 200_000) - 1])
    assert np.array_equal(bin_index(values, cuts), np.searchsorted(cuts, values, side="right"))
