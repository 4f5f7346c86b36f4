"""``nbprod score`` (a batch through the artifact's scoring notebook) and ``nbprod report``
(an executed report notebook as a self-contained HTML page)."""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

from ..exceptions import NbprodError, NbprodUsageError
from .base import EXIT_OK, add_trusted_key, exit_code, warn


def _share(text: str) -> float:
    """``--max-rejected``: a share in [0, 1] (``0.01``) or a percentage (``1%``)."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a share of the input rows in [0, 1] such as 0.01, or a percentage such "
            f"as 1%; got {text[:40]!r}")
    return value


# -- score ----------------------------------------------------------------------------------
def score_outputs(args: argparse.Namespace) -> dict[str, str | None]:
    """What ``nbprod score`` writes, flag -> path as typed. Each is checked before any work
    (:func:`nbprod.jobs.usage.check_outputs`, in this order, so a problem names the flag the user
    typed before a derived default), written into staging beside its final path and published
    together at the end in :data:`PUBLISH_ORDER`: a new output flag is one more entry in each."""
    from ..core.rows import default_issues_path

    return {"--output": args.output, "--issues": args.issues or str(default_issues_path(args.output)),
            "--summary": args.summary, "--report": args.report, "--html": args.html}


PUBLISH_ORDER = ("--report", "--html", "--summary", "--issues", "--output")  # predictions last


def run_score(args: argparse.Namespace) -> int:
    from ..core.dataio import file_format
    from ..core.sources import is_pattern, resolve
    from ..core.staging import StagedOutputs
    from ..core.trust import child_environment
    from ..jobs.engines import check_engine
    from ..jobs.kernel import run_notebook
    from ..jobs.run import RUN_OPTIONS_ENV, is_directory_output
    from ..jobs.usage import check_outputs

    root, check = verified_artifact(args.artifact, args.trusted_key)
    engine = check_engine(args.engine)
    if args.scheduler and engine != "dask":
        raise NbprodUsageError("--scheduler names a Dask scheduler: add --engine dask.")
    inp = args.input if is_pattern(args.input) and not Path(args.input).exists() \
        else str(Path(args.input).absolute())
    resolve(args.input, "INPUT")  # a file, a directory, a glob; no kernel for an empty file
    if is_directory_output(args.output):
        if engine != "dask":
            raise NbprodUsageError(
                f"--output {args.output!r} ends with a separator: a directory of Parquet parts "
                "is written by --engine dask only; name a file (CSV or Parquet).")
    else:
        file_format(args.output, "--output")  # messages quote the paths as the user typed them
    if args.issues:
        file_format(args.issues, "--issues")
    if args.labels:
        input_file("--labels", args.labels)
    finals = check_outputs(score_outputs(args), artifact=root,
                           inputs={"INPUT": args.input, "--labels": args.labels})
    challenger = challenger_options(args, engine, check.manifest)

    # the kernel writes only into staging; nothing reaches a final path unless all succeeded
    with StagedOutputs(finals) as staged:
        work = staged.work_dir()
        summary = staged.path("--summary") if args.summary else work / "summary.json"
        report = staged.path("--report") if args.report else work / "report.ipynb"
        params = {
            "input_path": inp,
            "output_path": str(finals["--output"]),
            "labels_path": str(Path(args.labels).absolute()) if args.labels else None,
            "summary_path": str(finals["--summary"]) if args.summary else str(summary),
            "artifact_path": str(root),
        }
        if args.drift_runs is not None:
            params["drift_runs"] = args.drift_runs
        params["issues_path"] = str(finals["--issues"])
        if args.max_rejected is not None:
            params["max_rejected"] = args.max_rejected
        if args.no_mlflow:
            params["log_to_mlflow"] = False
        notebook = work / "score.ipynb"  # run the bytes whose hash matched, not the file
        notebook.write_bytes(verified_notebook(check))
        from ..core.progress import follow

        progress = work / "progress.txt"
        options = {"engine": engine, "scheduler": args.scheduler, "chunk_rows": args.chunk_rows,
                   "progress": str(progress), "progress_shown": False, **challenger}
        if args.explain_drift is not None:
            options["explain_drift"] = args.explain_drift
        env = {**staged.handed_to_kernel(), RUN_OPTIONS_ENV: json.dumps(options)}
        shown = follow(progress, desc=f"nbprod score {Path(args.input).name}")
        try:
            with child_environment(check, args.trusted_key):
                run_notebook(notebook, report, params, env=env)
        finally:
            shown.stop()
        result = json.loads(summary.read_text())
        status = result["status"]
        if args.html:
            from ..jupyter.html_export import write_html

            write_html(report, staged.path("--html"))
        run_id = (result.get("tracking") or {}).get("run_id")
        if run_id:  # the executed report joins the run the notebook logged
            from ..tracking.runs import log_file

            try:
                log_file(run_id, str(report))
            except NbprodError as exc:  # the outputs are complete; say what MLflow lacks
                warn(f"the report was not attached to MLflow run {run_id}: {exc}")
        staged.publish(PUBLISH_ORDER)
    print(f"nbprod: scored {args.input} -> {args.output} (status {status})")
    if result.get("issues_path") and (result.get("rejected") or result.get("flagged")):
        rejected, flagged, rows_in = result["rejected"], result["flagged"], result["rows_in"]
        said = (f"{rejected:,} of {rows_in:,} rows rejected (not scored), {flagged:,} flagged"
                if rejected else f"{flagged:,} of {rows_in:,} rows flagged (scored, outside "
                "what the model saw)")
        print(f"nbprod: {said}: issues in {result['issues_path']}")
    for c in result["checks"]:
        if c["status"] in ("warn", "fail"):
            print(f"  {c['status'].upper():<5} {c['name']}: {c['message']}")
    retrain = result.get("retrain") or {}
    if retrain.get("recommended"):
        print("nbprod: retraining is recommended: " + "; ".join(retrain["reasons"]))
    if args.report:
        print(f"nbprod: report {args.report}")
    if args.html:
        print(f"nbprod: HTML report {args.html}")
    return exit_code(result)


def challenger_options(args: argparse.Namespace, engine: str,
                       champion: dict[str, Any]) -> dict[str, Any]:
    """``--shadow`` / ``--ab`` with ``--ab-split``, checked, the challenger verified exactly as
    the champion (the same trusted keys; a registry copy pinned), as run options for the kernel
    (:data:`nbprod.jobs.run.RUN_OPTIONS_ENV`): artifacts packaged before these flags take them."""
    from ..jobs.challenger import AB, check_options

    target, mode, split = check_options(args.shadow, args.ab, args.ab_split, engine, flags=True)
    if not target:
        return {}
    out: dict[str, Any] = {}
    if mode == AB:
        out["ab_split"] = split
        if not champion.get("id_column"):
            raise NbprodUsageError(
                f"--ab assigns rows to arms by their id, and artifact {args.artifact!r} has no id "
                "column. Package the champion with an id (snapshot(..., id=COLUMN)), or use "
                "--shadow, which needs none.")
    root, check = verified_artifact(target, args.trusted_key)
    out[mode] = str(root)
    if str(target).startswith("models:/"):  # the copy matched the registered digest here
        out["challenger_pin"] = [str(target), check.digest]
    return out


def _split(text: str) -> float:
    """``--ab-split``: a share strictly between 0 and 1."""
    from ..jobs.challenger import check_split

    try:
        return check_split(text)
    except NbprodUsageError:
        raise argparse.ArgumentTypeError(
            f"expected the challenger's share of the rows, a number strictly between 0 and 1 "
            f"such as 0.1; got {text[:40]!r}") from None


def verified_artifact(target: str, trusted_keys: list[str] | None) -> tuple[Path, Any]:
    """The artifact's local root and its whole verification, done before any of its code runs.

    A ``models:/NAME@ALIAS`` or ``models:/NAME/N`` target is downloaded (into a temporary
    directory removed at exit) and pinned to the digest ``nbprod register`` recorded.
    """
    from ..core.trust import verify

    pin = None
    if str(target).startswith("models:/"):
        import atexit
        import shutil

        from ..tracking.resolve import local_copy

        dst = tempfile.mkdtemp(prefix="nbprod-registry-")
        atexit.register(shutil.rmtree, dst, True)
        root, pin = local_copy(str(target), dst=dst)
    else:
        root = Path(target).absolute()
    check = verify(root, trusted_keys=trusted_keys, pin=pin)
    check.raise_for_problems()
    return root, check


def verified_notebook(check: Any) -> bytes:
    from ..exceptions import IntegrityError

    data = check.contents.get("score.ipynb")
    if data is None:  # only a file beyond manifest.KEEP_BYTES_LIMIT is not kept
        raise IntegrityError(f"Artifact {check.root}: score.ipynb is too large to be an nbprod "
                             "scoring notebook.", path="score.ipynb")
    return data


def input_file(flag: str, value: str, *, empty_too: bool = False) -> None:
    """Refuse an input file given at ``flag`` that is missing, a directory or (with
    ``empty_too``) empty, before any kernel starts (``nbprod score``, ``nbprod explain``)."""
    from ..core.text import quote
    from ..exceptions import InputError

    p = Path(value)
    try:
        if p.is_dir():
            raise InputError(f"{flag} {quote(value)} is a directory, not a file.")
        if not p.is_file():
            raise InputError(f"{flag} {quote(value)} does not exist.")
        if empty_too and p.stat().st_size == 0:
            raise InputError(f"{flag} {quote(value)} is empty.")
    except OSError as exc:  # e.g. a name longer than the file system allows
        raise InputError(f"{flag} {quote(value)} cannot be read: {exc.strerror or exc}.") from None


def add_score(sub: Any) -> None:
    p = sub.add_parser("score", help="score a file with an artifact (runs score.ipynb via papermill)")
    p.add_argument("artifact", metavar="PATH",
                   help="the artifact directory, or models:/NAME@ALIAS or models:/NAME/N")
    p.add_argument("input", metavar="INPUT",
                   help="CSV or Parquet file to score; or a directory of them, a glob "
                        "('data/*.parquet') or a Hive-partitioned directory, read as one batch")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="where to write predictions (CSV or Parquet)")
    p.add_argument("--labels", metavar="FILE", help="labels for this batch (target and id)")
    p.add_argument("--report", metavar="NB", help="keep the executed report notebook here")
    p.add_argument("--summary", metavar="JSON", help="write the run summary JSON here")
    p.add_argument("--html", metavar="FILE", help="also write the report as self-contained HTML")
    p.add_argument("--drift-runs", type=_drift_runs_type(), metavar="N",
                   help="consecutive drifted runs before retraining is recommended (default 3, "
                   "at most 21)")
    p.add_argument("--no-mlflow", action="store_true", help="do not record the run in MLflow")
    p.add_argument("--issues", metavar="PATH",
                   help="where to write the rejected and flagged rows (default: beside the output "
                        "as OUTPUT-STEM.issues.EXT)")
    p.add_argument("--max-rejected", type=_share, metavar="SHARE",
                   help="rejected share of the input rows above which the run alerts (exit 3); "
                        "default 0.01 (1%%)")
    p.add_argument("--chunk-rows", type=_chunk_rows_type(), metavar="N",
                   help="rows read and scored at a time: memory is bounded by the chunk "
                        "(default 250000)")
    p.add_argument("--engine", choices=("local", "dask"), default="local",
                   help="local: this machine, chunk after chunk (default); dask: a Dask "
                        "cluster (a LocalCluster of one worker per core unless --scheduler)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="an existing Dask scheduler, e.g. tcp://host:8786 (default: "
                        "DASK_SCHEDULER_ADDRESS, else a LocalCluster)")
    p.add_argument("--explain-drift", type=_explain_drift_type, metavar="auto|full|off|SECONDS",
                   help="explanation drift and the report's explained rows: auto (default: "
                        "within a budget of 1 s or 10%% of the run's time so far, whichever "
                        "is larger), full (always), off, or a budget in seconds")
    p.add_argument("--shadow", metavar="CHALLENGER",
                   help="also score every row with this challenger artifact (path or "
                        "models:/NAME@ALIAS) and compare; the output stays the champion's")
    p.add_argument("--ab", metavar="CHALLENGER",
                   help="serve an id-hashed share of the rows (--ab-split) with this challenger; "
                        "the output gains served_by")
    p.add_argument("--ab-split", type=_split, metavar="FRACTION",
                   help="the A/B challenger's share of the rows, strictly between 0 and 1")
    add_trusted_key(p)
    p.set_defaults(run=run_score)


def _explain_drift_type(value: str) -> Any:
    from ..monitoring.explanations import check_mode

    try:
        return check_mode(value)
    except NbprodUsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def _chunk_rows_type() -> Any:
    from ..jobs.usage import whole_number_type

    return whole_number_type(1, 10**12)


def _drift_runs_type() -> Any:
    from ..jobs.usage import DRIFT_RUNS, whole_number_type

    return whole_number_type(*DRIFT_RUNS)


# -- report ---------------------------------------------------------------------------------
def run_report(args: argparse.Namespace) -> int:
    from ..jupyter.html_export import write_html

    if not args.html:
        raise NbprodUsageError("nbprod report: say what to write, e.g. --html [-o FILE].")
    from ..jobs.usage import check_outputs

    target = args.output or Path(args.notebook).with_suffix(".html")
    check_outputs({"-o" if args.output else "the HTML report": target},
                  inputs={"OUT.ipynb": args.notebook})
    out = write_html(args.notebook, args.output)
    print(f"nbprod: HTML report {out} ({out.stat().st_size / 1024:.0f} KiB, code hidden, no external URLs)")
    return EXIT_OK


def add_report(sub: Any) -> None:
    p = sub.add_parser("report", help="turn an executed report notebook into a self-contained page")
    p.add_argument("notebook", metavar="OUT.ipynb", help="an executed score.ipynb")
    p.add_argument("--html", action="store_true", help="write HTML with the code hidden")
    p.add_argument("-o", "--output", metavar="FILE", help="where (default: next to the notebook)")
    p.set_defaults(run=run_report)


