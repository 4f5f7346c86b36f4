"""Monitoring history in MLflow: one experiment per model, one run per scoring batch.

Scoring runs log from a helper process (:class:`RunLogger`) started when the run begins: MLflow's
import and the store connection then overlap with reading and scoring the batch, and the
process hands back the artifact's earlier runs (for drift persistence and the report's trend)
before the new run is logged. With the embedded SQLite store, once the monitoring experiment
exists, no helper is needed: :mod:`nbprod.tracking.direct` reads the history and writes the run
into the store's tables in milliseconds (and steps aside, for the helper, whenever it cannot be
sure to write what MLflow writes). Tracking follows MLflow's configuration: ``MLFLOW_TRACKING_URI``,
else the embedded SQLite store ``mlflow.db`` in the working directory.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

from ..exceptions import NbprodError

HISTORY_RUNS = 20
_STATUS_CODE = {"ok": 0, "warn": 1, "alert": 2, "error": 3}


def experiment_name(model_name: str) -> str:
    return f"{model_name}/monitoring"


def metric_key(*parts: str) -> str:
    """A metric name MLflow accepts (letters, digits, _ - . / and spaces)."""
    return ".".join(re.sub(r"[^A-Za-z0-9_\-./ ]", "_", p) for p in parts)


def run_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The figures of a run summary worth a time series."""
    out: dict[str, float] = {"rows": float(summary["rows"]),
                             "status_code": float(_STATUS_CODE[summary["status"]])}
    for key in ("rows_in", "rejected", "flagged"):  # row issues (absent in older summaries)
        if summary.get(key) is not None:
            out[key] = float(summary[key])
    drift = summary.get("drift")
    if drift:
        out["drift.weighted_share"] = float(drift["dataset"]["weighted_share"])
        out["drift.dataset_drifted"] = float(drift["dataset"]["drifted"])
        out["drift.columns_drifted"] = float(len(drift["dataset"]["drifted_columns"]))
        for col, d in drift["columns"].items():
            for stat in ("psi", "wasserstein", "null_rate_change", "new_share"):
                if d.get(stat) is not None:
                    out[metric_key("drift", col, stat)] = float(d[stat])
            out[metric_key("drift", col, "drifted")] = float(d["drifted"])
        out["drift.predictions_drifted"] = float(drift["predictions"]["drifted"])
    perf = summary.get("performance")
    if perf:
        for name, m in perf.get("metrics", {}).items():
            if m.get("value") is not None:
                out[metric_key("performance", name)] = float(m["value"])
        out["labels.labelled_rows"] = float(perf.get("labelled_rows") or 0)
    retrain = summary.get("retrain")
    if retrain:
        out["retrain.recommended"] = float(retrain["recommended"])
    for c in summary.get("checks", []):
        if c["name"] == "output:bounds" and c["status"] != "skip":
            out["output.out_of_bounds"] = float(c["value"] or 0)
    out.update(depth_metrics(summary))
    out.update(challenger_metrics(summary))
    return out


