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
    return null_rates_check(measure(X, profile), profile)


def unseen_categories(X: pd.DataFrame, profile: dict[str, Any]) -> CheckResult:
    """Count values of categorical columns never seen in training (when the profile knows all)."""
    return unseen_check(measure(X, profile), profile)


def out_of_range(X: pd.DataFrame, profile: dict[str, Any]) -> CheckResult:
    """Count numeric values below the training minimum or above the training maximum."""
    return out_of_range_check(measure(X, profile), profile)


# -- what the input checks count, mergeable over the chunks of a batch --------------------------
def measure(X: pd.DataFrame, profile: dict[str, Any]) -> dict[str, Any]:
    """The counts the input checks judge: rows, nulls per column, values never seen in training
    (rows and the :data:`SHOWN_VALUES` smallest), values outside the training range. Counts of
    chunks add up (:func:`merge_measures`), so a batch is judged the same in one piece or in
    chunks."""
    from ..core.profile import numeric_values

    nulls = X.isna().sum()
    out: dict[str, Any] = {"rows": len(X), "nulls": {str(c): int(nulls[c]) for c in X.columns},
                           "unseen": {}, "range": {}}
    for col in X.columns:
        ref = profile.get(col)
        if not ref or ref.get("hidden"):
            continue
        if ref.get("type") == "categorical" and not ref.get("other_count"):
            new = _unseen(X[col].dropna(), set(ref.get("frequencies", {})))
            if len(new):
                out["unseen"][str(col)] = {"rows": int(len(new)),
                                           "values": sorted(new.unique().tolist())[:SHOWN_VALUES]}
        elif ref.get("type") == "numeric" and "min" in ref:
            values = numeric_values(X[col])
            out["range"][str(col)] = {"below": int((values < ref["min"]).sum()),
                                      "above": int((values > ref["max"]).sum()),
                                      "values": int(len(values))}
    return out


SHOWN_VALUES = 10  # unseen values listed per column


def _unseen(values: pd.Series, known: set[str]) -> pd.Series:
    """The values (as text) never seen in training. Text columns are compared as they are, in
    one hash pass; other columns as text, once per distinct value."""
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        return values[~values.isin(list(known))].astype("object")
    codes, uniques = pd.factorize(values)
    texts = pd.Series(uniques, dtype="object").map(str) if len(uniques) else pd.Series([], dtype="object")
    new = ~texts.isin(known).to_numpy(dtype=bool)
    if not new.any():
        return pd.Series([], dtype="object")
    return pd.Series(texts.to_numpy()[codes[new[codes]]], dtype="object")


