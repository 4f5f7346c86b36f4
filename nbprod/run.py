"""Compatibility module: the scoring run as notebooks packaged before the layered layout call it.

Their ``score.ipynb`` runs ``import nbprod.run``, ``run = nbprod.run.execute(...)`` and
``run.raise_if_alert(...)``. The scoring run lives in :mod:`nbprod.jobs.run`; notebooks packaged
since call ``nbprod.scoring_job``. ``docs/artifact-format.md``
(compatibility) lists the compatibility modules and how long they stay.
"""

from __future__ import annotations

from .exceptions import MonitoringAlert
from .jobs.run import ScoringRun, execute, locate_artifact

__all__ = ["MonitoringAlert", "ScoringRun", "execute", "locate_artifact"]
