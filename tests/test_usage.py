"""Paths and flags of a scoring run, refused before any work (``nbprod.jobs.usage``).

Every refusal here is a usage error: exit 2, one line naming the flag and the path as the user
typed it, and nothing written (no output, no staging directory, no temporary file). Most cases
call ``cli.main`` in-process, since they are refused before a kernel starts; the read-only
directory goes through the real console script.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from nbprod import cli
from nbprod.core.text import quote
from nbprod.exceptions import NbprodUsageError
from nbprod.jobs import run as nbrun
from nbprod.jobs.usage import check_outputs, whole_number

from .artifacts import write_csv
from .test_cli import _console_script, _one_line


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.fixture
def batch_dir(cancer_art, in_tmp) -> Path:
    write_csv(cancer_art.batch.head(5), in_tmp / "in.csv")
    write_csv(cancer_art.labels.head(5), in_tmp / "labels.csv")
    (in_tmp / "out").mkdir()
    os.symlink(in_tmp / "in.csv", in_tmp / "link.csv")
    os.link(in_tmp / "in.csv", in_tmp / "hard.csv")
    os.symlink(cancer_art.path, in_tmp / "art-link")
    (in_tmp / "taken.csv").mkdir()
    return in_tmp


REFUSED = {
    # id: (arguments after ART INPUT, what the one line must say)
    "output-is-input": (["-o", "in.csv"],
                        "--output 'in.csv' is the same file as INPUT 'in.csv'"),
    "output-is-input-by-symlink": (["-o", "link.csv"],
                                   "--output 'link.csv' is the same file as INPUT"),
    "output-is-input-by-hard-link": (["-o", "hard.csv"],
                                     "--output 'hard.csv' is the same file as INPUT"),
    "output-is-input-by-relative-path": (["-o", "out/../in.csv"],
                                         "--output 'out/../in.csv' is the same file as INPUT"),
    "summary-is-labels": (["-o", "out/p.csv", "--labels", "labels.csv", "--summary",
                           "labels.csv"],
                          "--summary 'labels.csv' is the same file as --labels 'labels.csv'"),
    "output-inside-artifact": (["-o", "{art}/preds.csv"], "lies inside the artifact"),
    "report-inside-artifact-by-symlink": (["-o", "out/p.csv", "--report", "art-link/r.ipynb"],
                                          "--report 'art-link/r.ipynb' lies inside the artifact"),
    "report-equals-summary": (["-o", "out/p.csv", "--report", "out/r.json", "--summary",
                               "out/r.json"],
                              "--report 'out/r.json' is the same file as --summary 'out/r.json'"),
    "html-equals-output": (["-o", "out/p.csv", "--html", "out/p.csv"],
                           "--html 'out/p.csv' is the same file as --output 'out/p.csv'"),
    "output-is-a-directory": (["-o", "taken.csv"], "--output 'taken.csv' is a directory"),
    "output-missing-directory": (["-o", "nodir/p.csv"],
                                 "--output 'nodir/p.csv': directory '{tmp}/nodir' does not exist"),
    "summary-missing-directory": (["-o", "out/p.csv", "--summary", "nodir/s.json"],
                                  "--summary 'nodir/s.json': directory"),
    "report-missing-directory": (["-o", "out/p.csv", "--report", "no/dir/r.ipynb"],
                                 "--report 'no/dir/r.ipynb': directory '{tmp}/no/dir' does not"),
    "html-missing-directory": (["-o", "out/p.csv", "--html", "nodir/r.html"],
                               "--html 'nodir/r.html': directory"),
    "a-file-where-a-directory-is": (["-o", "in.csv/p.csv"],
                                    "--output 'in.csv/p.csv': '{tmp}/in.csv' is a file, not a"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_score_refuses_output_paths(cancer_art, batch_dir, capsys, case):
    args, needle = REFUSED[case]
    args = [a.format(art=cancer_art.path) for a in args]
    before = _listing(batch_dir)
    rc = cli.main(["score", str(cancer_art.path), "in.csv", *args, "--no-mlflow"])
    line = _one_line(capsys.readouterr().err)
    assert rc == cli.EXIT_USAGE, line
    assert needle.format(tmp=batch_dir, art=cancer_art.path) in line
    assert _listing(batch_dir) == before  # nothing written, not even a staging directory


def test_score_refuses_an_output_in_a_read_only_directory(cancer_art, tmp_path):
    """Through the console script, in a directory that is really read-only: a read-only bind
    mount in a private mount namespace (chmod stops nobody when the tests run as root)."""
    write_csv(cancer_art.batch.head(5), tmp_path / "in.csv")
    locked = tmp_path / "locked"
    locked.mkdir()
    argv = [*_console_script(), "score", str(cancer_art.path), "in.csv", "-o",
            "locked/preds.csv", "--no-mlflow"]
    proc = subprocess.run([*_read_only(locked), *argv], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == cli.EXIT_USAGE, proc.stderr
    line = _one_line(proc.stderr)
    assert (f"--output 'locked/preds.csv': directory '{locked}' is not writable (read-only file "
            "system or no write permission)") in line
    assert ".nbprod" not in line and ".tmp" not in line  # the user's path, no temporary name
    assert list(locked.iterdir()) == []
    assert _listing(tmp_path) == ["in.csv", "locked"]


def _read_only(directory: Path) -> list[str]:
    """A command prefix under which ``directory`` is read-only, for real."""
    if shutil.which("unshare") and subprocess.run(["unshare", "-rm", "true"]).returncode == 0:
        remount = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0" && exec "$@"'
        return ["unshare", "-rm", "sh", "-c", remount, str(directory)]
    if os.geteuid() != 0:
        directory.chmod(0o555)
        return []
    pytest.fail("no way to make a read-only directory here: neither user namespaces (unshare) "
                "nor a non-root user")


@pytest.mark.parametrize("value", ["0", "-1", "22", "2.5", "many"])
def test_drift_runs_out_of_range_is_a_usage_error(in_tmp, capsys, value):
    with pytest.raises(SystemExit) as exc:
        cli.main(["score", "art", "in.csv", "-o", "p.csv", "--drift-runs", value])
    assert exc.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert f"argument --drift-runs: must be a whole number from 1 to 21; got '{value}'" in err
    assert list(in_tmp.iterdir()) == []


def test_report_refuses_to_write_html_over_its_notebook(in_tmp, capsys):
    (in_tmp / "run.ipynb").write_text("{}")
    assert cli.main(["report", "run.ipynb", "--html", "-o", "run.ipynb"]) == cli.EXIT_USAGE
    assert "-o 'run.ipynb' is the same file as OUT.ipynb 'run.ipynb'" in _one_line(
        capsys.readouterr().err)
    assert (in_tmp / "run.ipynb").read_text() == "{}"


def test_long_values_are_cut_in_messages(cancer_art, batch_dir, capsys):
    deep = "d" * 3000
    rc = cli.main(["score", str(cancer_art.path), "in.csv", "-o", f"{deep}/p.csv",
                   "--no-mlflow"])
    line = _one_line(capsys.readouterr().err)
    assert rc == cli.EXIT_USAGE
    assert len(line) < 500 and "..." in line and "p.csv" in line


# -- the same rules for papermill (nbprod.jobs.run.execute) ----------------------------------------
def test_execute_applies_the_same_rules(cancer_art, batch_dir):
    common = {"input_path": "in.csv", "artifact_path": str(cancer_art.path),
              "log_to_mlflow": False}
    before = _listing(batch_dir)
    with pytest.raises(NbprodUsageError, match="output_path 'in.csv' is the same file as "
                                               "input_path 'in.csv'"):
        nbrun.execute(output_path="in.csv", **common)
    with pytest.raises(NbprodUsageError, match="summary_path 'out/p.csv' is the same file as "
                                               "output_path 'out/p.csv'"):
        nbrun.execute(output_path="out/p.csv", summary_path="out/p.csv", **common)
    with pytest.raises(NbprodUsageError, match="lies inside the artifact"):
        nbrun.execute(output_path=str(cancer_art.path / "p.csv"), **common)
    for bad in (0, -3, 22, True, 1.5, "3 runs"):
        with pytest.raises(NbprodUsageError, match="drift_runs must be a whole number from 1 "
                                                   "to 21"):
            nbrun.execute(output_path="out/p.csv", drift_runs=bad, **common)
    assert _listing(batch_dir) == before


# -- the helpers ----------------------------------------------------------------------------
def test_check_outputs_returns_absolute_paths_and_skips_absent_ones(in_tmp):
    got = check_outputs({"--output": "p.csv", "--report": None},
                        inputs={"INPUT": "in.csv", "--labels": None})
    assert got == {"--output": in_tmp / "p.csv"}


def test_quote_cuts_long_values_and_escapes_control_characters():
    assert quote("in.csv") == "'in.csv'"
    assert quote("a\nb") == "'a\\nb'"  # an echoed value never breaks a message into lines
    long = "/data/" + "x" * 500 + "/batch.csv"
    cut = quote(long, limit=60)
    assert len(cut) == 62 and cut.startswith("'/data/") and cut.endswith("/batch.csv'")


def test_whole_number_accepts_integral_values_only():
    assert whole_number("3", "n", minimum=1) == 3
    assert whole_number(4.0, "n", minimum=1, maximum=5) == 4
    with pytest.raises(NbprodUsageError, match="n must be a whole number of at least 1. Got '0'"):
        whole_number(0, "n", minimum=1)
