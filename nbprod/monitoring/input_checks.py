"""Checks that run on every scoring batch: input quality against the reference, output bounds.

They compare the batch with the training snapshot's profile recorded at packaging (no reference
data is re-read): null rates, categories never seen in training, numeric values outside the
training range, and outputs outside the declared bounds. Each returns a
:class:`~nbprod.core.results.CheckResult`, shown in the report and written to the summary JSON.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..core.files import plain
from ..core.results import CheckResult

MAX_IDS = 20
MIN_NULL_RISE = 0.05  # absolute rise in null rate always tolerated
MAX_UNSEEN_SHARE = 0.01
MAX_OUT_OF_RANGE_SHARE = 0.01


def null_rates(X: pd.DataFrame, profile: dict[str, Any]) -> CheckResult:
    """Warn when a column's null rate rises beyond noise: max(5 points, 3 binomial SEs)."""
    rows: dict[str, dict[str, float]] = {}
    risen = []
    n = len(X)
    current = X.isna().mean()
    for col in X.columns:
        ref = profile.get(col)
        if not ref or not ref.get("count"):
            continue
        p0 = ref["null_count"] / ref["count"]
        p1 = float(current[col])
        se = math.sqrt(max(p0 * (1 - p0), 1.0 / ref["count"]) / n)
        allowed = max(MIN_NULL_RISE, 3 * se)
        rows[col] = {"reference": p0, "current": p1, "allowed_rise": allowed}
        if p1 - p0 > allowed:
            risen.append(col)
    if risen:
        worst = max(risen, key=lambda c: rows[c]["current"] - rows[c]["reference"])
        r = rows[worst]
        return CheckResult(
            name="input:nulls", kind="input", status="warn",
            message=f"null rate rose in {len(risen)} column(s); worst {worst!r} "
                    f"{r['reference']:.1%} -> {r['current']:.1%}",
            value=r["current"] - r["reference"], threshold=r["allowed_rise"],
            details={"columns": rows, "risen": risen},
        )
    return CheckResult(name="input:nulls", kind="input", status="pass",
                       message="null rates in line with training", value=0.0,
                       details={"columns": rows})


def unseen_categories(X: pd.DataFrame, profile: dict[str, Any]) -> CheckResult:
    """Count values of categorical columns never seen in training (when the profile knows all)."""
    found: dict[str, dict[str, Any]] = {}
    for col in X.columns:
        ref = profile.get(col)
        if not ref or ref.get("type") != "categorical" or ref.get("hidden") or ref.get("other_count"):
            continue
        known = set(ref.get("frequencies", {}))
        values = X[col].dropna()
        if not len(values):
            continue
        as_text = values.astype("object").map(str)
        new = as_text[~as_text.isin(known)]
        if len(new):
            found[col] = {"rows": int(len(new)), "share": len(new) / len(X),
                          "values": sorted(new.unique().tolist())[:10]}
    if not found:
        return CheckResult(name="input:unseen-categories", kind="input", status="pass",
                           message="every category was seen in training", value=0)
    worst = max(found, key=lambda c: found[c]["share"])
    status = "warn" if found[worst]["share"] > MAX_UNSEEN_SHARE else "pass"
    parts = [f"{c} {d['rows']} row(s), e.g. {d['values'][0]!r}" for c, d in found.items()]
    return CheckResult(
        name="input:unseen-categories", kind="input", status=status,
        message="categories never seen in training: " + "; ".join(parts),
        value=sum(d["rows"] for d in found.values()), threshold=MAX_UNSEEN_SHARE,
        details={"columns": found},
    )


def out_of_range(X: pd.DataFrame, profile: dict[str, Any]) -> CheckResult:
    """Count numeric values below the training minimum or above the training maximum."""
    from ..core.profile import numeric_values

    found: dict[str, dict[str, Any]] = {}
    for col in X.columns:
        ref = profile.get(col)
        if not ref or ref.get("type") != "numeric" or ref.get("hidden") or "min" not in ref:
            continue
        values = numeric_values(X[col])
        below = int((values < ref["min"]).sum())
        above = int((values > ref["max"]).sum())
        if below or above:
            # Even unchanged data falls outside the min/max of n reference values with
            # probability 2/(n+1); allow that plus three standard errors of this batch.
            n_ref = max(ref["count"] - ref["null_count"], 1)
            expected = 2.0 / (n_ref + 1)
            allowed = max(MAX_OUT_OF_RANGE_SHARE,
                          expected + 3 * math.sqrt(expected * (1 - expected) / max(len(values), 1)))
            found[col] = {"below": below, "above": above,
                          "share": (below + above) / max(len(values), 1), "allowed": allowed,
                          "min": ref["min"], "max": ref["max"]}
    if not found:
        return CheckResult(name="input:out-of-range", kind="input", status="pass",
                           message="all numeric values inside the training range", value=0)
    worst = max(found, key=lambda c: found[c]["share"] - found[c]["allowed"])
    status = "warn" if found[worst]["share"] > found[worst]["allowed"] else "pass"
    total = sum(d["below"] + d["above"] for d in found.values())
    return CheckResult(
        name="input:out-of-range", kind="input", status=status,
        message=f"{total} value(s) outside the training range in {len(found)} column(s); worst "
                f"{worst!r} {found[worst]['share']:.1%}",
        value=total, threshold=found[worst]["allowed"], details={"columns": found},
    )


def output_bounds(outputs: pd.DataFrame, bad: np.ndarray, spec: dict[str, Any] | None,
                  id_column: str | None, *, hide_ids: bool = False) -> CheckResult:
    """Outputs outside the declared bounds: counted, with their ids, never passed as fine.

    ``hide_ids`` (the id column is personal data): row numbers are given instead of ids."""
    if hide_ids:
        id_column = None
    if not spec:
        return CheckResult(name="output:bounds", kind="output", status="skip",
                           message="no output bounds declared at packaging")
    from ..core.bounds import describe

    where = describe(spec)
    n_bad = int(bad.sum())
    if not n_bad:
        return CheckResult(name="output:bounds", kind="output", status="pass",
                           message=f"all {len(bad):,} predictions within {where}", value=0,
                           threshold=where, details={"policy": spec["policy"]})
    if id_column:
        ids = outputs.loc[bad, id_column].head(MAX_IDS).tolist()
    else:
        ids = np.flatnonzero(bad)[:MAX_IDS].tolist()
    action = {"flag": "kept and marked in out_of_bounds", "drop": "dropped from the output",
              "fail": "the batch was refused"}[spec["policy"]]
    return CheckResult(
        name="output:bounds", kind="output", status="fail",
        message=f"{n_bad:,} of {len(bad):,} predictions outside {where} ({action}); "
                f"{'ids' if id_column else 'rows'} {ids}",
        value=n_bad, threshold=where,
        details={"policy": spec["policy"], "ids": [plain(i) for i in ids], "count": n_bad},
    )
