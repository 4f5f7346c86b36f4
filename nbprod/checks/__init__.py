"""Checks that gate packaging and keep watching after it.

Every check returns :class:`~nbprod.core.results.CheckResult` objects (pass / warn / fail / skip,
the measured values, the threshold, a message a person understands). Model checks (``overfit``,
``metric``, ``cv``, ``baseline``) evaluate the captured feature function and model on the
captured snapshots; ``data`` looks at the snapshots themselves; ``bounds`` declares sanity limits
on outputs that scoring enforces later.
"""

from __future__ import annotations

from .bounds import bounds
from .data import data
from .model import baseline, cv, metric, overfit

KINDS = ("overfit", "metric", "cv", "baseline", "data", "bounds")

__all__ = ["KINDS", "baseline", "bounds", "cv", "data", "metric", "overfit"]
