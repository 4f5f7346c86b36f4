"""A batch scored in chunks gives what it gives in one piece: the predictions byte for byte, the
issues file, and every figure of the summary (row issues, labels and performance, drift, the
checks), in CSV and Parquet, from a file, a directory, a glob or a Hive dataset.

The runs are in-process (``nbprod.jobs.run.execute``) with tiny chunks, so that every merge is
exercised: ids repeated across chunks, a column that converts in one chunk only, regressor
quartiles over many runs. ``nbprod score --chunk-rows`` end to end and a kill -9 mid-stream are
the slow tests at the end.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from nbprod.jobs import run as nbrun

from .artifacts import kinds_frame

ONE_PIECE = 10**9
VOLATILE = ("started", "timings", "engine", "tracking", "input", "output", "issues_path")


def _run(art: Path, inp: Path | str, out: Path, chunk_rows: int, labels: Path | None = None,
         ) -> tuple[dict[str, Any], bytes, bytes]:
    """Score ``inp`` into ``out``; the summary without what differs between runs, the output's
    and the issues file's bytes."""
    summary = out.with_name(out.name + ".json")
    issues = out.with_name("issues-" + out.name)
    nbrun.execute(input_path=str(inp), output_path=str(out), artifact_path=str(art),
                  labels_path=str(labels) if labels else None, summary_path=str(summary),
                  issues_path=str(issues), log_to_mlflow=False, chunk_rows=chunk_rows)
    s = json.loads(summary.read_text())
    for key in VOLATILE:
        s.pop(key)
    for c in s["checks"]:
        if c["name"] == "input:rows":
            c["message"] = c["message"].replace(str(issues), "ISSUES")
            c["details"]["issues_path"] = None
    return s, out.read_bytes(), issues.read_bytes()


def _read(data: bytes, fmt: str) -> pd.DataFrame:
    import io

    return pd.read_parquet(io.BytesIO(data)) if fmt == "parquet" else pd.read_csv(io.BytesIO(data))


def _same(art: Path, inp: Path | str, tmp: Path, fmt: str, chunks: tuple[int, ...],
          labels: Path | None = None) -> dict[str, Any]:
    """Runs in one piece and in each of ``chunks`` rows agree exactly; the one-piece summary."""
    base, out0, iss0 = _run(art, inp, tmp / f"one.{fmt}", ONE_PIECE, labels)
    for n in chunks:
        s, out, iss = _run(art, inp, tmp / f"c{n}.{fmt}", n, labels)
        _assert_same(s, base, f"chunk_rows={n}")
        _same_predictions(out, out0, fmt)
        if fmt == "csv":
            assert iss == iss0, f"issues differ at chunk_rows={n}"
        else:  # Parquet: row groups differ, the tables do not
            pd.testing.assert_frame_equal(_read(iss, fmt), _read(iss0, fmt))
    return base


def _same_predictions(out: bytes, expected: bytes, fmt: str) -> None:
    """The same predictions row for row: byte for byte, or (a model whose arithmetic depends on
    how many rows it is given, such as a linear model's BLAS product) to 1e-12."""
    if out == expected:
        return
    pd.testing.assert_frame_equal(_read(out, fmt), _read(expected, fmt), check_exact=False,
                                  rtol=1e-12, atol=0)


def _assert_same(a: Any, b: Any, where: str) -> None:
    """Equal, counts and text exactly, floating statistics to 1e-9 (the mean of a batch summed
    in chunks differs in the last bits)."""
    if isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), f"{where}: {a!r} != {b!r}"
    elif isinstance(a, dict) and isinstance(b, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            _assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), f"{where}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b and type(a) is type(b), f"{where}: {a!r} != {b!r}"


def _corrupted(n: int, seed: int) -> pd.DataFrame:
    """A kinds batch with bad rows all through it: text and inf in a number, a null and a blank
    id, ids repeating earlier rows' (in other chunks), unseen categories, a negative usage."""
    df = kinds_frame(n, seed).drop(columns=["label"])
    df["usage"] = df["usage"].astype(object)
    df.loc[[3, 40, 77], "usage"] = "12,5 kWh"
    df.loc[[5, 91], "usage"] = np.inf
    df.loc[[8], "usage"] = -2.5
    df.loc[[11], "account"] = None
    df.loc[[60], "account"] = "  "
    df.loc[[50, 99, 120], "account"] = df.loc[[2, 2, 49], "account"].to_numpy()
    df["plan"] = df["plan"].astype(object)
    df.loc[[17, 95], "plan"] = "gold"
    df["region"] = df["region"].astype(object)
    df.loc[[21, 22, 130], "region"] = "mars"
    return df


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_chunks_give_the_one_piece_outputs_issues_labels_and_drift(kinds_art, tmp_path, fmt):
    batch = _corrupted(150, 5)
    inp = tmp_path / f"in.{fmt}"
    labels = tmp_path / "labels.csv"
    if fmt == "csv":
        batch.to_csv(inp, index=False)
    else:  # a text column in Parquet: the bad values are text there
        batch.assign(usage=batch["usage"].map(str)).to_parquet(inp, index=False)
    lab = kinds_frame(150, 5)[["account", "label"]].iloc[::2]
    lab.to_csv(labels, index=False)
    s = _same(kinds_art.path, inp, tmp_path, fmt, (11, 64), labels)
    by = {(b["column"], b["rule"]): b["rows"] for b in s["checks"][1]["details"]["by"]}
    assert by[("usage", "type")] == 3 and by[("usage", "non-finite")] == 2
    assert by[("account", "null-id")] == 2 and by[("account", "duplicate-id")] == 3
    assert by[("usage", "sign")] == 1
    assert s["rows_in"] == 150 and s["rejected"] >= 7
    assert s["performance"]["labelled_rows"] > 50
    assert s["drift"]["columns"]["region"]["new_values"] == ["mars"]


