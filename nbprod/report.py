"""Compatibility module: the report views as scoring notebooks packaged before the layered
layout call them.

Their ``score.ipynb`` runs ``import nbprod.report as report`` and ``report.verdict(run)``,
``report.checks_table(run)``, ``report.drift_table(run)``, ``report.drift_plots(run)``,
``report.predictions(run)``, ``report.performance(run)``, ``report.history(run)`` and
``report.details(run)``. The views live in :mod:`nbprod.jupyter.report`; notebooks packaged
since call ``nbprod.scoring_job`` and ``job.show(section)``. ``docs/artifact-format.md``
(compatibility) lists the compatibility modules and how long they stay.
"""

from __future__ import annotations

from .jupyter.report import (
    checks_table,
    details,
    drift_plots,
    drift_table,
    history,
    performance,
    predictions,
    verdict,
)

__all__ = ["checks_table", "details", "drift_plots", "drift_table", "history", "performance",
           "predictions", "verdict"]
