"""What the model takes, per input column: the row rules packaging records in the manifest.

Packaging probes the live model on a few snapshot rows (:func:`probe_row_rules`): a missing
value in each column, and a category never seen in training in each text column. What the model
cannot take becomes a rule of production scoring (such rows are rejected, see
:mod:`nbprod.core.rows`) and a ``row-rules`` warning of the session, in words.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..core.profile import frame_profile
from ..core.results import CheckResult
from ..core.rows import ModelTakes

ROW_RULES_KIND = "row-rules"
PROBE_ROWS = 5
UNSEEN_MARKER = "__nbprod_unseen__"


def apply_row_rules(session, live) -> dict[str, Any]:
    """Probe what the model takes, give the live scorer the artifact's row rules (so parity
    replay compares like with like) and record the warnings as checks of the session."""
    train = session.train
    profile = frame_profile(train.X, hidden=set(train.pii))
    live.profile = profile
    live.hidden = frozenset(train.pii) | {c for c, p in profile.items() if p.get("hidden")}
    rules = probe_row_rules(live, train.raw_sample())
    live.takes = ModelTakes.from_manifest(rules)
    for name in [n for n, c in session.checks.items() if c.kind == ROW_RULES_KIND]:
        del session.checks[name]  # a re-packaged model is probed afresh
    for check in row_rule_checks(rules, live.schema, profile):
        session.record_check(check)
    return rules


def probe_row_rules(scorer, sample: pd.DataFrame) -> dict[str, Any]:
    """What the model takes in each input column (the manifest's ``row_rules``).

    On a few sample rows, each column in turn is set to a missing value, and text and category
    columns to a value never seen in training; the rows go through conversion, the feature
    function and the model as in production. The column "takes" the value when that succeeds
    with finite outputs."""
    base = sample.reset_index(drop=True).iloc[:PROBE_ROWS]
    columns: dict[str, Any] = {}
    for spec in scorer.schema.columns:
        error = scorer.failure(base.assign(**{spec.name: None}))
        entry: dict[str, Any] = {"takes_missing": error is None, "takes_unseen": None}
        if error:
            entry["missing_error"] = error
        if spec.kind in ("string", "category"):
            error = scorer.failure(base.assign(**{spec.name: _unseen_value(spec)}))
            entry["takes_unseen"] = error is None
            if error:
                entry["unseen_error"] = error
        columns[spec.name] = entry
    return {"probed_rows": len(base), "columns": columns}


def _unseen_value(spec) -> Any:
    known = spec.categories or []
    if known and all(isinstance(k, int | float) and not isinstance(k, bool) for k in known):
        return max(known) + 1  # numeric categories: a number never seen
    return UNSEEN_MARKER


def row_rule_checks(rules: dict[str, Any], schema, profile: dict[str, Any]) -> list:
    """Warnings, in words, for what will happen in production to rows the model cannot take."""
    cols = rules["columns"]
    out = []
    missing = [s.name for s in schema.columns
               if not s.nullable and cols.get(s.name, {}).get("takes_missing") is False]
    if missing:
        out.append(CheckResult(
            name=f"{ROW_RULES_KIND}:missing", kind=ROW_RULES_KIND, status="warn",
            message=(f"The model cannot take a missing value in {_listed(missing)}, which had none "
                     "in training. In production a row with a missing value there is rejected: "
                     "not scored, and listed in the issues file (rule 'missing'). To score such "
                     "rows, impute in the feature function or the model's pipeline."),
            value=len(missing),
            details={"columns": missing,
                     "errors": {c: cols[c].get("missing_error") for c in missing}}))
    unseen = [s.name for s in schema.columns if cols.get(s.name, {}).get("takes_unseen") is False]
    if unseen:
        unlisted = [c for c in unseen if (profile.get(c) or {}).get("other_count")
                    or (profile.get(c) or {}).get("hidden")]
        note = (f" The training profile of {_listed(unlisted)} does not list every value, so "
                "there such rows are found when the model fails on them (rule 'model-error')."
                if unlisted else "")
        out.append(CheckResult(
            name=f"{ROW_RULES_KIND}:unseen-category", kind=ROW_RULES_KIND, status="warn",
            message=(f"The model cannot encode a category unseen in training in {_listed(unseen)} "
                     "(e.g. a OneHotEncoder with handle_unknown='error'). In production a row with "
                     "a new category there is rejected: not scored, and listed in the issues file "
                     "(rule 'unseen-category'). To score such rows, let the encoder ignore "
                     f"unknown categories (handle_unknown='ignore').{note}"),
            value=len(unseen),
            details={"columns": unseen,
                     "errors": {c: cols[c].get("unseen_error") for c in unseen}}))
    return out


def _listed(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
