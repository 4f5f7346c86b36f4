"""Crash safety: ``kill -9`` of packaging and of ``nbprod score`` at many moments.

Packaging assembles the artifact in a staging directory marked ``.nbprod-staging`` (refused by
verification) and renames it into place only after its parity replay passed; ``nbprod score``
writes every output into staging beside it and publishes them together at the end. The tests
kill real processes (``SIGKILL``, the process only: its children are orphaned, as they would be)
at moments found by watching the file system and the process tree, then look at everything left
on disk.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

import nbprod
from nbprod import cli
from nbprod.core.manifest import STAGING_MARKER
from nbprod.core.staging import StagingDir, remove_stale
from nbprod.exceptions import IntegrityError

from .artifacts import ROOT, copy_artifact, package_cancer, write_csv
from .test_cli import _console_script

Event = Callable[[psutil.Process], bool]


def _kill_at(argv: list[str], cwd: Path, event: Event, timeout: float = 300) -> None:
    """Run ``argv``; the moment ``event`` holds, SIGKILL it and wait for its orphans to end."""
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    me = psutil.Process(proc.pid)
    deadline = time.monotonic() + timeout
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            if event(me):
                orphans = me.children(recursive=True)
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                _, alive = psutil.wait_procs(orphans, timeout=30)
                assert not alive, f"orphans still running 30 s after the kill: {alive}"
                return
            time.sleep(0.01)
        pytest.fail(f"the moment to kill never came: {event.__name__} (exit {proc.poll()})")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _hidden(parent: Path, prefix: str) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".nbprod-tmp")]


def _child_running(module: str) -> Event:
    def event(me: psutil.Process) -> bool:
        try:
            return any(module in " ".join(c.cmdline()) for c in me.children(recursive=True))
        except psutil.Error:
            return False
    return event


def _accepted(parent: Path) -> list[Path]:
    """Every directory under ``parent`` that `nbprod verify` accepts or `nbprod.load` loads."""
    found = []
    for manifest in parent.rglob("nbprod.json"):
        d = manifest.parent
        verified = cli.main(["verify", str(d)]) == cli.EXIT_OK
        try:
            nbprod.load(d)
            loaded = True
        except IntegrityError:
            loaded = False
        if verified or loaded:
            found.append(d)
    return found


# -- packaging ------------------------------------------------------------------------------
PACKAGE = """
import sys
sys.path.insert(0, sys.argv[1])
from pathlib import Path
import pandas as pd
from tests.artifacts import package_cancer
package_cancer(pd.read_parquet(sys.argv[2]), Path(sys.argv[3]))
"""


def _package_moments(parent: Path) -> dict[str, Event]:
    seen = {"replay": False}

    left: dict[int, set[Path]] = {}  # per run: replay directories an earlier killed run left

    def replaying(me: psutil.Process) -> bool:  # the replay's process starts early: its sample
        samples = {d for d in _hidden(parent, ".nbprod-replay.") if (d / "sample.pkl").exists()}
        left.setdefault(me.pid, samples)  # first look: the run has not started its replay yet
        return bool(samples - left[me.pid])

    def during_replay(me: psutil.Process) -> bool:
        return replaying(me)

    def after_replay(me: psutil.Process) -> bool:  # comparing, logging to MLflow, renaming
        if replaying(me):
            seen["replay"] = True
            return False
        return seen["replay"]

    # before the replay the staging directory has no manifest yet, so these two are the
    # moments when a directory that verifies could be left behind
    return {"during the parity replay": during_replay,
            "after the replay (MLflow logging)": after_replay}


@pytest.mark.slow
def test_kill_9_during_packaging_leaves_no_artifact_but_the_complete_one(cancer, tmp_path,
                                                                         capsys):
    data = tmp_path / "cancer.parquet"
    cancer.to_parquet(data)
    parent = tmp_path / "artifacts"
    parent.mkdir()
    path = parent / "art"
    argv = [sys.executable, "-c", PACKAGE, str(ROOT), str(data), str(path)]
    for moment, event in _package_moments(parent).items():
        _kill_at(argv, tmp_path, event)
        assert _accepted(tmp_path) == [], f"killed {moment}: a directory verifies"
        assert not path.exists(), f"killed {moment}"
    assert _hidden(parent, ".")  # what the killed runs left: staging they never finished
    capsys.readouterr()

    packaged = package_cancer(cancer, path)  # the next package to the same path works
    assert _accepted(tmp_path) == [path]
    assert _hidden(parent, ".") == []  # and it removed what the killed runs left
    assert sorted(p.name for p in parent.iterdir()) == ["art"]
    assert packaged.result.mlflow is not None


def test_a_marked_directory_is_no_artifact(cancer_art, tmp_path, capsys):
    root = copy_artifact(cancer_art, tmp_path / "art")
    (root / STAGING_MARKER).touch()
    assert cli.main(["verify", str(root)]) == cli.EXIT_ERROR
    assert "is a packaging staging directory, not an artifact" in capsys.readouterr().err
    with pytest.raises(IntegrityError, match="packaging staging directory"):
        nbprod.load(root)


HOLD = """
import sys
from pathlib import Path
from nbprod.core.staging import StagingDir
d = StagingDir.create(Path(sys.argv[1]), "x")
print(d.path, flush=True)
sys.stdin.readline()
"""


def test_stale_staging_is_removed_only_when_its_owner_is_gone(tmp_path):
    def owner() -> tuple[subprocess.Popen, Path]:
        p = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return p, Path(p.stdout.readline().strip())

    live, live_dir = owner()
    dead, dead_dir = owner()
    os.kill(dead.pid, signal.SIGKILL)
    dead.wait()
    mine = StagingDir.create(tmp_path, "mine")  # held by this process
    try:
        assert remove_stale(tmp_path) == [dead_dir]
        assert live_dir.is_dir() and mine.path.is_dir() and not dead_dir.exists()
    finally:
        live.communicate("\n", timeout=30)
        mine.remove()
    assert remove_stale(tmp_path) == [live_dir]  # its owner has ended without cleaning up
    assert list(tmp_path.iterdir()) == []


# -- scoring --------------------------------------------------------------------------------
FINALS = ["p.csv", "p.issues.csv", "s.json", "r.ipynb", "r.html"]


def _staged(out: Path, name: str) -> Event:
    def event(me: psutil.Process) -> bool:
        return any((d / "out" / name).exists() for d in _hidden(out, ".nbprod-run."))
    return event


@pytest.mark.slow
def test_kill_9_of_nbprod_score_leaves_none_of_its_outputs(cancer_art, tmp_path):
    write_csv(cancer_art.batch, tmp_path / "in.csv")
    out = tmp_path / "out"
    out.mkdir()
    argv = [*_console_script(), "score", str(cancer_art.path), "in.csv", "-o", "out/p.csv",
            "--summary", "out/s.json", "--report", "out/r.ipynb", "--html", "out/r.html",
            "--no-mlflow"]
    kernel = _child_running("ipykernel")
    moments = {
        "the kernel was starting": lambda me: bool(_hidden(out, ".nbprod-run.")),
        "the kernel had written the predictions": _staged(out, "p.csv"),
        "the kernel was done and the HTML was being written":
            lambda me: _staged(out, "r.ipynb")(me) and not kernel(me),
    }
    for moment, event in moments.items():
        _kill_at(argv, tmp_path, event)
        left = [n for n in FINALS if (out / n).exists()]
        assert left == [], f"killed when {moment}: {left} exist"
    assert _hidden(out, ".nbprod-run.")  # staging of the killed runs

    proc = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode in (cli.EXIT_OK, cli.EXIT_ALERT), proc.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(FINALS)  # stale staging removed


@pytest.mark.slow
def test_a_failing_score_leaves_none_of_its_outputs(cancer_art, tmp_path, capfd):
    bad = cancer_art.batch.drop(columns=["mean_area"])
    write_csv(bad, tmp_path / "in.csv")
    out = tmp_path / "out"
    out.mkdir()
    rc = cli.main(["score", str(cancer_art.path), str(tmp_path / "in.csv"), "-o",
                   str(out / "p.csv"), "--summary", str(out / "s.json"), "--report",
                   str(out / "r.ipynb"), "--html", str(out / "r.html"), "--no-mlflow"])
    assert rc == cli.EXIT_ERROR
    assert "missing column 'mean_area'" in capfd.readouterr().err
    assert list(out.iterdir()) == []  # no output, no report of the failure, no staging


def _from_a_terminal(argv: list[str]) -> list[str]:
    """``argv`` run with Ctrl-C's default disposition, as a terminal starts it. A test runner
    that ignores SIGINT (a background job of a non-interactive shell, nohup) passes that on to
    its children, and a Python started with SIGINT ignored never raises KeyboardInterrupt."""
    restore = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
               "os.execv(sys.argv[1], sys.argv[1:])")
    return [sys.executable, "-c", restore, *argv]


@pytest.mark.slow
def test_ctrl_c_of_nbprod_score_removes_everything_it_started(cancer_art, tmp_path):
    write_csv(cancer_art.batch, tmp_path / "in.csv")
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(_from_a_terminal([*_console_script(), "score", str(cancer_art.path),
                                              "in.csv", "-o", "out/p.csv", "--report",
                                              "out/r.ipynb", "--no-mlflow"]),
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    me = psutil.Process(proc.pid)
    kernel = _child_running("ipykernel")
    deadline = time.monotonic() + 300
    while not (kernel(me) and _staged(out, "r.ipynb")(me)) and time.monotonic() < deadline:
        time.sleep(0.01)
    children = me.children(recursive=True)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130 and stdout == "" and stderr == ""
    _, alive = psutil.wait_procs(children, timeout=30)
    assert not alive  # the kernel was shut down
    assert list(out.iterdir()) == []  # no output and no staging directory


def _stage_and_sweep(parent: str, times: int) -> int:
    """Create staging directories while sweeping stale ones, as concurrent runs in one output
    directory do; return how many of its own live directories vanished."""
    lost = 0
    for _ in range(times):
        d = StagingDir.create(Path(parent), "nbprod-run")
        remove_stale(Path(parent))
        if d.path.exists():
            d.remove()
        else:
            lost += 1
    return lost


def test_concurrent_runs_never_take_a_live_staging_directory_for_a_stale_one(tmp_path):
    # A marker that is visible before it is locked looks abandoned to a sweeping neighbour,
    # which then deletes a live run's outputs (seen as a flaky eight-runs-at-once test)
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(6) as pool:
        results = pool.starmap(_stage_and_sweep, [(str(tmp_path), 150)] * 6)
    assert sum(results) == 0
    assert list(tmp_path.iterdir()) == []
