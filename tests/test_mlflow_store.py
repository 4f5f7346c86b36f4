"""Many runs on one MLflow store, and a store that fails (``nbprod.tracking.store``).

Real processes on a real SQLite store: eight scoring runs started at the same moment on a store
that does not exist yet (MLflow's own migrations race there without nbprod's lock), then
``nbprod history``; and stores that cannot be opened, which must cost no predictions and leave
one clear line instead of a traceback.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from nbprod import cli
from nbprod.jobs import run as nbrun

from .artifacts import write_csv
from .test_cli import _console_script, _one_line

RUNS = 8
SCORE = """
import sys, time
from pathlib import Path
from nbprod.jobs import run as nbrun
here = Path(sys.argv[1])
(here / f"ready{sys.argv[2]}").touch()
while not (here / "go").exists():  # all eight start at once
    time.sleep(0.005)
run = nbrun.execute(input_path=str(here / "in.csv"), output_path=str(here / f"p{sys.argv[2]}.csv"),
                         artifact_path=sys.argv[3])
print(run.tracking.get("run_id") or run.tracking)
"""


@pytest.mark.slow
def test_eight_runs_at_once_on_a_new_store_are_all_recorded(cancer_art, tmp_path):
    write_csv(cancer_art.batch, tmp_path / "in.csv")
    store = tmp_path / "store" / "mlflow.db"  # neither the file nor its directory exist yet
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}
    procs = [subprocess.Popen([sys.executable, "-c", SCORE, str(tmp_path), str(i),
                               str(cancer_art.path)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for i in range(RUNS)]
    deadline = time.monotonic() + 300
    while len(list(tmp_path.glob("ready*"))) < RUNS and time.monotonic() < deadline:
        time.sleep(0.05)
    (tmp_path / "go").touch()
    results = [p.communicate(timeout=600) for p in procs]
    for p, (stdout, stderr) in zip(procs, results, strict=True):
        assert p.returncode == 0, stderr
        assert re.fullmatch(r"[0-9a-f]{32}\n", stdout), stdout  # a run id, no tracking error
    assert all(len(pd.read_csv(tmp_path / f"p{i}.csv")) == len(cancer_art.batch)
               for i in range(RUNS))
    assert (store.parent / ".mlflow.db.lock").exists()  # the lock beside the store

    history = subprocess.run([*_console_script(), "history", str(cancer_art.path)], env=env,
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert history.returncode == 0, history.stderr
    rows = [ln for ln in history.stdout.splitlines() if re.match(r"\d{4}-\d\d-\d\d ", ln)]
    assert len(rows) == RUNS, history.stdout
    assert all(" ok " in r or " warn " in r for r in rows)


def _not_a_database(path: Path) -> None:
    path.write_bytes(b"this is not an SQLite database " * 50)


def _unknown_schema(path: Path) -> None:
    """What a store migrated by a newer MLflow (or half migrated) looks like to this one."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
    con.execute("INSERT INTO alembic_version VALUES ('0123456789ab')")
    con.execute("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()


@pytest.mark.parametrize("damage", [_not_a_database, _unknown_schema],
                         ids=["not-a-database", "unknown-schema"])
def test_a_broken_store_costs_no_predictions_and_says_what_to_do(cancer_art, tmp_path,
                                                                 monkeypatch, capfd, damage):
    store = tmp_path / "mlflow.db"
    damage(store)
    uri = f"sqlite:///{store}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    inp = write_csv(cancer_art.batch, tmp_path / "in.csv")
    run = nbrun.execute(input_path=str(inp), output_path=str(tmp_path / "p.csv"),
                        summary_path=str(tmp_path / "s.json"), artifact_path=str(cancer_art.path))
    assert len(pd.read_csv(tmp_path / "p.csv")) == len(cancer_art.batch)  # predictions written
    warning = [c for c in run.checks if c.name == "tracking"]
    assert len(warning) == 1 and warning[0].status == "warn"
    message = warning[0].message
    assert message.startswith(f"MLflow logging failed: MLflow store {uri} cannot be used: ")
    assert "move it aside" in message and "\n" not in message
    assert json.loads((tmp_path / "s.json").read_text())["tracking"] == {"error": message}
    capfd.readouterr()

    assert cli.main(["history", str(cancer_art.path)]) == cli.EXIT_ERROR
    out, err = capfd.readouterr()
    line = _one_line(err)  # one line on stderr, no traceback from nbprod or MLflow
    assert line.startswith(f"nbprod: error: MLflow store {uri} cannot be used: ")
    assert f"mlflow db upgrade {uri}" in line and out == ""


# -- the direct SQLite writer --------------------------------------------------------------------
def test_the_direct_sqlite_writer_knows_mlflows_current_schema():
    """An MLflow upgrade that migrates the store's schema must be checked before nbprod writes
    its tables again: add the new revision to KNOWN_SCHEMAS once the writer matches it."""
    from mlflow.store.db.utils import _get_latest_schema_revision

    from nbprod.tracking.direct import KNOWN_SCHEMAS

    assert _get_latest_schema_revision() in KNOWN_SCHEMAS


def test_a_run_written_directly_reads_back_through_mlflow(tmp_path, monkeypatch):
    """Once the monitoring experiment exists, a scoring run is recorded without MLflow's
    helper process; MLflow reads it like a run it logged itself."""
    import mlflow

    from nbprod.tracking import direct
    from nbprod.tracking.runs import RunLogger, run_metrics
    from nbprod.tracking.store import CLASSIC_ML, EXPERIMENT_KIND, get_or_create_experiment

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI")  # MLflow's default store, ./mlflow.db
    client = mlflow.MlflowClient()
    assert client.tracking_uri.endswith(str(tmp_path / "mlflow.db"))
    with pytest.raises(direct.Unsupported, match="does not exist yet"):
        direct.open_store("m/monitoring")  # the first run goes through MLflow, which creates it
    exp_id = get_or_create_experiment(client, "m/monitoring")
    summaries = [{"started": f"2026-11-30T10:0{i}:00", "status": status, "rows": 100 + i,
                  "input": "in.csv", "output": None, "drift": None,
                  "performance": {"metrics": {"accuracy": {"value": 0.9 + i / 100}},
                                  "labelled_rows": 50}}
                 for i, status in enumerate(["ok", "warn"])]
    ids = []
    for summary in summaries:
        logger = RunLogger("m", "art-1")
        assert logger.proc is None  # no helper process
        ids.append(logger.log(summary, {"nbprod.artifact_id": "art-1",
                                        "nbprod.status": summary["status"]})["run_id"])
        logger.close()
        time.sleep(0.002)  # distinct start times
    run = client.get_run(ids[1])
    assert run.info.status == "FINISHED" and run.info.experiment_id == exp_id
    assert run.info.run_name == "score 2026-11-30T10:01:00"
    assert run.data.metrics == run_metrics(summaries[1])
    assert run.data.params == {"input": "in.csv", "output": "None"}
    assert run.data.tags["nbprod.kind"] == "score" and run.data.tags["nbprod.status"] == "warn"
    found = client.search_runs([exp_id], "tags.`nbprod.status` = 'warn' and metrics.rows > 100")
    assert [r.info.run_id for r in found] == [ids[1]]
    assert [m.value for m in client.get_metric_history(ids[0], "rows")] == [100.0]
    assert mlflow.artifacts.load_dict(f"runs:/{ids[1]}/summary.json") == json.loads(
        json.dumps(summaries[1]))
    assert client.get_experiment(exp_id).tags[EXPERIMENT_KIND] == CLASSIC_ML
    # the history the next run reads: newest first, as the helper process reports it
    history = RunLogger("m", "art-1").previous()
    assert [(h["run_id"], h["status"], h["rows"]) for h in history] == [
        (ids[1], "warn", 101.0), (ids[0], "ok", 100.0)]
    assert history[0]["performance"] == {"accuracy": pytest.approx(0.91)}
    # a schema revision the writer was not checked against: it steps aside for MLflow
    con = sqlite3.connect(tmp_path / "mlflow.db")
    con.execute("update alembic_version set version_num = '0123456789ab'")
    con.commit()
    con.close()
    with pytest.raises(direct.Unsupported, match="0123456789ab"):
        direct.open_store("m/monitoring")
