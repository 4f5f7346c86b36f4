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

import pandas as pd

from .._version import __version__
from ..core.artifact import Artifact, load
from ..core.dataio import read_frame, write_frame
from ..core.files import finite, write_json
from ..core.pii import columns_of
from ..core.results import CheckResult, worst
from ..core.schema import Schema
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
    artifact: Artifact
    input_path: str
    output_path: str | None
    predictions: pd.DataFrame
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

    @property
    def status(self) -> str:
        return _STATUS_OF[worst([c.status for c in self.checks])]

    def summary(self) -> dict[str, Any]:
        """The run as plain, strict-JSON-ready data (non-finite numbers are None)."""
        from ..core.files import finite

        art = self.artifact
        issues = getattr(self.scored, "issues", None)
        return finite({
            "status": self.status,
            "rows_in": issues.rows_in if issues is not None else len(self.predictions),
            "rows": len(self.predictions),
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
            "prediction": _prediction_summary(self.predictions, art),
            "tracking": self.tracking,
            "timings": self.timings,
        })

    def raise_if_alert(self, enabled: bool = True) -> None:
        """Fail the notebook run when a monitoring check failed (``raise_on_alert``)."""
        if enabled and self.status == "alert":
            failed = [c.name for c in self.checks if c.status == "fail"]
            raise MonitoringAlert(
                f"Monitoring alert: {', '.join(failed)} failed. Predictions were written to "
                f"{self.output_path}; read the report."
            )


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
) -> ScoringRun:
    """Score ``input_path`` into ``output_path`` with the artifact; see module docs."""
    from ..monitoring.batch import drift_checks, measure_drift, retrain_decision
    from ..monitoring.performance import evaluate_performance

    started = datetime.now(UTC).isoformat()
    t0 = time.perf_counter()
    if not input_path:
        raise InputError("No input: pass -p input_path FILE (CSV or Parquet).")
    if output_path:
        from ..core.dataio import file_format

        file_format(output_path, "output_path")  # a bad extension fails before any work
    from .usage import DRIFT_RUNS, check_outputs, whole_number

    drift_runs = whole_number(drift_runs, "drift_runs", minimum=DRIFT_RUNS[0],
                              maximum=DRIFT_RUNS[1])
    max_rejected = check_max_rejected(max_rejected)
    issues_file = resolve_issues_path(output_path, issues_path)
    root = locate_artifact(artifact_path, packaged_at, artifact_id)
    # what this run writes (checked in this order; published with the predictions last)
    outputs = {"output_path": output_path, "issues_path": issues_file, "summary_path": summary_path}
    check_outputs(outputs, inputs={"input_path": input_path, "labels_path": labels_path},
                  artifact=root)
    from ..core import manifest as mf
    from ..core.staging import StagedOutputs

    head = mf.read(root)
    staged = None
    if log_to_mlflow and logger is None:  # start now: MLflow's start-up overlaps with scoring
        from ..tracking.runs import RunLogger

        logger = RunLogger(head["name"], head["artifact_id"])
    elif not log_to_mlflow:
        logger = None
    try:
        # written into staging, published together at the end (by `nbprod score` if it runs us)
        staged = StagedOutputs(outputs, inherit=True)
        art = load(root)
        t1 = time.perf_counter()
        reading = Schema.from_list(art.snapshot("train")["schema"])  # with id and target
        df = read_frame(input_path, reading, what="input")
        labels = read_frame(labels_path, reading, what="labels") if labels_path else None
        t2 = time.perf_counter()
        scored = art.scorer.score_detailed(df)
        t3 = time.perf_counter()
        converted = not any(p["rule"] == "type" for p in scored.issues.counts())
        checks = [
            CheckResult(
                name="input:schema", kind="input", status="pass",
                message=f"{len(df):,} rows; all {len(art.input_columns)} input columns present"
                + (" and of the trained types." if converted else
                   "; some values do not convert to the trained types (see input:rows)."),
                value=len(df),
            ),
            rows_check(scored.issues, max_rejected, issues_file,
                       hide_ids=art.id_column in columns_of(art)),
        ]
        extra = [c for c in df.columns
                 if c not in art.input_columns and c not in (art.id_column, art.target)]
        if extra:
            checks.append(CheckResult(
                name="input:extra-columns", kind="input", status="pass",
                message=f"{len(extra)} column(s) the model does not use were ignored: "
                + ", ".join(extra[:10]),
                value=len(extra), details={"columns": extra}))
        checks += batch_checks(art, scored)
        drift = measure_drift(art, scored)
        from ..monitoring.explanations import explanation_drift  # issue 15's hook: a figure only

        drift["explanations"] = explanation_drift(art, scored)
        checks += drift_checks(drift)
        depth = _depth(art, scored, drift, checks)
        performance = None
        if labels is not None:
            performance, perf_checks = evaluate_performance(art, scored, labels)
            checks += perf_checks
        t4 = time.perf_counter()
        history: list[dict[str, Any]] = []
        tracking_error = None
        if logger:
            try:
                history = logger.previous()
            except NbprodError as exc:  # an unreachable store must not cost the predictions
                tracking_error = str(exc)
                logger.close()
                logger = None
        retrain = retrain_decision(
            checks, drift["dataset"]["drifted"] or bool((drift.get("multivariate") or {}).get("drifted")),
            [h["dataset_drifted"] for h in history], drift_runs
        )
        if retrain["recommended"]:
            retrain["command"] = retrain_command(art)
        if output_path:
            write_frame(scored.output, staged.path("output_path"))
        if issues_file:
            write_frame(scored.issues.table(), staged.path("issues_path"))
        t5 = time.perf_counter()
        run = ScoringRun(
            artifact=art,
            input_path=str(input_path),
            output_path=str(output_path) if output_path else None,
            predictions=scored.output,
            checks=checks,
            drift=drift,
            performance=performance,
            estimated_performance=depth["estimated_performance"],
            retrain=retrain,
            history=history,
            timings={"load_s": round(t1 - t0, 4), "read_s": round(t2 - t1, 4),
                     "score_s": round(t3 - t2, 4), "monitor_s": round(t4 - t3, 4),
                     "write_s": round(t5 - t4, 4)},
            started=started,
            scored=scored,
            labels_path=str(labels_path) if labels_path else None,
            issues_path=str(issues_file) if issues_file else None,
        )
        if logger:
            tags = {"nbprod.kind": "score", "nbprod.name": art.name,
                    "nbprod.artifact_id": head["artifact_id"], "nbprod.digest": art.digest,
                    "nbprod.status": run.status}
            try:
                run.tracking = logger.log(run.summary(), tags)
            except NbprodError as exc:  # predictions are written; say what was not logged
                tracking_error = str(exc)
        if tracking_error:
            run.tracking = {"error": tracking_error}
            run.checks.append(CheckResult(name="tracking", kind="tracking", status="warn",
                                          message=tracking_error))
        run.timings["total_s"] = round(time.perf_counter() - t0, 4)
        if summary_path:
            write_json(run.summary(), staged.path("summary_path"))
        staged.publish(["summary_path", "issues_path", "output_path"])
    finally:
        if staged:
            staged.close()
        if logger:
            logger.close()
    return run


def _depth(art: Artifact, scored: Any, drift: dict[str, Any], checks: list[CheckResult]) -> dict[str, Any]:
    """Joint drift (into ``drift["multivariate"]``) and performance estimated without labels,
    with their checks (:mod:`nbprod.monitoring.depth`; absent for artifacts packaged before).

    The batch here is in one piece; a streaming run calls ``depth.partial`` per chunk, merges
    the partials and calls ``depth.finalize`` once instead of ``depth.measure``."""
    from ..monitoring import depth as dp

    result = dp.measure(art, scored, drift)
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
