"""Compatibility module: ``nbprod.feedback.apply`` as training notebooks written before the
layered layout call it (artifacts carry such notebooks, and ``nbprod retrain`` runs them).

Reviewers' feedback lives in :mod:`nbprod.lifecycle.feedback`; new notebooks call
``nbprod.apply_feedback``. ``docs/artifact-format.md``
(compatibility) lists the compatibility modules and how long they stay.
"""

from __future__ import annotations

from .lifecycle.feedback import COLUMNS, apply, read

__all__ = ["COLUMNS", "apply", "read"]
