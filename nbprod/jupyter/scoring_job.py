"""The one call every scoring notebook makes: ``nbprod.scoring_job(...)``.

A ``score.ipynb`` that nbprod packages runs, after its ``parameters`` cell::

    import nbprod

    job = nbprod.scoring_job(input_path=input_path, output_path=output_path, ...,
                             name="churn", packaged_at="/models/churn", artifact_id="3f2a...")
    job.show("verdict")

then one cell per report section (``job.show("checks")``, ``job.show("drift")``, ...) and
``job.raise_if_alert(raise_on_alert)``. ``nbprod.scoring_job`` is public and will not move, so
nbprod's modules can be rearranged without touching the notebooks of artifacts in the field.

Forward compatibility: a notebook written by a newer nbprod may pass parameters, or name report
sections, that this nbprod does not know. Unknown parameters are ignored with a warning and
unknown sections show a short note, so the batch is still scored and reported.
"""

from __future__ import annotations

import html
import warnings
from typing import Any

from .._version import __version__
from ..core.tables import Html

# section name -> the view in nbprod.jupyter.report that draws it, in report order
SECTIONS = {
    "verdict": "verdict",
    "checks": "checks_table",
    "drift": "drift_table",
    "drift-plots": "drift_plots",
    "predictions": "predictions",
    "explained": "explained",
    "performance": "performance",
    "history": "history",
    "details": "details",
}


class ScoringJob:
    """A finished scoring run (:class:`~nbprod.jobs.run.ScoringRun`) and its report, section by
    section."""

    def __init__(self, run: Any) -> None:
        self.run = run

    @property
    def status(self) -> str:
        """``ok``, ``warn`` or ``alert``: the worst of the run's checks."""
        return self.run.status

    def summary(self) -> dict[str, Any]:
        """The run as the summary JSON has it."""
        return self.run.summary()

    def show(self, section: str) -> Any:
        """One section of the report (see :data:`SECTIONS`), to display as a cell's output; a
        section this nbprod does not know shows a short note instead of failing the notebook."""
        view = SECTIONS.get(section)
        if view is None:
            known = ", ".join(SECTIONS)
            text = (f"This nbprod ({__version__}) has no report section {section!r} (it knows "
                    f"{known}); a newer nbprod wrote this notebook. Upgrade nbprod to see it.")
            return Html(f"<p><i>{html.escape(text)}</i></p>", text)
        from ..core.tables import literal
        from . import report

        return literal(getattr(report, view)(self.run))

    def raise_if_alert(self, enabled: bool = True) -> None:
        """Fail the notebook run when a monitoring check failed (``raise_on_alert``), after the
        predictions and the report were written."""
        self.run.raise_if_alert(enabled)

    def __repr__(self) -> str:
        return f"<nbprod scoring job: {self.run.artifact.name!r}, status {self.status}>"


def scoring_job(*, input_path: str | None = None, output_path: str | None = None,
                labels_path: str | None = None, summary_path: str | None = None,
                artifact_path: str | None = None, drift_runs: int = 3, log_to_mlflow: bool = True,
                issues_path: str | None = None, max_rejected: float | None = None,
                name: str | None = None, packaged_at: str | None = None,
                artifact_id: str | None = None, engine: str | None = None,
                scheduler: str | None = None, chunk_rows: int | None = None,
                explain_drift: str | float | None = None,
                shadow: str | None = None, ab: str | None = None,
                ab_split: float | None = None, **unknown: Any) -> ScoringJob:
    """Score ``input_path`` with the artifact and return the job, whose :meth:`ScoringJob.show`
    draws the report: the one call every packaged ``score.ipynb`` makes.

    Parameters
    ----------
    input_path, output_path : str
        The batch to score (CSV or Parquet) and where the predictions go.
    labels_path, summary_path, issues_path : str, optional
        Labels for the batch, where the run's summary and its row issues go.
    artifact_path : str, optional
        The artifact (default: where the notebook was packaged, ``packaged_at``).
    drift_runs : int
        How many recent runs a drift alert must persist through.
    log_to_mlflow : bool
        Log the run to MLflow.
    max_rejected : float, optional
        The share of rejected rows above which the run fails.
    name, packaged_at, artifact_id : str, optional
        Written into the notebook at packaging, so that it finds its artifact and starts MLflow
        logging at once.
    engine, scheduler : str, optional
        Where the batch is scored: ``"local"`` (default) or ``"dask"``, and an existing Dask
        scheduler's address (see ``docs/scale.md``).
    chunk_rows : int, optional
        Rows read and scored at a time (default 250,000).
    explain_drift : str or float, optional
        ``auto`` (default: explanation drift and the report's explained rows within a budget
        of 1 s or 10% of the run's time so far, whichever is larger), ``full``, ``off`` or a
        budget in seconds (see ``docs/explain.md``).
    shadow : str, optional
        A challenger artifact (path or ``models:/NAME@ALIAS``) scoring the same rows beside this
        one; the output stays this artifact's, the summary gains ``shadow`` (see
        ``docs/lifecycle.md``).
    ab, ab_split : str and float, optional
        A challenger artifact serving the id-hashed share ``ab_split`` (in (0, 1)) of the rows;
        the output gains ``served_by`` and the summary ``ab``.
    **unknown
        Parameters a newer nbprod wrote: ignored with a warning.

    Returns
    -------
    ScoringJob
        The run, its status and its report.

    Raises
    ------
    NbprodError
        Those of :func:`nbprod.jobs.run.execute`: nothing is written when the batch cannot be
        scored (see ``docs/scheduling.md``).

    Examples
    --------
    >>> job = nbprod.scoring_job(input_path=str(BATCH_CSV), output_path=str(TMP / "out.csv"),
    ...                          artifact_path=str(ARTIFACT), log_to_mlflow=False)
    >>> job.status
    'ok'
    >>> len(pd.read_csv(TMP / "out.csv"))
    70
    """
    if unknown:
        warnings.warn(
            f"nbprod {__version__} does not know the scoring parameter(s) "
            f"{', '.join(sorted(unknown))}: ignored (a newer nbprod wrote this notebook; "
            "upgrade nbprod to use them).", stacklevel=2)
    logger = None
    if log_to_mlflow and name and artifact_id:
        # MLflow starts in a helper process now, in parallel with loading and scoring
        from ..tracking.runs import RunLogger

        logger = RunLogger(name, artifact_id)
    try:
        from ..jobs.run import DEFAULT_MAX_REJECTED, execute

        run = execute(input_path=input_path, output_path=output_path, labels_path=labels_path,
                      summary_path=summary_path, artifact_path=artifact_path,
                      packaged_at=packaged_at, artifact_id=artifact_id, drift_runs=drift_runs,
                      log_to_mlflow=log_to_mlflow, logger=logger, issues_path=issues_path,
                      max_rejected=DEFAULT_MAX_REJECTED if max_rejected is None else max_rejected,
                      engine=engine, scheduler=scheduler, chunk_rows=chunk_rows,
                      explain_drift=explain_drift, shadow=shadow, ab=ab, ab_split=ab_split)
    except BaseException:
        if logger is not None:
            logger.close()
        raise
    return ScoringJob(run)