def challenger_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """A shadow or A/B run's figures as metrics, ``shadow.*`` or ``ab.*``: the disagreement, each
    model's (arm's) rows and performance metrics, and the mergeable loss statistics that
    ``nbprod promote`` adds up over runs (``<mode>.evidence.<paired|champion|challenger>.n|mean|m2``).
    Which challenger is in the run's tags (``nbprod.challenger.*``)."""
    out: dict[str, float] = {}
    for mode in ("shadow", "ab"):
        entry = summary.get(mode)
        if not entry:
            continue
        for key, value in (entry.get("disagreement") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                out[f"{mode}.disagreement.{key}"] = float(value)
        for who in ("champion", "challenger"):
            figures = entry.get(who) or {}
            if figures.get("rows") is not None:
                out[f"{mode}.{who}.rows"] = float(figures["rows"])
            for name, value in (figures.get("metrics") or {}).items():
                if value is not None:
                    out[metric_key(mode, who, name)] = float(value)
        for key in ("unpaired", "fallback"):
            if entry.get(key):
                out[f"{mode}.{key}"] = float(entry[key]["rows"])
        for part, stats in (entry.get("evidence") or {}).items():
            if isinstance(stats, dict):
                for k in ("n", "mean", "m2"):
                    if stats.get(k) is not None:
                        out[f"{mode}.evidence.{part}.{k}"] = float(stats[k])
    return out


def depth_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """Joint drift, category shares and performance estimated without labels, as metrics:
    ``drift.multivariate.statistic|threshold|drifted``, ``drift.<column>.share_max_log_ratio``
    and ``drift.<column>.share.<category>`` (the 10 largest changes), ``estimated.<metric>`` with
    ``.lower`` and ``.upper``. Absent in summaries of artifacts packaged before them."""
    out: dict[str, float] = {}
    drift = summary.get("drift") or {}
    mv = drift.get("multivariate")
    if mv and mv.get("statistic") is not None:
        out["drift.multivariate.statistic"] = float(mv["statistic"])
        out["drift.multivariate.threshold"] = float(mv["threshold"])
        out["drift.multivariate.drifted"] = float(mv["drifted"])
    for col, d in (drift.get("columns") or {}).items():
        cats = d.get("categories")
        if not cats:
            continue
        out[metric_key("drift", col, "share_max_log_ratio")] = max(abs(c["log_ratio"]) for c in cats.values())
        moved = sorted(cats.items(), key=lambda kv: -abs(kv[1]["log_ratio"]))[:10]
        for name, c in moved:
            if c["drifted"]:
                out[metric_key("drift", col, "share", name)] = float(c["share"])
    est = summary.get("estimated_performance") or {}
    for name, m in (est.get("metrics") or {}).items():
        for part in ("value", "lower", "upper"):
            if m.get(part) is not None:
                out[metric_key("estimated", name) + ("" if part == "value" else f".{part}")] = float(m[part])
    return out


class RunLogger:
    """Logs one scoring run to MLflow from a helper process (see the module docs)."""

    def __init__(self, name: str, artifact_id: str, history: int = HISTORY_RUNS) -> None:
        from . import direct

        self._args = (experiment_name(name), artifact_id, history)
        self._previous: list[dict[str, Any]] | None = None
        self.proc: subprocess.Popen | None = None
        self.direct: direct.Store | None = None
        try:
            self.direct = direct.open_store(experiment_name(name))
        except direct.Unsupported:
            self._start()

    def _start(self) -> None:
        experiment, artifact_id, history = self._args
        self.direct = None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nbprod.tracking.worker", experiment, artifact_id,
             str(history)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )

    def _read(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=60)
            err = (self.proc.stderr.read() if self.proc.stderr else "").strip().splitlines()
            raise NbprodError("MLflow logging failed: " + (err[-1] if err else "no answer"))
        data = json.loads(line)
        if "error" in data:
            raise NbprodError(f"MLflow logging failed: {data['error']}")
        return data

    def previous(self) -> list[dict[str, Any]]:
        """Earlier runs of this artifact, newest first."""
        if self._previous is None and self.direct is not None:
            import sqlite3

            try:
                self._previous = self.direct.history(self._args[1], self._args[2])
            except sqlite3.Error:
                self._start()
        if self._previous is None:
            self._previous = self._read()["history"]
        return self._previous

    def log(self, summary: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
        self.previous()
        if self.direct is not None:
            import sqlite3

            from . import direct

            try:
                return self.direct.log(summary, run_metrics(summary), tags)
            except (direct.Unsupported, sqlite3.Error, OSError):
                self._start()  # MLflow records it instead
                self._read()  # the helper's history (already known)
        assert self.proc is not None and self.proc.stdin is not None
        payload = {"summary": summary, "metrics": run_metrics(summary), "tags": tags}
        self.proc.stdin.write(json.dumps(payload, default=str) + "\n")
        self.proc.stdin.close()
        info = self._read()
        self.proc.wait(timeout=120)
        return info

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def log_file(run_id: str, path: str, artifact_path: str | None = None) -> None:
    """Attach a file (e.g. the executed report notebook) to an existing run."""
    from .store import client, store_error

    try:
        client().log_artifact(run_id, path, artifact_path)
    except Exception as exc:
        raise store_error(exc) from None


def history(model_name: str, artifact_id: str | None = None, max_runs: int = 1000):
    """The monitoring runs of a model (optionally one artifact) as a DataFrame, oldest first."""
    import mlflow
    import pandas as pd

    from .store import client, retry, store_error

    try:
        exp = client().get_experiment_by_name(experiment_name(model_name))
        if exp is None:
            return pd.DataFrame(columns=["start_time", "status", "rows"])
        filt = f"tags.`nbprod.artifact_id` = '{artifact_id}'" if artifact_id else ""
        runs = retry(mlflow.search_runs, [exp.experiment_id], filter_string=filt,
                     max_results=max_runs, order_by=["attributes.start_time ASC"])
    except Exception as exc:
        raise store_error(exc) from None
    if runs.empty:
        return pd.DataFrame(columns=["start_time", "status", "rows"])
    keep = {"run_id": "run_id", "start_time": "start_time", "tags.nbprod.status": "status",
            "tags.nbprod.artifact_id": "artifact_id", "metrics.rows": "rows",
            "metrics.drift.weighted_share": "drift_share",
            "metrics.drift.dataset_drifted": "dataset_drifted",
            "metrics.drift.columns_drifted": "columns_drifted",
            "metrics.retrain.recommended": "retrain",
            "metrics.output.out_of_bounds": "out_of_bounds"}
    perf = {c: "perf_" + c.split("metrics.performance.", 1)[1] for c in runs.columns
            if c.startswith("metrics.performance.")}
    perf |= {c: "est_" + c.split("metrics.estimated.", 1)[1] for c in runs.columns
             if c.startswith("metrics.estimated.") and not c.endswith((".lower", ".upper"))}
    if "metrics.drift.multivariate.drifted" in runs.columns:
        keep["metrics.drift.multivariate.drifted"] = "joint_drifted"
    cols = {k: v for k, v in (keep | perf).items() if k in runs.columns}
    return runs[list(cols)].rename(columns=cols).reset_index(drop=True)


def history_of(target: str, *, all_artifacts: bool = False):
    """The monitoring history of an artifact or a model, from MLflow.

    Parameters
    ----------
    target : str
        An artifact's path, or a model's name.
    all_artifacts : bool
        For an artifact, include the runs of every artifact of its model.

    Returns
    -------
    DataFrame
        One row per scoring run, oldest first: when, rows, rejected, drift, alerts, and the
        performance metrics once labels arrived.

    Examples
    --------
    >>> runs = nbprod.history("artifacts/churn")  # doctest: +SKIP
    >>> runs[["start_time", "rows", "drifted"]].tail(3)  # doctest: +SKIP
    """
    from pathlib import Path

    from ..core import manifest as mf

    root = Path(target)
    if (root / mf.MANIFEST).is_file():
        m = mf.read(root)
        return history(m["name"], None if all_artifacts else m["artifact_id"])
    return history(str(target))


def challenger_runs(model_name: str, champion_digest: str, challenger_digest: str
                    ) -> list[dict[str, Any]]:
    """The shadow and A/B runs recorded for this champion and challenger (by their digests),
    oldest first: each run's id, mode (``shadow`` | ``ab``) and evidence metrics
    (:func:`challenger_metrics`)."""
    from .store import client, retry, store_error

    try:
        exp = client().get_experiment_by_name(experiment_name(model_name))
        if exp is None:
            return []
        filt = (f"tags.`nbprod.digest` = '{champion_digest}' and "
                f"tags.`nbprod.challenger.digest` = '{challenger_digest}'")
        found = retry(client().search_runs, [exp.experiment_id], filter_string=filt,
                      max_results=5000, order_by=["attributes.start_time ASC"])
    except Exception as exc:
        raise store_error(exc) from None
    out = []
    for run in found:
        mode = run.data.tags.get("nbprod.challenger.mode")
        evidence = {k: v for k, v in run.data.metrics.items() if k.startswith(f"{mode}.evidence.")}
        out.append({"run_id": run.info.run_id, "mode": mode, "metrics": evidence})
    return out
