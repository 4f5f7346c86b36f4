"""Output bounds: which output rows break a bounds spec, and how a spec reads in a message.

A bounds spec is plain JSON stored in the manifest (``%nbprod check bounds`` declares it)::

    {"policy": "flag", "min": 0.0, "max": 350.0, "classes": null, "derived": ["max"]}

Regression outputs must lie in [min, max]; classifier outputs must be one of ``classes`` with
probabilities in [0, 1] summing to 1. Scoring, the scoring run's ``output:bounds`` check and the
review queue all judge rows with :func:`violations`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .results import fmt

PROBA_TOLERANCE = 1e-6


def violations(outputs: pd.DataFrame, spec: dict[str, Any]) -> np.ndarray:
    """A boolean mask of the output rows outside the bounds."""
    bad = np.zeros(len(outputs), dtype=bool)
    pred = outputs["prediction"]
    if spec.get("classes") is not None:
        allowed = {str(c) for c in spec["classes"]}
        bad |= ~pred.astype("object").map(str).isin(allowed).to_numpy()
        proba_cols = [c for c in outputs.columns if c.startswith("proba_")]
        if proba_cols:
            p = outputs[proba_cols].to_numpy(dtype="float64")
            bad |= ((p < -PROBA_TOLERANCE) | (p > 1 + PROBA_TOLERANCE) | np.isnan(p)).any(axis=1)
            bad |= np.abs(p.sum(axis=1) - 1.0) > 1e-4
        return bad
    values = pred.to_numpy(dtype="float64")
    bad |= np.isnan(values)
    if spec.get("min") is not None:
        bad |= values < spec["min"]
    if spec.get("max") is not None:
        bad |= values > spec["max"]
    return bad


def describe(spec: dict[str, Any]) -> str:
    """The bounds in words, e.g. ``[0, 350]`` or ``classes {a, b} with valid probabilities``."""
    if spec.get("classes") is not None:
        return "classes {" + ", ".join(map(str, spec["classes"])) + "} with valid probabilities"
    return f"[{fmt(spec['min'])}, {fmt(spec['max'])}]"
