"""A scoring run on files: what ``score.ipynb`` and ``nbprod score`` execute.

:func:`execute` locates and verifies the artifact, reads the input, scores it through the one
scoring path, checks the batch (input against the reference, outputs against their bounds),
measures drift and — with labels — performance, decides whether to recommend retraining,
writes the predictions atomically, logs the run to MLflow and writes the summary JSON. The
notebook then displays the run, verdict first.

Input and labels are read with the training snapshot's schema, so text columns stay text: ids
such as ``00042`` come back in the output exactly as they came in. Paths to write are checked
before any work, so a run that fails writes nothing.

Every row is validated (:mod:`nbprod.core.rows`): rejected rows are left out of the predictions,
and every rejection and flag goes to the issues file (``issues_path``; by default
``<output stem>.issues<ext>`` beside the output), written on every scored run, header only when
the batch is clean. The ``input:rows`` check warns on any rejection and fails when the rejected
share exceeds ``max_rejected``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from ..core.artifact import Artifact, load
from ..core.dataio import read_frame
from ..core.files import finite, write_json
from ..core.pii import columns_of
from ..core.results import CheckResult, listing, worst
from ..exceptions import InputError, IntegrityError, MonitoringAlert, NbprodError, NbprodUsageError

_STATUS_OF = {"pass": "ok", "skip": "ok", "warn": "warn", "fail": "alert"}
DEFAULT_MAX_REJECTED = 0.01  # rejected share of the input rows above which input:rows fails
SHOWN_ISSUES = 20  # issues listed in the input:rows check's details (the report shows them)


def locate_artifact(
    artifact_path: str | None, packaged_at: str | None = None, artifact_id: str | None = None
) -> Path:
    """Where the artifact of a scoring notebook is.

    An explicit ``artifact_path`` wins. Otherwise the path the artifact was packaged at, if the
    artifact there is the same one (same ``artifact_id``); otherwise the working directory, when
    it holds that artifact. A moved artifact needs ``-p artifact_path PATH``.
    """
    if artifact_path:
        return Path(artifact_path)
    for candidate in (packaged_at, os.getcwd()):
        if candidate and (Path(candidate) / "nbprod.json").is_file():
            try:
                ident = json.loads((Path(candidate) / "nbprod.json").read_text()).get("artifact_id")
            except (OSError, ValueError):
                continue
            if artifact_id is None or ident == artifact_id:
                return Path(candidate)
    raise IntegrityError(
        f"Cannot find the artifact this notebook belongs to (packaged at {packaged_at}); "
        "it was moved. Pass its location: papermill ... -p artifact_path PATH."
    )


@dataclass
class ScoringRun:
    """A finished scoring run. ``predictions`` holds the output when the batch was scored in
    one chunk or without an output path; otherwise it is None (the predictions are in
    ``output_path``), and ``rows`` counts them."""

    artifact: Artifact
    input_path: str
    output_path: str | None
    predictions: pd.DataFrame | None
    checks: list[CheckResult] = field(default_factory=list)
    drift: dict[str, Any] | None = None
    performance: dict[str, Any] | None = None
    estimated_performance: dict[str, Any] | None = None  # without labels (monitoring.depth)
    retrain: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    tracking: dict[str, Any] | None = None
    timings: dict[str, float] = field(default_factory=dict)
    started: str = ""
    scored: Any = None  # the Scored batch, for plots; not serialised
    labels_path: str | None = None
    issues_path: str | None = None
    issues: Any = None  # the batch's row issues (RowIssues, or an IssueTally of its chunks)
    rows: int | None = None  # rows in the output
    prediction: dict[str, Any] | None = None  # the summary's prediction figures
    engine: dict[str, Any] | None = None  # where and in how many chunks it was scored
    profiles: dict[str, Any] | None = None  # the batch's merged binned profiles (for plots)
    explained: dict[str, Any] | None = None  # the most extreme and flagged rows explained
    shadow: dict[str, Any] | None = None  # a shadow challenger's figures (jobs.challenger)
    ab: dict[str, Any] | None = None  # an A/B run's per-arm figures (jobs.challenger)

    @property
    def row_count(self) -> int:
        """Rows in the output."""
        return self.rows if self.rows is not None else len(self.predictions)

    @property
    def status(self) -> str:
        return _STATUS_OF[worst([c.status for c in self.checks])]

    def summary(self) -> dict[str, Any]:
        """The run as plain, strict-JSON-ready data (non-finite numbers are None)."""
        from ..core.files import finite

        art = self.artifact
        issues = self.issues if self.issues is not None else getattr(self.scored, "issues", None)
        extra = {k: v for k, v in (("shadow", self.shadow), ("ab", self.ab)) if v is not None}
        return finite({
            "status": self.status,
            "rows_in": issues.rows_in if issues is not None else self.row_count,
            "rows": self.row_count,
            "rejected": issues.n_rejected if issues is not None else 0,
            "flagged": issues.n_flagged if issues is not None else 0,
            "issues_path": self.issues_path,
            "started": self.started,
            "nbprod_version": __version__,
            "artifact": {
                "name": art.name,
                "path": str(art.root),
                "artifact_id": art.manifest.get("artifact_id"),
                "digest": art.digest,
                "task": art.task,
                "override": art.manifest.get("override"),
            },
            "input": self.input_path,
            "output": self.output_path,
            "labels": self.labels_path,
            "checks": [c.to_dict() for c in self.checks],
            "drift": self.drift,
            "performance": self.performance,
            "estimated_performance": self.estimated_performance,
            "retrain": self.retrain,
            "prediction": self.prediction if self.prediction is not None else
            _prediction_summary(self.predictions, art),
            "tracking": self.tracking,
            "timings": self.timings,
            "engine": self.engine,
            "explained": self.explained,
            **extra,
        })

    def raise_if_alert(self, enabled: bool = True) -> None:
        """Fail the notebook run when a monitoring check failed (``raise_on_alert``)."""
        if enabled and self.status == "alert":
            failed = [c.name for c in self.checks if c.status == "fail"]
            raise MonitoringAlert(
                f"Monitoring alert: {', '.join(failed)} failed. Predictions were written to "
                f"{self.output_path}; read the report."
            )


RUN_OPTIONS_ENV = "NBPROD_RUN_OPTIONS"  # JSON {engine, scheduler, chunk_rows, progress, shadow,
# ab, ab_split, challenger_pin}: nbprod score -> its kernel


def execute(
    *,
    input_path: str,
    output_path: str | None,
    artifact_path: str | None = None,
    labels_path: str | None = None,
    summary_path: str | None = None,
    packaged_at: str | None = None,
    artifact_id: str | None = None,
    drift_runs: int = 3,
    log_to_mlflow: bool = True,
    logger: Any = None,
    issues_path: str | None = None,
    max_rejected: float = DEFAULT_MAX_REJECTED,
    engine: str | None = None,
    scheduler: str | None = None,
    chunk_rows: int | None = None,
    progress: bool | None = None,
    explain_drift: str | float | None = None,
    shadow: str | None = None,
    ab: str | None = None,
    ab_split: float | None = None,
) -> ScoringRun:
    """Score ``input_path`` into ``output_path`` with the artifact; see module docs.

    The batch streams: it is read and scored ``chunk_rows`` rows at a time (default
    :data:`~nbprod.core.sources.DEFAULT_CHUNK_ROWS`), in this process (``engine="local"``) or on a
    Dask cluster (``engine="dask"``; ``scheduler`` or ``DASK_SCHEDULER_ADDRESS`` names an
    existing one). ``progress`` shows chunk progress on a terminal (default: when stderr is one).
    ``explain_drift``: ``auto`` (default: within a time budget), ``full``, ``off`` or a budget in
    seconds (:func:`nbprod.monitoring.explanations.plan`).

    ``shadow``: a challenger artifact (path or ``models:/NAME@ALIAS``) that scores the same rows
    beside the champion; the output stays the champion's and the summary gains ``shadow``.
    ``ab`` with ``ab_split``: a challenger serving an id-hashed share of the rows; the output
    gains ``served_by`` and the summary ``ab``. See :mod:`nbprod.jobs.challenger`.
    """
    plan = _plan(input_path=input_path, output_path=output_path, artifact_path=artifact_path,
                 labels_path=labels_path, summary_path=summary_path, packaged_at=packaged_at,
                 artifact_id=artifact_id, drift_runs=drift_runs, issues_path=issues_path,
                 max_rejected=max_rejected, engine=engine, scheduler=scheduler,
                 chunk_rows=chunk_rows, progress=progress, shadow=shadow, ab=ab,
                 ab_split=ab_split, explain_drift=explain_drift)
    job = _Job(plan, log_to_mlflow, logger)
    try:
        job.open()
        streamed = _score(job)
        outcome = _judge(job, streamed)
        run = _decide(job, outcome)
        run.explained = _explained(job, streamed.measured, run)
        _log(job, run)
        _publish(job, run)
    finally:
        job.close()
    return run


# -- the steps of a run ---------------------------------------------------------------------
@dataclass
class _Plan:
    """What a run was asked to do, checked before any work."""

    input_path: str
    output_path: str | None
    labels_path: str | None
    summary_path: str | None
    issues_file: Path | None
    root: Path
    source: Any
    drift_runs: int
    max_rejected: float
    engine: str
    scheduler: str | None
    chunk_rows: int
    progress: bool | None
    progress_file: str | None
    outputs: dict[str, Any]
    started: str
    t0: float
    explain_drift: Any = "auto"  # the explanation drift's budget (monitoring.explanations.plan)
    challenger: str | None = None  # the shadow or A/B challenger's artifact (path or models:/)
    mode: str | None = None  # "shadow" | "ab"
    split: float | None = None  # the A/B challenger's share
    pin: tuple[str, str] | None = None  # the challenger copy's registry pin (from nbprod score)
    before_s: float = 0.0  # the run's work done before t0 elsewhere (the lazy face's partitions)


def _plan(*, input_path: str, output_path: str | None, artifact_path: str | None,
          labels_path: str | None, summary_path: str | None, packaged_at: str | None,
          artifact_id: str | None, drift_runs: Any, issues_path: str | None, max_rejected: Any,
          engine: str | None, scheduler: str | None, chunk_rows: Any,
          progress: bool | None, shadow: str | None = None, ab: str | None = None,
          ab_split: Any = None, explain_drift: Any = None) -> _Plan:
    """Check every parameter and path; nothing is read or written yet."""
    from ..core.sources import DEFAULT_CHUNK_ROWS, resolve
    from .engines import check_engine
    from .usage import DRIFT_RUNS, check_outputs, whole_number

    started = datetime.now(UTC).isoformat()
    t0 = time.perf_counter()
    from .engines import is_dask_frame

    if is_dask_frame(input_path):  # a Dask DataFrame, scored where its partitions are
        if engine not in (None, "dask"):
            raise NbprodUsageError(f"A Dask DataFrame is scored with engine='dask'; got "
                                   f"engine={str(engine)[:40]!r}.")
        engine = "dask"
    elif not input_path:
        raise InputError("No input: pass -p input_path FILE (CSV or Parquet).")
    options = json.loads(os.environ.get(RUN_OPTIONS_ENV) or "{}")  # from nbprod score
    engine = check_engine(engine if engine is not None else options.get("engine"))
    scheduler = scheduler if scheduler is not None else options.get("scheduler")
    chunk_rows = chunk_rows if chunk_rows is not None else options.get("chunk_rows")
    chunk_rows = DEFAULT_CHUNK_ROWS if chunk_rows is None else whole_number(
        chunk_rows, "chunk_rows", minimum=1)
    challenger, mode, split, pin = _challenger_options(options, shadow, ab, ab_split, engine)
    from ..monitoring.explanations import check_mode

    explain_drift = check_mode(explain_drift if explain_drift is not None
                               else options.get("explain_drift"))
    if output_path and not is_directory_output(output_path):
        from ..core.dataio import file_format

        file_format(output_path, "output_path")  # a bad extension fails before any work
    drift_runs = whole_number(drift_runs, "drift_runs", minimum=DRIFT_RUNS[0],
                              maximum=DRIFT_RUNS[1])
    max_rejected = check_max_rejected(max_rejected)
    issues_file = resolve_issues_path(output_path, issues_path)
    root = locate_artifact(artifact_path, packaged_at, artifact_id)
    frame = is_dask_frame(input_path)
    source = input_path if frame else resolve(input_path, "input")
    if frame and not output_path:
        raise NbprodUsageError("Scoring a Dask DataFrame needs output_path (a Parquet file, or "
                               "a directory of parts ending with '/'): its predictions are not "
                               "gathered into this process.")
    # what this run writes (checked in this order; published with the predictions last)
    outputs = {"output_path": output_path, "issues_path": issues_file, "summary_path": summary_path}
    check_outputs(outputs, inputs={"input_path": None if frame else input_path,
                                   "labels_path": labels_path}, artifact=root)
    shown = (f"<Dask DataFrame, {input_path.npartitions} partitions>" if frame
             else str(input_path))
    return _Plan(input_path=shown, output_path=str(output_path) if output_path else None,
                 labels_path=str(labels_path) if labels_path else None, summary_path=summary_path,
                 issues_file=issues_file, root=root, source=source, drift_runs=drift_runs,
                 max_rejected=max_rejected, engine=engine, scheduler=scheduler,
                 chunk_rows=chunk_rows, progress=progress if progress is not None else
                 options.get("progress_shown"), progress_file=options.get("progress"),
                 outputs=outputs, started=started, t0=t0, explain_drift=explain_drift,
                 challenger=challenger, mode=mode, split=split, pin=pin)


def _challenger_options(options: dict[str, Any], shadow: Any, ab: Any, ab_split: Any,
                        engine: str) -> tuple[str | None, str | None, float | None, Any]:
    """The challenger of a shadow or A/B run (arguments first, then nbprod score's options)."""
    from .challenger import check_options

    given = shadow is not None or ab is not None  # a caller's own challenger has no parent's pin
    challenger, mode, split = check_options(
        shadow if shadow is not None else options.get("shadow"),
        ab if ab is not None else options.get("ab"),
        ab_split if ab_split is not None else options.get("ab_split"), engine)
    pin = options.get("challenger_pin") if challenger and not given else None
    return challenger, mode, split, tuple(pin) if pin else None


def is_directory_output(path: str | os.PathLike[str] | None) -> bool:
    """An output path ending with a separator (``preds/``) is a directory of Parquet parts."""
    return bool(path) and str(path).endswith(("/", os.sep))


class _Job:
    """The resources of a run: the artifact, the MLflow logger, the staged outputs."""

    def __init__(self, plan: _Plan, log_to_mlflow: bool, logger: Any) -> None:
        self.plan = plan
        self.log_to_mlflow = log_to_mlflow
        self.logger = logger if log_to_mlflow else None
        self.staged: Any = None
        self.art: Any = None
        self.head: dict[str, Any] = {}
        self.timings: dict[str, float] = {}
        self.tracking_error: str | None = None
        self.challenger: Any = None  # the shadow or A/B challenger's artifact
        self.side: Any = None  # its jobs.challenger.Challenger, fed chunk by chunk
        self.work_dir: Path | None = None  # a given scratch directory (judge_measures)

    def open(self) -> None:
        from ..core import manifest as mf
        from ..core.staging import StagedOutputs

        self.head = mf.read(self.plan.root)
        if self.log_to_mlflow and self.logger is None:  # MLflow's start-up overlaps scoring
            from ..tracking.runs import RunLogger

            self.logger = RunLogger(self.head["name"], self.head["artifact_id"])
        # written into staging, published together at the end (by `nbprod score` if it runs us)
        self.staged = StagedOutputs(self.plan.outputs, inherit=True)
        self.art = load(self.plan.root)
        self.challenger = _load_challenger(self.plan, self.art) if self.plan.challenger else None
        self.timings["load_s"] = time.perf_counter() - self.plan.t0

    def work(self) -> Path:
        """A scratch directory beside the outputs (removed with the staging)."""
        if self.work_dir is not None:
            return self.work_dir
        if self.staged is not None and self.staged._dirs:
            return self.staged.work_dir()
        import tempfile

        if not hasattr(self, "_tmp"):
            self._tmp = tempfile.TemporaryDirectory(prefix="nbprod-run-")
        return Path(self._tmp.name)

    def close(self) -> None:
        if self.staged is not None:
            self.staged.close()
        if getattr(self, "_tmp", None) is not None:
            self._tmp.cleanup()
        if self.logger:
            self.logger.close()


def _load_challenger(plan: _Plan, champion: Artifact) -> Artifact:
    """The challenger, verified exactly as the champion (the same trusted keys) and comparable
    with it; an A/B challenger needs the champion's id column."""
    from .challenger import AB, same_kind

    flag = "--shadow" if plan.mode != AB else "--ab"
    if plan.mode == AB and not champion.id_column:
        raise NbprodUsageError(
            f"{flag} assigns rows to arms by their id, and artifact {champion.name!r} has no id "
            "column. Package the champion with an id (snapshot(..., id=COLUMN)), or use "
            "--shadow, which needs none.")
    if str(plan.challenger).startswith("models:/") and plan.pin is None:
        from ..tracking.resolve import load as resolved

        challenger = resolved(plan.challenger)
    else:
        challenger = load(plan.challenger, pin=plan.pin)
    same_kind(champion, challenger, flag)
    if plan.mode == AB and challenger.id_column != champion.id_column:
        raise NbprodUsageError(
            f"{flag} {challenger.name!r} has id column {challenger.id_column!r}, the champion "
            f"{champion.id_column!r}: the arms' rows are matched by the champion's id column.")
    return challenger


def _score(job: _Job) -> Any:
    """The batch through the engine: outputs staged, measures merged."""
    from ..core.progress import Reporter
    from ..core.sources import estimated_rows
    from .engines import Target, run_dask, run_local

    plan, art = job.plan, job.art
    labels = None
    if plan.labels_path:
        from ..core.sources import canonical
        from ..monitoring.labelled import LabelKeys

        frame = read_frame(plan.labels_path, art.reading_schema, what="labels")
        job.labels = canonical(frame, art.reading_schema, art.id_column)
        job.labels.attrs["source"] = str(plan.labels_path)
        labels = LabelKeys(art, job.labels)
    else:
        job.labels = None
    output = job.staged.path("output_path") if plan.output_path else None
    target = Target(output=output, parts=is_directory_output(plan.output_path),
                    work=job.work(), hold=output is None)
    total = estimated_rows(plan.source) if plan.engine == "local" or hasattr(
        plan.source, "files") else None
    with Reporter(total, desc=f"nbprod score {art.name}", enabled=plan.progress,
                  path=plan.progress_file) as reporter:
        if plan.engine == "dask":
            from ..core.signing import ENV as KEYS_ENV

            keys = [k for k in os.environ.get(KEYS_ENV, "").split(os.pathsep) if k.strip()]
            return run_dask(plan.root, keys, plan.source, target, chunk_rows=plan.chunk_rows,
                            scheduler=plan.scheduler, labels=labels, progress=reporter.update)
        if job.challenger is not None:
            from .challenger import Challenger

            job.side = Challenger(art, job.challenger, plan.mode, split=plan.split,
                                  labels=job.labels, work=job.work())
        return run_local(art, plan.source, target, chunk_rows=plan.chunk_rows, labels=labels,
                         progress=reporter.update, side=job.side.chunk if job.side else None)


@dataclass
class _Outcome:
    streamed: Any
    issues: Any
    checks: list[CheckResult]
    drift: dict[str, Any]
    performance: dict[str, Any] | None
    prediction: dict[str, Any]
    estimated_performance: dict[str, Any] | None = None


def _judge(job: _Job, streamed: Any) -> _Outcome:
    """What only the whole batch decides, then every check: input, rows, bounds, drift and,
    with labels, performance. The issues file is assembled here."""
    from ..monitoring import input_checks as ic
    from ..monitoring.batch import drift_checks, drift_from

    t = time.perf_counter()
    plan, art, m = job.plan, job.art, streamed.measured
    _whole_batch_errors(art, m)
    issues = _repeats(job, m)
    if issues.n_rejected == issues.rows_in:
        raise issues.all_rejected_error()
    _bounds_error(art, m)
    if plan.issues_file:
        _write_issues(streamed.issue_parts, job.repeat_table, art.id_column,
                      job.staged.path("issues_path"))
    converted = not any(p["rule"] == "type" for p in issues.counts())
    checks = [
        CheckResult(
            name="input:schema", kind="input", status="pass",
            message=f"{m.rows_in:,} rows; all {len(art.input_columns)} input columns present"
            + (" and of the trained types." if converted else
               "; some values do not convert to the trained types (see input:rows)."),
            value=m.rows_in,
        ),
        rows_check(issues, plan.max_rejected, plan.issues_file,
                   hide_ids=art.id_column in columns_of(art)),
    ]
    extra = [c for c in m.columns
             if c not in art.input_columns and c not in (art.id_column, art.target)]
    if extra:
        checks.append(CheckResult(
            name="input:extra-columns", kind="input", status="pass",
            message=f"{len(extra)} column(s) the model does not use were ignored: "
            + listing(extra, 10),
            value=len(extra), details={"columns": extra}))
    profile = art.train_profile
    checks += [ic.null_rates_check(m.inputs, profile), ic.unseen_check(m.inputs, profile),
               ic.out_of_range_check(m.inputs, profile),
               ic.output_bounds_check(m.bounds, art.manifest.get("bounds"))]
    drift = drift_from(art, m.profiles)
    from ..monitoring.explanations import explanation_drift  # issue 15's hook: a figure only

    sampled = _Sample(m.explain) if m.explain is not None else None  # see jobs.chunk
    drift["explanations"] = explanation_drift(art, sampled, plan.explain_drift,
                                              elapsed_s=_run_seconds(plan))
    checks += drift_checks(drift)
    depth = _depth(art, m.depth, drift, checks)
    performance = None
    if job.labels is not None:
        from ..monitoring.performance import evaluate_performance

        labelled = _Labelled(m.labelled if m.labelled is not None else pd.DataFrame(),
                             m.positions, m.rows_in)
        performance, perf_checks = evaluate_performance(art, labelled, job.labels,
                                                        scored_rows=m.scored)
        checks += perf_checks
    prediction = _prediction_figures(art, m)
    job.timings["monitor_s"] = m.timings.get("monitor_s", 0.0) + time.perf_counter() - t
    return _Outcome(streamed, issues, checks, drift, performance, prediction,
                    depth["estimated_performance"])


def _explained(job: _Job, m: Any, run: ScoringRun) -> dict[str, Any] | None:
    """The most extreme and the flagged rows, explained once within the explanation budget
    (:mod:`nbprod.monitoring.notable`); the report's table and the summary's ``explained``."""
    from ..monitoring.notable import explain_notable

    t = time.perf_counter()
    explained = explain_notable(job.art, m.notable, job.plan.explain_drift,
                                show_ids=job.art.id_column not in columns_of(job.art),
                                elapsed_s=_run_seconds(job.plan))
    run.timings["monitor_s"] = round(run.timings.get("monitor_s", 0.0) + time.perf_counter() - t, 4)
    return explained


def _run_seconds(plan: _Plan) -> float:
    """The run's own time so far, on which the ``auto`` explanation budget scales: the wall time
    since it started, plus any work done for it before (the lazy face's partitions)."""
    return time.perf_counter() - plan.t0 + plan.before_s


@dataclass
class _Sample:
    """The explanation drift's sample of the batch's scored inputs, as explanation_drift reads a
    Scored batch."""

    inputs: pd.DataFrame


@dataclass
class _Labelled:
    """The labelled rows' outputs of a batch, as evaluate_performance reads a Scored batch."""

    all_outputs: pd.DataFrame
    positions: Any
    rows_in: int


def _whole_batch_errors(art: Artifact, m: Any) -> None:
    """The errors a batch scored in one piece raises at once, judged on the merged chunks."""
    from ..core.schema import nothing_converts
    from ..core.scoring import MAX_MODEL_ERROR_ROWS, batch_refused

    for spec in art.schema.columns:
        lost = m.lost.get(spec.name)
        if lost and not lost["converted"]:
            value = lost["value"]
            shown = value if spec.pii or value is None else repr(value)
            raise nothing_converts(spec, lost["count"], shown, lost["row"])
    by_rules = m.issues.n_rejected - m.model_errors
    if by_rules == m.rows_in:
        return  # every row rejected: the caller's all-rejected error names the rule
    if m.model_errors > MAX_MODEL_ERROR_ROWS:
        raise batch_refused(m.failure or "the model raised", m.rows_in, isolated=m.model_errors)
    kept = m.rows_in - by_rules
    nonfinite = (m.failure or "").startswith("the model returned a non-finite")
    if m.model_errors == kept and kept and not nonfinite:
        raise batch_refused(m.failure or "the model raised", kept)


def _repeats(job: _Job, m: Any) -> Any:
    """The batch's issues with the ids repeated across its chunks."""
    from ..core import duplicates
    from ..core.rows import duplicate_issues

    job.repeat_table = None
    art = job.art
    if not art.id_column or not m.spilled:
        return m.issues
    offsets, at = [], 0
    for s in m.spilled:
        offsets.append(at)
        at += s.rows
    found = duplicates.find(job.work(), m.spilled, offsets)
    if not len(found.rows):
        return m.issues
    hidden = art.id_column in art.scorer.hidden
    job.repeat_table = duplicate_issues(found.rows, found.first, found.ids, art.id_column, hidden)
    return m.issues.with_repeats(job.repeat_table)


def _bounds_error(art: Artifact, m: Any) -> None:
    """The bounds' ``fail`` policy, on the whole batch."""
    from ..exceptions import OutputBoundsError

    spec = art.manifest.get("bounds")
    if spec and spec["policy"] == "fail" and m.bounds["bad"]:
        what = "ids" if m.bounds["by_id"] else "rows"
        raise OutputBoundsError(
            f"{m.bounds['bad']} prediction(s) break the output bounds declared at packaging "
            f"(policy fail), {what} {m.bounds['first'][:10]}; nothing was written.")


def _write_issues(parts: list[tuple[Path, int]], repeats: Any, id_column: str | None,
                  dest: Path) -> None:
    """The issues file: the chunks' issues in order, the repeated ids' among them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ..core.rows import RowIssues
    from ..core.sinks import FrameWriter

    pending = repeats
    as_ints = {pa.int64(): pd.Int64Dtype()}.get
    with FrameWriter(dest) as writer:
        for path, shift in parts:
            if not path.exists():
                continue
            source = pq.ParquetFile(path)
            for g in range(source.metadata.num_row_groups):
                frame = source.read_row_group(g).to_pandas(types_mapper=as_ints)
                if shift:
                    frame["row"] = frame["row"] + shift
                if pending is not None and len(pending):
                    last = int(frame["row"].iloc[-1])
                    now = pending[pending["row"] <= last]
                    pending = pending[pending["row"] > last]
                    if len(now):
                        frame = _interleave(frame, now)
                writer.write(frame)
            source.close()
        if pending is not None and len(pending):
            writer.write(pending)
        if writer.columns is None:  # a clean batch: the header alone
            writer.write(RowIssues.empty(0, id_column).table())


def _interleave(frame: pd.DataFrame, repeats: pd.DataFrame) -> pd.DataFrame:
    """Issues of one part and the repeated ids among its rows: by row, a row's id issue
    first (as validation orders them)."""
    both = pd.concat([repeats.astype({c: frame[c].dtype for c in ("row",)}), frame],
                     ignore_index=True)
    order = np.argsort(both["row"].to_numpy(), kind="stable")
    return both.iloc[order].reset_index(drop=True)


def _prediction_figures(art: Artifact, m: Any) -> dict[str, Any]:
    """The summary's ``prediction``: class counts, or the predictions' describe()."""
    if art.task == "classification":
        counts = m.prediction["class_counts"]
        return {"class_counts": {k: counts[k] for k in sorted(counts, key=lambda k: (-counts[k], k))}}
    from ..core.quantiles import describe, spill

    runs = [Path(p) for p in m.prediction["runs"]]
    if m.prediction.get("values") is not None and len(m.prediction["values"]):
        import tempfile

        extra = Path(tempfile.mkdtemp(prefix="nbprod-pred-")) / "held.npy"
        spill(extra, m.prediction["values"])
        runs.append(extra)
    return {k: float(v) for k, v in describe(runs, m.prediction["moments"]).items()}


def _decide(job: _Job, outcome: _Outcome) -> ScoringRun:
    """History and the retrain decision; the run as it will be reported."""
    from ..monitoring.batch import retrain_decision

    plan, art, streamed = job.plan, job.art, outcome.streamed
    history: list[dict[str, Any]] = []
    if job.logger:
        try:
            history = job.logger.previous()
        except NbprodError as exc:  # an unreachable store must not cost the predictions
            job.tracking_error = str(exc)
            job.logger.close()
            job.logger = None
    joint = bool((outcome.drift.get("multivariate") or {}).get("drifted"))
    retrain = retrain_decision(outcome.checks, outcome.drift["dataset"]["drifted"] or joint,
                               [h["dataset_drifted"] for h in history], plan.drift_runs)
    if retrain["recommended"]:
        retrain["command"] = retrain_command(art)
    m = streamed.measured
    single = streamed.scored
    predictions = streamed.held
    if predictions is None and single is not None:
        predictions = single.output
    timings = {"load_s": job.timings.get("load_s", 0.0), "read_s": m.timings.get("read_s", 0.0),
               "score_s": m.timings.get("score_s", 0.0),
               "monitor_s": job.timings.get("monitor_s", 0.0),
               "write_s": m.timings.get("write_s", 0.0)}
    return ScoringRun(
        artifact=art, input_path=plan.input_path, output_path=plan.output_path,
        predictions=predictions, checks=outcome.checks, drift=outcome.drift,
        performance=outcome.performance,
        estimated_performance=outcome.estimated_performance, retrain=retrain, history=history,
        timings={k: round(v, 4) for k, v in timings.items()}, started=plan.started,
        scored=single, labels_path=plan.labels_path,
        issues_path=str(plan.issues_file) if plan.issues_file else None,
        issues=outcome.issues, rows=streamed.output_rows, prediction=outcome.prediction,
        engine=streamed.engine, profiles=m.profiles,
        **_challenger_summary(job, m, outcome))


def _challenger_summary(job: _Job, m: Any, outcome: _Outcome) -> dict[str, Any]:
    """The run's ``shadow`` or ``ab`` (nothing without a challenger)."""
    if job.side is None:
        return {}
    return {job.plan.mode: job.side.summary(m.scored, outcome.prediction, outcome.performance)}


def _log(job: _Job, run: ScoringRun) -> None:
    """The run into MLflow; a store that fails costs a warning, never the predictions."""
    if job.logger:
        art = job.art
        tags = {"nbprod.kind": "score", "nbprod.name": art.name,
                "nbprod.artifact_id": job.head["artifact_id"], "nbprod.digest": art.digest,
                "nbprod.status": run.status}
        for mode in ("shadow", "ab"):
            entry = getattr(run, mode)
            if entry is not None:
                head = entry["challenger_artifact"]
                tags.update({"nbprod.challenger.mode": mode, "nbprod.challenger.name": head["name"],
                             "nbprod.challenger.artifact_id": str(head["artifact_id"]),
                             "nbprod.challenger.digest": head["digest"]})
        try:
            run.tracking = job.logger.log(run.summary(), tags)
        except NbprodError as exc:  # predictions are written; say what was not logged
            job.tracking_error = str(exc)
    if job.tracking_error:
        run.tracking = {"error": job.tracking_error}
        run.checks.append(CheckResult(name="tracking", kind="tracking", status="warn",
                                      message=job.tracking_error))


def _publish(job: _Job, run: ScoringRun) -> None:
    """The summary, then every staged output into place (the predictions last)."""
    run.timings["total_s"] = round(time.perf_counter() - job.plan.t0, 4)
    if job.plan.summary_path:
        write_json(run.summary(), job.staged.path("summary_path"))
    job.staged.publish(["summary_path", "issues_path", "output_path"])


def _depth(art: Artifact, part: Any, drift: dict[str, Any],
           checks: list[CheckResult]) -> dict[str, Any]:
    """Joint drift (into ``drift["multivariate"]``) and performance estimated without labels,
    from the chunks' merged partials, with their checks (:mod:`nbprod.monitoring.depth`;
    absent for artifacts packaged before)."""
    from ..monitoring import depth as dp
    from ..monitoring.drift import DriftConfig

    cfg = DriftConfig()
    result = dp.finalize(art.reference or {}, part or dp.DepthPartial(),
                         confidence=cfg.confidence, min_effect=cfg.joint_min_effect)
    dp.reliability(result, drift)
    if result["multivariate"] is not None:
        drift["multivariate"] = result["multivariate"]
    checks += dp.depth_checks(result)
    return result


def retrain_command(art: Artifact) -> str:
    """The command that retrains this artifact from its stored training notebook."""
    training = art.manifest.get("training")
    new = art.root.with_name(art.root.name + "-next")
    if not training:
        return ("this artifact carries no training notebook: retrain in the notebook, then "
                "`%nbprod package` a new artifact")
    params = [p for p in training.get("parameters", [])
              if p not in ("artifact_path", "feedback_path") and ("data" in p or "path" in p or "train" in p)]
    data = params[0] if params else "NAME"
    return f"nbprod retrain {art.root} --param {data}=NEW_LABELLED_DATA -o {new} --register"


def check_max_rejected(value: Any) -> float:
    """``max_rejected`` as a float in [0, 1], or a usage error naming it."""
    try:
        share = float(value)
    except (TypeError, ValueError):
        share = float("nan")
    if isinstance(value, bool) or not 0.0 <= share <= 1.0:
        raise NbprodUsageError(
            f"max_rejected must be a share of the input rows in [0, 1], e.g. 0.01 for 1%. "
            f"Got {str(value)[:40]!r}.")
    return share


def resolve_issues_path(output_path: str | None, issues_path: str | None) -> Path | None:
    """Where the issues file goes: ``issues_path``, else beside the output as
    ``<output stem>.issues<ext>``; None when there is neither (nothing is written). Where it
    may go is :func:`nbprod.jobs.usage.check_outputs`'s rule, as for every output."""
    from ..core.dataio import file_format
    from ..core.rows import default_issues_path

    if issues_path:
        file_format(issues_path, "issues_path")
        return Path(issues_path)
    if output_path:
        return default_issues_path(output_path)
    return None


def rows_check(issues, max_rejected: float, issues_path: Path | None, *,
               hide_ids: bool = False) -> CheckResult:
    """``input:rows``: pass when no row was rejected, warn on any rejection, fail above
    ``max_rejected``; flagged rows are counted in the message."""
    n, rejected, flagged = issues.rows_in, issues.n_rejected, issues.n_flagged
    share = rejected / n if n else 0.0
    notes = []
    if flagged:
        notes.append(f"{flagged:,} flagged and scored ({issues.describe('flagged')})")
    if (rejected or flagged) and issues_path:
        notes.append(f"issues in {issues_path}")
    tail = ("; " + "; ".join(notes)) if notes else ""
    if not rejected:
        status, message = "pass", f"all {n:,} rows scored{tail}"
    else:
        over = share > max_rejected
        status = "fail" if over else "warn"
        message = (f"{rejected:,} of {n:,} rows rejected, not scored ({share:.1%}"
                   + (f", above max_rejected {max_rejected:.1%}" if over else "")
                   + f"): {issues.describe('rejected')}{tail}")
    first = issues.table().head(SHOWN_ISSUES)
    if hide_ids:  # a personal id stays in the caller's own files, never in the summary or report
        from ..core.rows import issue_id_column

        first = first.drop(columns=[issue_id_column(issues.id_column)], errors="ignore")
    details = {**issues.summary(), "share": share, "issues_path": str(issues_path) if issues_path else None,
               "first": finite(first.to_dict("records"))}
    return CheckResult(name="input:rows", kind="input", status=status, message=message,
                       value=rejected, threshold=max_rejected, details=details)


def batch_checks(art: Artifact, scored) -> list[CheckResult]:
    """The checks every scoring run makes: input against the reference, outputs in bounds.

    The input checks see every input row, rejected ones included (values that did not
    convert as nulls): they describe the batch as it came."""
    from ..monitoring import input_checks as ic

    profile = art.snapshot("train")["profile"]
    inputs = scored.all_inputs if getattr(scored, "all_inputs", None) is not None else scored.inputs
    return [
        ic.null_rates(inputs, profile),
        ic.unseen_categories(inputs, profile),
        ic.out_of_range(inputs, profile),
        ic.output_bounds(scored.all_outputs, scored.out_of_bounds, art.manifest.get("bounds"),
                         art.id_column, hide_ids=art.id_column in columns_of(art)),
    ]


def _prediction_summary(preds: pd.DataFrame, art: Artifact) -> dict[str, Any]:
    pred = preds["prediction"]
    if art.task == "classification":
        counts = pred.astype("object").map(str).value_counts()
        return {"class_counts": {str(k): int(v) for k, v in counts.items()}}
    desc = pred.astype("float64").describe()
    return {k: float(desc[k]) for k in ("mean", "std", "min", "25%", "50%", "75%", "max")}


def judge_measures(art: Artifact, measured: Any, *, work: Path, input_path: str,
                   engine: dict[str, Any], labels: pd.DataFrame | None = None,
                   labels_path: str | None = None, max_rejected: float = DEFAULT_MAX_REJECTED,
                   drift_runs: int = 3) -> ScoringRun:
    """The run of a batch whose chunks were scored elsewhere (:mod:`nbprod.jobs.lazy`): the
    chunks' merged :class:`~nbprod.jobs.chunk.Measured` judged as :func:`execute` judges it
    (repeated ids, every check, drift, performance on ``labels``, the retrain decision), with
    no output, no issues file and no MLflow. ``work`` holds the chunks' spills. The run's time
    on which the ``auto`` explanation budget scales counts the chunks' own scoring time."""
    from .engines import Streamed

    plan = _Plan(input_path=input_path, output_path=None, labels_path=labels_path,
                 summary_path=None, issues_file=None, root=art.root, source=None,
                 drift_runs=drift_runs, max_rejected=check_max_rejected(max_rejected),
                 engine="dask", scheduler=None, chunk_rows=0, progress=False,
                 progress_file=None, outputs={}, started=datetime.now(UTC).isoformat(),
                 t0=time.perf_counter(), before_s=sum((getattr(measured, "timings", None)
                                                       or {}).values()))
    job = _Job(plan, log_to_mlflow=False, logger=None)
    job.art, job.labels, job.work_dir = art, labels, Path(work)
    try:
        streamed = Streamed(measured, [], measured.written, None, None, engine)
        run = _decide(job, _judge(job, streamed))
        run.explained = _explained(job, measured, run)
        return run
    finally:
        job.close()
