"""A scoring run's history and record written straight into MLflow's embedded SQLite store.

A scheduled scoring run logs one run with a few dozen metrics. Doing that through MLflow costs a
helper process seconds of CPU (importing MLflow, opening the SQL store, the interpreter's exit)
on machines where the run itself takes a few seconds. For the common local case, the embedded
SQLite store, this module reads the artifact's earlier runs and writes the new run with the
standard library's ``sqlite3``, into MLflow's own tables, in one transaction, in milliseconds
and without importing MLflow. What it writes is what MLflow writes for the same calls (a run,
its tags, params, metrics and latest metrics, and ``summary.json`` in the run's artifact
directory), and MLflow reads it back like any run.

It only acts when it can be sure of that: a ``sqlite:///`` tracking URI (or none: MLflow's
default ``sqlite:///mlflow.db`` in the working directory) whose store exists, whose schema
revision is one this module was checked against (:data:`KNOWN_SCHEMAS`: an MLflow upgrade that
migrates the schema makes it step aside until it is checked again), and whose experiment
already exists (MLflow creates it, typed, on the model's first scoring run) with a local
artifact location. Otherwise :class:`~nbprod.tracking.runs.RunLogger` logs through MLflow as
before: :class:`Unsupported` says why.
"""

from __future__ import annotations

import getpass
import json
import math
import os
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

# alembic revisions of MLflow's tracking schema whose tables this module reads and writes as
# MLflow does (checked by tests/test_mlflow_store.py against MLflow's head revision)
KNOWN_SCHEMAS = frozenset({"dc11669786a5"})
DEFAULT_URI = "sqlite:///mlflow.db"  # MLflow's default with nothing configured
_WORKSPACE = "default"


class Unsupported(LookupError):
    """This store is not one :mod:`nbprod.tracking.direct` writes: log through MLflow."""