def merge_measures(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The measure of two chunks together (``a`` before ``b``)."""
    unseen = {c: dict(v) for c, v in a["unseen"].items()}
    for c, v in b["unseen"].items():
        if c in unseen:
            unseen[c] = {"rows": unseen[c]["rows"] + v["rows"],
                         "values": sorted(set(unseen[c]["values"]) | set(v["values"]))[:SHOWN_VALUES]}
        else:
            unseen[c] = dict(v)
    ranges = {c: dict(v) for c, v in a["range"].items()}
    for c, v in b["range"].items():
        r = ranges.setdefault(c, {"below": 0, "above": 0, "values": 0})
        for k in ("below", "above", "values"):
            r[k] += v[k]
    nulls = dict(a["nulls"])
    for c, n in b["nulls"].items():
        nulls[c] = nulls.get(c, 0) + n
    order = list(a["nulls"]) + [c for c in b["nulls"] if c not in a["nulls"]]
    return {"rows": a["rows"] + b["rows"], "nulls": {c: nulls[c] for c in order},
            "unseen": {c: unseen[c] for c in _ordered(order, unseen)},
            "range": {c: ranges[c] for c in _ordered(order, ranges)}}


def _ordered(order: list[str], d: dict[str, Any]) -> list[str]:
    return [c for c in order if c in d] + [c for c in d if c not in order]


def null_rates_check(m: dict[str, Any], profile: dict[str, Any]) -> CheckResult:
    """``input:nulls`` from :func:`measure`'s counts."""
    rows: dict[str, dict[str, float]] = {}
    risen = []
    n = m["rows"]
    for col, count in m["nulls"].items():
        ref = profile.get(col)
        if not ref or not ref.get("count"):
            continue
        p0 = ref["null_count"] / ref["count"]
        p1 = float(count / n) if n else float("nan")
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


def unseen_check(m: dict[str, Any], profile: dict[str, Any]) -> CheckResult:
    """``input:unseen-categories`` from :func:`measure`'s counts."""
    found: dict[str, dict[str, Any]] = {
        c: {"rows": v["rows"], "share": v["rows"] / m["rows"], "values": v["values"]}
        for c, v in m["unseen"].items()}
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


def out_of_range_check(m: dict[str, Any], profile: dict[str, Any]) -> CheckResult:
    """``input:out-of-range`` from :func:`measure`'s counts."""
    found: dict[str, dict[str, Any]] = {}
    for col, r in m["range"].items():
        ref = profile[col]
        below, above, n_values = r["below"], r["above"], r["values"]
        if below or above:
            # Even unchanged data falls outside the min/max of n reference values with
            # probability 2/(n+1); allow that plus three standard errors of this batch.
            n_ref = max(ref["count"] - ref["null_count"], 1)
            expected = 2.0 / (n_ref + 1)
            allowed = max(MAX_OUT_OF_RANGE_SHARE,
                          expected + 3 * math.sqrt(expected * (1 - expected) / max(n_values, 1)))
            found[col] = {"below": below, "above": above,
                          "share": (below + above) / max(n_values, 1), "allowed": allowed,
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
    return output_bounds_check(bounds_measure(outputs, bad, id_column, hide_ids=hide_ids), spec)


def bounds_measure(outputs: pd.DataFrame, bad: np.ndarray, id_column: str | None, *,
                   hide_ids: bool = False) -> dict[str, Any]:
    """What ``output:bounds`` judges: predictions, how many are out of bounds, and the ids (or,
    without a shown id, the positions among the predictions) of the first :data:`MAX_IDS`."""
    by_id = bool(id_column) and not hide_ids
    n_bad = int(bad.sum())
    if not n_bad:
        first: list[Any] = []
    elif by_id:
        first = [plain(i) for i in outputs.loc[bad, id_column].head(MAX_IDS).tolist()]
    else:
        first = np.flatnonzero(bad)[:MAX_IDS].tolist()
    return {"rows": len(bad), "bad": n_bad, "first": first, "by_id": by_id}


def merge_bounds(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Two chunks' :func:`bounds_measure` (``a`` first): positions of ``b`` follow ``a``'s."""
    first = list(a["first"])
    if len(first) < MAX_IDS:
        more = b["first"] if a["by_id"] else [p + a["rows"] for p in b["first"]]
        first += more[:MAX_IDS - len(first)]
    return {"rows": a["rows"] + b["rows"], "bad": a["bad"] + b["bad"], "first": first,
            "by_id": a["by_id"]}


def output_bounds_check(m: dict[str, Any], spec: dict[str, Any] | None) -> CheckResult:
    """``output:bounds`` from :func:`bounds_measure`."""
    if not spec:
        return CheckResult(name="output:bounds", kind="output", status="skip",
                           message="no output bounds declared at packaging")
    from ..core.bounds import describe

    where = describe(spec)
    n_bad, n = m["bad"], m["rows"]
    if not n_bad:
        return CheckResult(name="output:bounds", kind="output", status="pass",
                           message=f"all {n:,} predictions within {where}", value=0,
                           threshold=where, details={"policy": spec["policy"]})
    ids = m["first"]
    action = {"flag": "kept and marked in out_of_bounds", "drop": "dropped from the output",
              "fail": "the batch was refused"}[spec["policy"]]
    return CheckResult(
        name="output:bounds", kind="output", status="fail",
        message=f"{n_bad:,} of {n:,} predictions outside {where} ({action}); "
                f"{'ids' if m['by_id'] else 'rows'} {ids}",
        value=n_bad, threshold=where,
        details={"policy": spec["policy"], "ids": [plain(i) for i in ids], "count": n_bad},
    )
