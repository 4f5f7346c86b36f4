"""False-alarm rates of nbprod's drift decisions on unchanged data.

Builds a reference profile from 20,000 generated rows (8 normal columns, a gamma column, a
Poisson count column and 4 categorical columns of 8 levels, as in tests/test_drift.py), then
draws many fresh windows from the *same* distribution and runs nbprod's drift comparison on
each. Every drifted column and every drifted dataset verdict is a false alarm. The dataset
verdict uses equal column weights (no permutation importance), the default 25% threshold and the
default confidence of 0.999.

Prints, per window size: the per-column false-alarm rate (all columns pooled, then per column
and per reason, "category share" among them), the number of windows whose dataset verdict was
"drifted", the joint (multivariate) drift alarms over the 10 numeric columns, and the windows
where the dataset verdict or the joint statistic alarmed (what the retrain streak counts).

``--detection`` prints instead how often planted shifts are found, on diamond-like rows whose
columns move together (x, y, z follow carat and depth): joint-only shifts (x, y, z moved to other
stones among all, 20% or 5% of the rows: every column keeps its distribution), a rare category
(Fair, 3%) doubled and tripled, and carat shifted by 0.1, 0.2 and 0.3 sd.

    python bench/drift_false_alarms.py [--windows 100:500,10000:200,1000000:5] [--reference 20000]
    python bench/drift_false_alarms.py --detection [--windows 1000:50,10000:20]

Run it with OMP_NUM_THREADS=1 on a shared machine.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import numpy as np
import pandas as pd

WINDOWS = "100:500,10000:200,1000000:5"
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


def run(reference: dict, n: int, seeds: int, joint_ref: dict | None = None) -> dict:
    from nbprod.monitoring import drift as dr
    from nbprod.monitoring import joint

    per_column: Counter[str] = Counter()
    per_reason: Counter[str] = Counter()
    dataset_alarms = joint_alarms = either_alarms = 0
    worst_share = worst_joint = 0.0
    for seed in range(seeds):
        batch = frame(n, seed=1000 + seed)
        cols = dr.compare(reference, dr.frame_batch_profile(batch, reference))
        verdict = dr.dataset_verdict(cols, None)
        dataset_alarms += bool(verdict["drifted"])
        worst_share = max(worst_share, verdict["weighted_share"])
        for name, d in cols.items():
            if d["drifted"]:
                per_column[name] += 1
                per_reason.update(r.split(" (")[0] if r.startswith("category share") else r
                                  for r in d["reasons"])
        if joint_ref is not None:
            j = joint.finalize(joint_ref, joint.partial(batch, joint_ref))
            joint_alarms += j.drifted
            either_alarms += j.drifted or bool(verdict["drifted"])
            worst_joint = max(worst_joint, j.statistic / j.threshold)
    n_cols = len(reference)
    return {
        "joint_alarms": joint_alarms,
        "either_alarms": either_alarms,
        "worst_joint": worst_joint,
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
        default=WINDOWS,
        help="ROWS:WINDOWS pairs, comma-separated (default %(default)s)",
    )
    parser.add_argument("--reference", type=int, default=20_000, help="reference rows")
    parser.add_argument("--detection", action="store_true", help="detection of planted shifts")
    args = parser.parse_args()
    if args.detection:
        detection(args.reference, args.windows if args.windows != WINDOWS else "1000:50,10000:20")
        return

    from nbprod.core.profile import frame_profile
    from nbprod.monitoring import joint

    train = frame(args.reference, seed=1)
    reference = frame_profile(train)
    joint_ref = joint.build(train, joint.numeric_columns(train))
    print(
        f"reference: {args.reference:,} rows x {len(reference)} columns "
        "(10 numeric, 4 categorical); confidence 0.999; dataset threshold 25%, equal weights"
    )
    for pair in args.windows.split(","):
        rows, windows = (int(x) for x in pair.split(":"))
        t = time.perf_counter()
        r = run(reference, rows, windows, joint_ref)
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
        print(
            f"  joint false alarms        {r['joint_alarms']} of {windows} windows "
            f"(largest statistic {r['worst_joint']:.2f} x its threshold; "
            f"{joint_ref['k']} of {len(joint_ref['columns'])} components)"
        )
        print(f"  dataset or joint          {r['either_alarms']} of {windows} windows")


# -- detection of planted shifts ----------------------------------------------------------------
STONE_CUTS = ["Fair", "Good", "Very Good", "Premium", "Ideal"]
STONE_SHARES = [0.03, 0.09, 0.22, 0.26, 0.40]


def stones(n: int, seed: int, fair: float = 0.03) -> pd.DataFrame:
    """Diamond-like rows (the generator of tests/test_depth.py): x, y, z follow carat and depth,
    rounded like real stones; ``fair`` is the share of the rare category, taken from Ideal."""
    shares = list(STONE_SHARES)
    shares[0], shares[4] = fair, shares[4] - (fair - STONE_SHARES[0])
    rng = np.random.default_rng(seed)
    cut = rng.choice(len(STONE_CUTS), size=n, p=shares)
    carat = np.round(np.clip(np.exp(rng.normal(-0.4, 0.55, n) + 0.3 * (cut == 0)), 0.2, 5.0), 2)
    depth = np.round(np.where(cut == 0, rng.normal(64.0, 3.6, n), rng.normal(61.7, 1.2, n)), 1)
    table = np.round(rng.normal(57.5, 2.0, n), 0)
    x = 6.42 * carat ** (1 / 3) * (1 + rng.normal(0, 0.012, n)) * (61.7 / depth) ** (1 / 3)
    y = x * (1 + rng.normal(0, 0.008, n))
    z = x * depth / 100 * (1 + rng.normal(0, 0.008, n))
    return pd.DataFrame({"carat": carat, "cut": pd.array(np.array(STONE_CUTS)[cut], dtype="str"),
                         "depth": depth, "table": table, "x": np.round(x, 2), "y": np.round(y, 2),
                         "z": np.round(z, 2)})


def _reassigned(share: float):
    def plant(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        rows = np.flatnonzero(rng.random(len(df)) < share)
        xyz = df[["x", "y", "z"]].to_numpy().copy()
        xyz[rows] = xyz[rng.permutation(rows)]
        return df.assign(x=xyz[:, 0], y=xyz[:, 1], z=xyz[:, 2])
    return plant


def _carat(sd: float, spread: float):
    def plant(df: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
        return df.assign(carat=np.round(df["carat"] + sd * spread, 2))
    return plant


def detection(reference_rows: int, windows: str) -> None:
    from nbprod.core.profile import frame_profile
    from nbprod.monitoring import drift as dr
    from nbprod.monitoring import joint

    train = stones(reference_rows, seed=1)
    reference = frame_profile(train)
    joint_ref = joint.build(train, joint.numeric_columns(train))
    spread = float(train["carat"].std())
    same = {"fair": 0.03}
    shifts = {
        "none (unchanged)": (same, None),
        "joint only: x, y, z moved among all rows": (same, _reassigned(1.0)),
        "joint only: among 20% of rows": (same, _reassigned(0.2)),
        "joint only: among 5% of rows": (same, _reassigned(0.05)),
        "Fair share x2 (3% -> 6%)": ({"fair": 0.06}, None),
        "Fair share x3 (3% -> 9%)": ({"fair": 0.09}, None),
        "carat +0.1 sd": (same, _carat(0.1, spread)),
        "carat +0.2 sd": (same, _carat(0.2, spread)),
        "carat +0.3 sd": (same, _carat(0.3, spread)),
    }
    print(f"reference: {reference_rows:,} diamond-like rows, {len(joint_ref['columns'])} numeric "
          f"columns ({joint_ref['k']} components), cut with Fair at 3%; confidence 0.999")
    print("\nshare of windows flagged: joint | cut's category share | any column | dataset verdict")
    for pair in windows.split(","):
        rows, count = (int(x) for x in pair.split(":"))
        for name, (kw, plant) in shifts.items():
            hits = Counter()
            for w in range(count):
                rng = np.random.default_rng(5000 + w)
                batch = stones(rows, seed=2000 + w, **kw)
                if plant is not None:
                    batch = plant(batch, rng)
                cols = dr.compare(reference, dr.frame_batch_profile(batch, reference))
                hits["joint"] += joint.finalize(joint_ref, joint.partial(batch, joint_ref)).drifted
                hits["share"] += bool(cols["cut"]["share_changes"])
                hits["column"] += any(c["drifted"] for c in cols.values())
                hits["dataset"] += dr.dataset_verdict(cols, None)["drifted"]
            cells = " | ".join(f"{hits[k] / count:>4.0%}" for k in ("joint", "share", "column", "dataset"))
            print(f"  {rows:>6,} rows x {count}  {name:<44} {cells}")


if __name__ == "__main__":
    main()