def test_chunks_give_the_one_piece_summary_for_a_regressor_joined_by_row(diabetes_art, tmp_path):
    inp = tmp_path / "in.csv"
    diabetes_art.batch.to_csv(inp, index=False)
    labels = tmp_path / "labels.parquet"
    diabetes_art.labels.to_parquet(labels, index=False)
    s = _same(diabetes_art.path, inp, tmp_path, "csv", (5, 13), labels)
    assert set(s["prediction"]) == {"mean", "std", "min", "25%", "50%", "75%", "max"}
    assert s["performance"]["join"] == "by row order"


def test_a_directory_a_glob_and_a_hive_dataset_read_as_one_batch(cancer_art, tmp_path):
    batch = cancer_art.batch
    one = tmp_path / "one.parquet"
    batch.to_parquet(one, index=False)
    base, out0, _ = _run(cancer_art.path, one, tmp_path / "o0.csv", ONE_PIECE)
    parts = np.array_split(np.arange(len(batch)), 3)
    flat, hive = tmp_path / "flat", tmp_path / "hive"
    for i, rows in enumerate(parts):
        (flat / "_SUCCESS").parent.mkdir(exist_ok=True)
        batch.iloc[rows].to_parquet(flat / f"part-{i}.parquet", index=False)
        d = hive / f"day=2026-11-{i + 10}"
        d.mkdir(parents=True)
        batch.iloc[rows].to_parquet(d / "part-0.parquet", index=False)
    (flat / "_SUCCESS").write_text("")
    for name, inp in (("dir", flat), ("glob", str(flat / "part-*.parquet")), ("hive", hive)):
        s, out, _ = _run(cancer_art.path, inp, tmp_path / f"{name}.csv", 17)
        _same_predictions(out, out0, "csv")
        if name == "hive":  # the partition column is an extra input column
            extra = [c for c in s["checks"] if c["name"] == "input:extra-columns"]
            assert extra[0]["details"]["columns"] == ["day"]
            s["checks"].remove(extra[0])
        _assert_same(s, base, name)


# -- end to end -------------------------------------------------------------------------------
def _nbprod(*args: str, cwd: Path, tty: bool = False) -> subprocess.CompletedProcess:
    """``nbprod ARGS`` as a user runs it; ``tty``: on a pseudo-terminal (``script``), whose
    output comes back on stdout with \\r\\n line ends."""
    script = Path(sys.executable).with_name("nbprod")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "nbprod.cli"]
    cmd += list(args)
    if tty:
        cmd = ["script", "-qfec", f"stty cols 120 rows 40; {shlex.join(cmd)}", "/dev/null"]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=os.environ.copy())


@pytest.mark.slow
def test_nbprod_score_chunk_rows_matches_one_piece_and_shows_progress_on_a_terminal_only(
        cancer_art, tmp_path):
    inp = tmp_path / "in.parquet"
    cancer_art.batch.to_parquet(inp, index=False)
    base, out0, iss0 = _run(cancer_art.path, inp, tmp_path / "one.csv", ONE_PIECE)
    piped = _nbprod("score", str(cancer_art.path), str(inp), "-o", "piped.csv", "--chunk-rows",
                    "40", "--no-mlflow", "--summary", "piped.json", cwd=tmp_path)
    assert piped.returncode == 0, piped.stderr
    assert (tmp_path / "piped.csv").read_bytes() == out0
    summary = json.loads((tmp_path / "piped.json").read_text())
    assert summary["engine"] == {"name": "local", "chunks": 3, "chunk_rows": 40}
    assert "rows/s" not in piped.stderr and "\r" not in piped.stderr  # no bar in a log
    on_tty = _nbprod("score", str(cancer_art.path), str(inp), "-o", "tty.csv", "--chunk-rows",
                     "40", "--no-mlflow", cwd=tmp_path, tty=True)
    assert on_tty.returncode == 0, on_tty.stdout
    assert (tmp_path / "tty.csv").read_bytes() == out0
    assert f"/{len(cancer_art.batch)} [" in on_tty.stdout and "rows/s" in on_tty.stdout  # a bar


