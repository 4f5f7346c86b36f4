"""``%nbprod check bounds``: declaring sanity bounds on outputs, enforced on every scoring run.

A bounds spec is plain JSON stored in the manifest::

    {"policy": "flag", "min": 0.0, "max": 350.0, "classes": null, "derived": ["max"]}

Regression outputs must lie in [min, max]; classifier outputs must be one of ``classes`` with
probabilities in [0, 1] summing to 1. Sides the user does not give are derived from the
reference predictions (train and valid), widened by ``margin`` times their range. The policy
says what scoring does with a violating row: ``flag`` keeps it and marks it in an
``out_of_bounds`` column, ``drop`` removes it, ``fail`` refuses the whole batch. Which rows
break a spec, and how a spec reads in a message, is :mod:`nbprod.core.bounds`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..core.bounds import describe, violations
from ..core.files import plain
from ..core.results import CheckResult
from ..exceptions import NbprodUsageError
from .context import evaluation, number

POLICIES = ("flag", "drop", "fail")


def bounds(session: Any, *, min: Any = None, max: Any = None, classes: Any = None,
           policy: str = "flag", margin: Any = 0.1) -> CheckResult:
    if policy not in POLICIES:
        raise NbprodUsageError(
            f"The 'policy' option of %nbprod check bounds must be one of {', '.join(POLICIES)}. "
            f"Got {policy!r}."
        )
    widen = number(margin, "margin", "bounds", lo=0.0)
    ev = evaluation(session)
    scorer = session.live_scorer()
    frames = [ev.X_train] + ([ev.X_valid] if ev.X_valid is not None else [])
    outputs = pd.concat(
        [scorer.predict(X, pd.RangeIndex(X.shape[0])) for X in frames], ignore_index=True
    )
    spec: dict[str, Any] = {"policy": policy, "min": None, "max": None, "classes": None,
                            "derived": []}
    if ev.task == "regression":
        if classes is not None:
            raise NbprodUsageError("--classes applies to classifiers; this model is a regressor.")
        low = number(min, "min", "bounds") if min is not None else None
        high = number(max, "max", "bounds") if max is not None else None
        if low is not None and high is not None and low > high:
            raise NbprodUsageError(f"%nbprod check bounds: --min {low:g} is above --max {high:g}.")
        ref = outputs["prediction"].to_numpy(dtype="float64")
        span = float(ref.max() - ref.min()) or abs(float(ref.max())) or 1.0
        if low is None:
            low = float(ref.min() - widen * span)
            spec["derived"].append("min")
        if high is None:
            high = float(ref.max() + widen * span)
            spec["derived"].append("max")
        spec.update(min=low, max=high)
    else:
        if min is not None or max is not None:
            raise NbprodUsageError(
                "--min/--max apply to regression outputs; for a classifier give --classes."
            )
        known = [plain(c) for c in session.require_model().model.classes_]
        allowed = known if classes is None else [c.strip() for c in str(classes).split(",") if c.strip()]
        unknown = [c for c in allowed if str(c) not in {str(k) for k in known}]
        if unknown:
            raise NbprodUsageError(
                f"--classes names {unknown[0]!r}, which the model never predicts "
                f"(its classes: {', '.join(map(str, known))})."
            )
        spec["classes"] = [k for k in known if str(k) in {str(a) for a in allowed}]
        if classes is None:
            spec["derived"].append("classes")
    bad = violations(outputs, spec)
    n_bad = int(bad.sum())
    where = describe(spec)
    if n_bad and policy == "fail":
        # the model's own training and validation answers would be refused batch by batch
        text = (f"{n_bad} of {len(outputs)} reference predictions fall outside {where}, and "
                "policy fail refuses every batch holding such a row; widen the bounds or "
                "choose --policy flag or drop")
        status = "fail"
    elif n_bad:
        text = (f"{n_bad} of {len(outputs)} reference predictions fall outside {where}; "
                f"policy at scoring time: {policy}")
        status = "warn"
    else:
        text = f"all {len(outputs)} reference predictions within {where}; policy at scoring time: {policy}"
        status = "pass"
    return CheckResult(name="bounds", kind="bounds", status=status, message=text, value=n_bad,
                       threshold=where, details={"spec": spec})
