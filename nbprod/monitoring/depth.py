"""Monitoring depth for a scoring run: joint drift and performance estimated without labels.

The statistics live in :mod:`nbprod.monitoring.joint` (joint drift) and
:mod:`nbprod.monitoring.estimation` (CBPE, DLE); each has a reference built at packaging
(:func:`build_reference`), a per-chunk partial, an exact merge and a finalize. This module is the
thin layer between them and a run:

- :func:`build_reference` adds ``multivariate`` and ``estimation`` to the monitoring reference
  (``reference.json``). Artifacts packaged before have neither: the statistics are then absent
  from the run, nothing else changes.
- :class:`DepthPartial` carries the two partials of a batch; :func:`partial` computes it from a
  chunk's conformed inputs and outputs, :meth:`DepthPartial.merge` adds two chunks, and
  :func:`finalize` gives the summary entries. The scoring run (``nbprod.jobs.chunk``) calls
  ``partial`` per chunk, merges the chunks' parts with the rest of their measures, and calls
  ``finalize`` once (``nbprod.jobs.run``).
- :func:`depth_checks` turns them into checks: ``drift:multivariate`` fails when the rows moved
  jointly (its false-alarm rate on unchanged data is at or below 0.1%); ``estimated:performance``
  warns when an estimated metric's whole interval lies beyond its tolerance, never fails.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..core.results import CheckResult
from . import estimation, joint


# -- packaging ---------------------------------------------------------------------------------
def build_reference(train: pd.DataFrame, columns: list[str], outputs: pd.DataFrame | None,
                    y: Any, task: str, classes: list[Any] | None) -> dict[str, Any]:
    """The reference entries of the depth statistics.

    ``train`` holds the training snapshot's raw inputs and ``columns`` the numeric ones the joint
    statistic may use (no id, target or personal-data column); ``outputs`` and ``y`` are the
    model's outputs on the validation snapshot and its labels (None without a validation
    snapshot: performance is then not estimated, as calibrating on the training rows would be
    optimistic). A statistic that cannot be built says why under ``skipped``.
    """
    import numpy as np

    out: dict[str, Any] = {}
    try:
        out["multivariate"] = joint.build(train, columns)
    except (np.linalg.LinAlgError, ValueError) as exc:
        out["multivariate"] = {"method": joint.METHOD, "skipped": f"could not be fitted: {str(exc)[:200]}"}
    method = "cbpe" if task == "classification" else "dle"
    if outputs is None:
        out["estimation"] = {"method": method, "task": task,
                             "skipped": "needs a validation snapshot to calibrate on"}
        return out
    try:
        out["estimation"] = (estimation.build_classifier(outputs, y, list(classes or []))
                             if task == "classification"
                             else estimation.build_regressor(outputs["prediction"], y))
    except (np.linalg.LinAlgError, ValueError) as exc:
        out["estimation"] = {"method": method, "task": task,
                             "skipped": f"could not be fitted: {str(exc)[:200]}"}
    return out


# -- scoring ---------------------------------------------------------------------------------
@dataclass
class DepthPartial:
    """The depth statistics' parts of one batch or chunk (None: not in the reference)."""

    joint: dict[str, Any] | None = None
    estimation: dict[str, Any] | None = None

    def merge(self, other: DepthPartial) -> DepthPartial:
        return DepthPartial(
            joint=joint.merge(self.joint, other.joint) if self.joint and other.joint else self.joint or other.joint,
            estimation=(estimation.merge(self.estimation, other.estimation)
                        if self.estimation and other.estimation else self.estimation or other.estimation))


def _usable(ref: dict[str, Any] | None) -> bool:
    return bool(ref) and not ref.get("skipped")


def partial(reference: dict[str, Any], inputs: pd.DataFrame, outputs: pd.DataFrame) -> DepthPartial:
    """A chunk's part: ``inputs`` are its conformed raw inputs, ``outputs`` the model's outputs
    (prediction, proba_<class>) of the same rows."""
    mv, est = reference.get("multivariate"), reference.get("estimation")
    return DepthPartial(joint=joint.partial(inputs, mv) if _usable(mv) else None,
                        estimation=estimation.partial(outputs, est) if _usable(est) else None)


def finalize(reference: dict[str, Any], part: DepthPartial, *, confidence: float = 0.999,
             min_effect: float = joint.MIN_EFFECT) -> dict[str, Any]:
    """``{"multivariate": ..., "estimated_performance": ...}`` for the summary; an entry is
    None when the artifact's reference does not have the statistic (packaged before it)."""
    mv, est = reference.get("multivariate"), reference.get("estimation")
    out: dict[str, Any] = {"multivariate": None, "estimated_performance": None}
    if mv:
        empty = {"rows": 0, "rows_incomplete": 0, "counts": [], "residual_sq": []}
        out["multivariate"] = joint.finalize(mv, part.joint or empty, confidence=confidence,
                                             min_effect=min_effect).to_dict()
    if est:
        if est.get("skipped"):
            out["estimated_performance"] = {"method": est["method"], "metrics": {},
                                            "reason": f"not estimated: {est['skipped']}"}
        else:
            result = estimation.finalize(est, part.estimation, estimation.tolerances(reference))
            out["estimated_performance"] = result.to_dict()
    return out


def reliability(depth: dict[str, Any], drift: dict[str, Any] | None) -> None:
    """Say on the estimate whether the inputs moved (it then rests on calibration holding under
    the shift, which does not always transfer)."""
    est = depth.get("estimated_performance")
    if not est or not est.get("metrics"):
        return
    moved = []
    if drift and drift.get("dataset", {}).get("drifted"):
        moved.append("dataset drift")
    if (depth.get("multivariate") or {}).get("drifted"):
        moved.append("joint drift")
    est["reliability"] = ("ok" if not moved else
                          f"reduced: the inputs moved ({', '.join(moved)}); the estimate assumes "
                          "the model's errors given its outputs did not change with them")


def depth_checks(depth: dict[str, Any]) -> list[CheckResult]:
    """``drift:multivariate`` and ``estimated:performance``, for the entries present."""
    out = []
    mv = depth.get("multivariate")
    if mv:
        computed = mv["statistic"] is not None
        out.append(CheckResult(
            name="drift:multivariate", kind="drift",
            status="fail" if mv["drifted"] else ("pass" if computed else "skip"),
            message=mv["reason"], value=mv["statistic"], threshold=mv["threshold"],
            details={"method": mv["method"], "columns": mv["columns"], "rows": mv["rows"],
                     "contributions": mv["contributions"]}))
    est = depth.get("estimated_performance")
    if est:
        if not est.get("metrics"):
            out.append(CheckResult(name="estimated:performance", kind="estimate", status="skip",
                                   message=est["reason"]))
        else:
            message = est["reason"]
            if est.get("reliability", "ok") != "ok":
                message += "; estimate less reliable: the inputs moved"
            out.append(CheckResult(
                name="estimated:performance", kind="estimate",
                status="warn" if est["dropped"] else "pass", message=message,
                value=len(est["dropped"]),
                details={"dropped": est["dropped"], "method": est["method"],
                         "assumption": est["assumption"]}))
    return out