def tracking_uri() -> str:
    """MLflow's tracking URI as a new process sees it: ``MLFLOW_TRACKING_URI``, else the
    embedded default."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_URI


def database(uri: str | None = None) -> Path:
    """The SQLite file of ``uri`` (default :func:`tracking_uri`); :class:`Unsupported` for any
    other store, or when the file does not exist yet (MLflow creates and migrates it)."""
    uri = tracking_uri() if uri is None else uri
    if not uri.startswith("sqlite:///") or "?" in uri:
        raise Unsupported(f"not an embedded SQLite store: {uri}")
    path = Path(uri[len("sqlite:///"):]).absolute()
    if not path.is_file():
        raise Unsupported(f"{path} does not exist yet")
    return path


class Store:
    """The experiment ``experiment`` of the SQLite store at ``db``, checked for direct use."""

    def __init__(self, db: Path, experiment: str) -> None:
        self.db, self.experiment = db, experiment
        con = self._connect(read_only=True)
        try:
            self.experiment_id, self.location = self._check(con)
        finally:
            con.close()

    def _connect(self, *, read_only: bool) -> sqlite3.Connection:
        if read_only:
            return sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=60)
        return sqlite3.connect(str(self.db), timeout=60, isolation_level=None)

    def _check(self, con: sqlite3.Connection) -> tuple[int, Path]:
        row = con.execute("select version_num from alembic_version").fetchone()
        if row is None or row[0] not in KNOWN_SCHEMAS:
            raise Unsupported(f"MLflow schema revision {row and row[0]} is not one nbprod writes")
        row = con.execute(
            "select experiment_id, artifact_location from experiments where name = ? and "
            "lifecycle_stage = 'active' and workspace = ?", (self.experiment, _WORKSPACE)
        ).fetchone()
        if row is None:
            raise Unsupported(f"experiment {self.experiment!r} does not exist yet")
        location = urlparse(row[1])
        if location.scheme not in ("", "file") or not location.path.startswith("/"):
            raise Unsupported(f"artifact location {row[1]!r} is not a local directory")
        return int(row[0]), Path(unquote(location.path))

    def history(self, artifact_id: str, n: int) -> list[dict[str, Any]]:
        """The artifact's last ``n`` runs, newest first, as the helper process reports them."""
        con = self._connect(read_only=True)
        try:
            runs = con.execute(
                "select r.run_uuid, r.start_time from runs r join tags t on t.run_uuid = "
                "r.run_uuid where r.experiment_id = ? and r.lifecycle_stage = 'active' and "
                "t.key = 'nbprod.artifact_id' and t.value = ? "
                "order by r.start_time desc limit ?", (self.experiment_id, artifact_id, n),
            ).fetchall()
            out = []
            for run_id, start in runs:
                metrics = {k: (math.nan if nan else v) for k, v, nan in con.execute(
                    "select key, value, is_nan from latest_metrics where run_uuid = ?",
                    (run_id,))}
                status = con.execute("select value from tags where run_uuid = ? and "
                                     "key = 'nbprod.status'", (run_id,)).fetchone()
                out.append({
                    "run_id": run_id, "start_time": start,
                    "status": status[0] if status else None, "rows": metrics.get("rows"),
                    "dataset_drifted": bool(metrics.get("drift.dataset_drifted", 0.0)),
                    "drift_share": metrics.get("drift.weighted_share"),
                    "performance": {k.split(".", 1)[1]: v for k, v in metrics.items()
                                    if k.startswith("performance.")},
                })
            return out
        finally:
            con.close()

    def log(self, summary: dict[str, Any], metrics: dict[str, float],
            tags: dict[str, str]) -> dict[str, Any]:
        """Record the finished scoring run: MLflow's ``create_run`` + ``log_batch`` +
        ``log_dict(summary.json)`` + ``set_terminated``, in one transaction."""
        run_id = uuid.uuid4().hex
        now = int(time.time() * 1000)
        name = f"score {str(summary.get('started', ''))[:19]}"
        artifacts = self.location / run_id / "artifacts"
        user = _user()
        con = self._connect(read_only=False)
        try:
            con.execute("BEGIN IMMEDIATE")
            self._check(con)
            con.execute(
                "insert into runs (run_uuid, name, source_type, source_name, entry_point_name, "
                "user_id, status, start_time, end_time, source_version, lifecycle_stage, "
                "artifact_uri, experiment_id) values (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, name, "UNKNOWN", "", "", user, "FINISHED", now, now, "", "active",
                 str(artifacts), self.experiment_id))
            all_tags = {**tags, "nbprod.kind": "score", "mlflow.runName": name,
                        "mlflow.user": user}
            con.executemany("insert into tags (key, value, run_uuid) values (?,?,?)",
                            [(k, str(v)[:8000], run_id) for k, v in all_tags.items()])
            con.executemany("insert into params (key, value, run_uuid) values (?,?,?)",
                            [("input", str(summary.get("input"))[:500], run_id),
                             ("output", str(summary.get("output"))[:500], run_id)])
            rows = [(k, _value(v), now, run_id, 0, int(math.isnan(v)))
                    for k, v in metrics.items()]
            con.executemany("insert into metrics (key, value, timestamp, run_uuid, step, "
                            "is_nan) values (?,?,?,?,?,?)", rows)
            con.executemany("insert into latest_metrics (key, value, timestamp, run_uuid, step, "
                            "is_nan) values (?,?,?,?,?,?)", rows)
            artifacts.mkdir(parents=True, exist_ok=True)
            (artifacts / "summary.json").write_text(json.dumps(summary, indent=2, default=str),
                                                    encoding="utf-8")
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        finally:
            con.close()
        return {"run_id": run_id, "experiment_id": str(self.experiment_id),
                "experiment": self.experiment, "tracking_uri": tracking_uri()}


def open_store(experiment: str) -> Store:
    """The experiment in the configured store, if this module can write it; else
    :class:`Unsupported` (a SQLite error counts as that too: MLflow then decides)."""
    try:
        return Store(database(), experiment)
    except sqlite3.Error as exc:
        raise Unsupported(f"cannot read the SQLite store directly: {exc}") from None


def _value(v: float) -> float:
    """A metric value as MLflow's SQL store keeps it: NaN as 0 (with ``is_nan``), an infinity
    as the largest float of its sign."""
    if math.isnan(v):
        return 0.0
    if math.isinf(v):
        return math.copysign(1.7976931348623157e308, v)
    return float(v)


def _user() -> str:
    try:
        return str(getpass.getuser())
    except Exception:
        return "unknown"