@pytest.mark.slow
def test_kill_9_mid_stream_leaves_no_output(cancer_art, tmp_path):
    big = pd.concat([cancer_art.batch] * 1000, ignore_index=True)  # 119k rows
    big["patient_id"] = np.arange(len(big))
    inp = tmp_path / "big.csv"
    big.to_csv(inp, index=False)
    out = tmp_path / "preds.parquet"
    code = (f"from nbprod.jobs import run; run.execute(input_path={str(inp)!r}, "
            f"output_path={str(out)!r}, artifact_path={str(cancer_art.path)!r}, "
            "log_to_mlflow=False, chunk_rows=1000)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env=os.environ.copy())
    try:
        staged = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            found = [p for p in tmp_path.glob(".*.nbprod-tmp/out/*") if p.stat().st_size > 0]
            if found:
                staged = found[0]
                break
            time.sleep(0.05)
        assert staged is not None, "the run never started writing"
        time.sleep(0.3)  # mid-stream: some chunks written
        assert proc.poll() is None, "the run finished before it could be killed: a bigger input"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    assert not (tmp_path / "preds.issues.parquet").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["big.csv"]


# -- Dask ---------------------------------------------------------------------------------------
def _dask_batch(tmp: Path) -> tuple[Path, Path]:
    """The corrupted kinds batch as Parquet in row groups of 40 (so the cluster gets several
    parts, with ids repeated across them), and its labels."""
    pytest.importorskip("distributed")
    batch = _corrupted(150, 6)
    inp = tmp / "in.parquet"
    batch.assign(usage=batch["usage"].map(str)).to_parquet(inp, index=False, row_group_size=40)
    labels = tmp / "labels.csv"
    kinds_frame(150, 6)[["account", "label"]].iloc[1::2].to_csv(labels, index=False)
    return inp, labels


def _dask_same(art: Path, inp: Path, labels: Path, tmp: Path, **kw: Any) -> dict[str, Any]:
    base, out0, iss0 = _run(art, inp, tmp / "one.parquet", ONE_PIECE, labels)
    summary = tmp / "dask.json"
    nbrun.execute(input_path=str(inp), output_path=str(tmp / "dask.parquet"),
                  artifact_path=str(art), labels_path=str(labels), summary_path=str(summary),
                  issues_path=str(tmp / "issues-dask.parquet"), log_to_mlflow=False,
                  chunk_rows=40, engine="dask", **kw)
    s = json.loads(summary.read_text())
    engine = s["engine"]
    for key in VOLATILE:
        s.pop(key)
    for c in s["checks"]:
        if c["name"] == "input:rows":
            c["message"] = c["message"].replace(str(tmp / "issues-dask.parquet"), "ISSUES")
            c["details"]["issues_path"] = None
    _assert_same(s, base, "dask")
    _same_predictions((tmp / "dask.parquet").read_bytes(), out0, "parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp / "issues-dask.parquet"),
                                  _read(iss0, "parquet"))
    assert engine["name"] == "dask" and engine["parts"] == 4
    return engine


@pytest.mark.slow
def test_dask_local_cluster_gives_the_single_process_results(kinds_art, tmp_path, monkeypatch):
    inp, labels = _dask_batch(tmp_path)
    engine = _dask_same(kinds_art.path, inp, labels, tmp_path)
    n = os.cpu_count() or 1
    assert engine["scheduler"] == f"LocalCluster({n} workers)" and engine["workers"] == n
    # the Python face: a Dask DataFrame, scored where its partitions are computed, from a
    # notebook whose namespace `%reset` cleared (which deletes __main__.__spec__, read when
    # the LocalCluster spawns its workers)
    import dask.dataframe as dd

    monkeypatch.delattr(sys.modules["__main__"], "__spec__", raising=False)

    frame = dd.from_pandas(pd.read_parquet(inp), npartitions=3)
    base, out0, _ = _run(kinds_art.path, inp, tmp_path / "base.parquet", ONE_PIECE, labels)
    run = nbrun.execute(input_path=frame, output_path=str(tmp_path / "frame.parquet"),
                        artifact_path=str(kinds_art.path), labels_path=str(labels),
                        summary_path=str(tmp_path / "frame.json"), log_to_mlflow=False,
                        chunk_rows=40)
    assert run.engine["parts"] == 3 and run.input_path == "<Dask DataFrame, 3 partitions>"
    _same_predictions((tmp_path / "frame.parquet").read_bytes(), out0, "parquet")
    s = json.loads((tmp_path / "frame.json").read_text())
    for key in VOLATILE:
        s.pop(key)
    assert s["drift"] == base["drift"] and s["rejected"] == base["rejected"]
    assert s["performance"] == base["performance"] and s["prediction"] == base["prediction"]
    _assert_same(s["explained"], base["explained"], "dask explained")  # the same rows explained
    assert s["explained"]["rows"]


@pytest.mark.slow
def test_dask_scheduler_and_worker_over_tcp_give_the_single_process_results(kinds_art, tmp_path):
    inp, labels = _dask_batch(tmp_path)
    bin_dir = Path(sys.executable).parent
    info = tmp_path / "scheduler.json"
    env = os.environ.copy()
    procs = [subprocess.Popen([str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--no-dashboard", "--scheduler-file", str(info)],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        procs.append(subprocess.Popen(
            [str(bin_dir / "dask"), "worker", address, "--nworkers", "1", "--nthreads", "1",
             "--no-dashboard"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        engine = _dask_same(kinds_art.path, inp, labels, tmp_path, scheduler=address)
        assert engine["scheduler"] == address and engine["workers"] == 1
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.mark.slow
def test_dask_workers_nbprod_starts_keep_glibc_dynamic_mmap_threshold_no_profiler(monkeypatch):
    """Distributed gives its workers MALLOC_TRIM_THRESHOLD_, which turns off glibc's dynamic
    mmap threshold: every column of a chunk then page-faults in afresh (about 9x the page
    faults and 1.4x the CPU per row, docs/performance.md). nbprod's LocalCluster leaves it
    out, keeps distributed's thread limits, and does not leave it in this process's
    environment for the next cluster. The workers' stack-sampling profiler is off."""
    pytest.importorskip("distributed")
    import dask

    from nbprod.jobs.engines import _client

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    names = ("MALLOC_TRIM_THRESHOLD_", "OMP_NUM_THREADS")

    def seen_by_worker() -> dict:
        return {**{k: os.environ.get(k) for k in names},
                "profile": dask.config.get("distributed.worker.profile.enabled")}

    with _client(None, 1) as (client, where):
        seen = client.run(seen_by_worker)
    assert where == "LocalCluster(1 workers)" and len(seen) == 1
    assert list(seen.values()) == [{"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "1",
                                    "profile": False}]
    assert "MALLOC_TRIM_THRESHOLD_" not in os.environ


@pytest.fixture(scope="module")
def dask_client():
    """One LocalCluster (2 single-threaded worker processes) for the module's lazy runs."""
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client


@pytest.mark.slow
def test_a_dask_frame_scored_lazily_gives_the_single_process_results(kinds_art, tmp_path,
                                                                    dask_client):
    import dask.dataframe as dd

    import nbprod.dask

    inp, labels = _dask_batch(tmp_path)
    base, out0, _ = _run(kinds_art.path, inp, tmp_path / "one.parquet", ONE_PIECE, labels)
    batch = pd.read_parquet(inp)
    batch.index = pd.RangeIndex(1000, 1000 + len(batch))  # the user's own index comes back
    frame = dd.from_pandas(batch, npartitions=3)
    work = tmp_path / "work"
    lazy = nbprod.dask.score(str(kinds_art.path), frame, labels=labels, chunk_rows=40, work=work)
    assert isinstance(lazy.predictions, dd.DataFrame) and lazy.predictions.npartitions == 3
    assert not any(work.iterdir())  # nothing computed yet
    preds, summary = lazy.compute()
    assert not any(work.iterdir())  # the spills were read and removed
    expected = _read(out0, "parquet")
    assert list(lazy.predictions.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(preds.reset_index(drop=True), expected, check_exact=False,
                                  rtol=1e-12, atol=0)
    assert preds.index.is_unique and preds.index.isin(batch.index).all()
    assert (batch.loc[preds.index, "account"].to_numpy() == preds["account"].to_numpy()).all()
    assert summary["engine"]["lazy"] and summary["engine"]["parts"] == 3
    for key in VOLATILE:
        summary.pop(key)
    for c in summary["checks"]:
        if c["name"] == "input:rows":
            c["details"]["issues_path"] = None
    rows = next(c for c in base["checks"] if c["name"] == "input:rows")
    rows["message"] = rows["message"].replace("; issues in ISSUES", "")
    _assert_same(summary, base, "lazy")
    assert summary["rejected"] > 0 and summary["performance"] is not None


def test_the_lazy_face_refuses_a_pandas_frame_naming_what_to_use():
    import nbprod.dask
    from nbprod.exceptions import NbprodUsageError

    with pytest.raises(NbprodUsageError, match=r"needs a Dask DataFrame.*got DataFrame.*"
                                               r"nbprod.load\(path\).score\(df\)"):
        nbprod.dask.score("no-artifact-needed", pd.DataFrame({"a": [1]}))
