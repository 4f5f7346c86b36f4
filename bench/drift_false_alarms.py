"""False-alarm rates of nbprod's drift decisions on unchanged data.

Builds a reference profile from 20,000 generated rows (8 normal columns, a gamma column, a
Poisson count column and 4 categorical columns of 8 levels, as in tests/test_drift.py), then
draws many fresh windows from the *same* distribution and runs nbprod's drift comparison on
each. Every drifted column and every drifted dataset verdict is a false alarm. The dataset
verdict uses equal column weights (no permutation importance), the default 25% threshold and the
default confidence of 0.999.

Prints, per window size: the per-column false-alarm rate (all columns pooled, then per column
and per reason), and the number of windows whose dataset verdict was "drifted".

    python bench/drift_false_alarms.py [--windows 100:500,10000:200,1000000:5] [--reference 20000]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np
import pandas as pd

CATS = list("abcdefgh")
P = [0.3, 0.2, 0.15, 0.1, 0.1, 0.07, 0.05, 0.03]


def frame(n: int, seed: int) -> pd.DataFrame:
    """The generator of tests/test_drift.py, without a planted shift."""
    rng = np.random.default_rng(seed)
    cols: dict[str, object] = {f"x{i}": rng.normal(size=n) for i in range(8)}
    cols["skewed"] = rng.gamma(2.0, 3.0, size=n)
    cols["count"] = rng.poisson(3, size=n)
    for j in range(4):
        cols[f"c{j}"] = pd.array(rng.choice(CATS, size=n, p=P), dtype="str")
    return pd.DataFrame(cols)


def run(reference: dict, n: int, seeds: int) -> dict:
    from nbprod.monitoring import drift as dr

    per_column: Counter[str] = Counter()
    per_reason: Counter[str] = Counter()
    dataset_alarms = 0
    worst_share = 0.0
    for seed in range(seeds):
        batch = frame(n, seed=1000 + seed)
        cols = dr.compare(reference, dr.frame_batch_profile(batch, reference))
        verdict = dr.dataset_verdict(cols, None)
        dataset_alarms += bool(verdict["drifted"])
        worst_share = max(worst_share, verdict["weighted_share"])
        for name, d in cols.items():
            if d["drifted"]:
                per_column[name] += 1
                per_reason.update(d["reasons"])
    n_cols = len(reference)
    return {
        "rows": n,
        "windows": seeds,
        "columns": n_cols,
        "column_alarms": sum(per_column.values()),
        "per_column": per_column,
        "per_reason": per_reason,
        "dataset_alarms": dataset_alarms,
        "worst_share": worst_share,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--windows",
        default="100:500,10000:200,1000000:5",
        help="ROWS:WINDOWS pairs, comma-separated (default %(default)s)",
    )
    parser.add_argument("--reference", type=int, default=20_000, help="reference rows")
    args = parser.parse_args()

    from nbprod.core.profile import frame_profile

    reference = frame_profile(frame(args.reference, seed=1))
    print(
        f"reference: {args.reference:,} rows x {len(reference)} columns "
        "(10 numeric, 4 categorical); confidence 0.999; dataset threshold 25%, equal weights"
    )
    for pair in args.windows.split(","):
        rows, windows = (int(x) for x in pair.split(":"))
        t = time.perf_counter()
        r = run(reference, rows, windows)
        checked = r["windows"] * r["columns"]
        print(f"\nwindow {rows:>9,} rows x {windows} windows ({time.perf_counter() - t:.0f} s)")
        print(
            f"  per-column false alarms   {r['column_alarms']} of {checked} "
            f"({r['column_alarms'] / checked:.2%})"
        )
        if r["per_column"]:
            worst = ", ".join(f"{c} {k / windows:.1%}" for c, k in r["per_column"].most_common(5))
            print(f"  by column (worst)         {worst}")
            print(
                "  by reason                 "
                + ", ".join(f"{k}: {v}" for k, v in r["per_reason"].most_common())
            )
        print(
            f"  dataset false alarms      {r['dataset_alarms']} of {windows} windows "
            f"(largest drifted share {r['worst_share']:.0%}, alarm at 25%)"
        )


if __name__ == "__main__":
    main()
