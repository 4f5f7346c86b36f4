"""The ``nbprod`` command line.

Exit codes: 0 ok, 1 error (nothing written), 2 usage error, 3 scored but a monitoring check
failed (predictions were written). Each subcommand is a parser builder plus a ``run_*(args)``
callable, testable without a subprocess.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from .exceptions import NbprodError, NbprodUsageError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_ALERT = 0, 1, 2, 3


def _err(message: str) -> None:
    print(f"nbprod: error: {message}", file=sys.stderr)


def _warn(message: str) -> None:
    print(f"nbprod: warning: {message}", file=sys.stderr)


def exit_code(outcome: Any) -> int:
    """The exit code of a scoring outcome, for the CLI and anyone who runs ``nbprod.run.execute``
    in-process: an exception (usage error 2, other NbprodError 1, Ctrl-C 130; anything else is
    a bug and is re-raised with its traceback), or a ScoringRun, summary dict or status string
    (``alert`` 3, otherwise 0)."""
    if isinstance(outcome, BaseException):
        if isinstance(outcome, NbprodUsageError):
            return EXIT_USAGE
        if isinstance(outcome, NbprodError):
            return EXIT_ERROR
        if isinstance(outcome, KeyboardInterrupt):
            return 130
        raise outcome
    if isinstance(outcome, str):
        status = outcome
    elif isinstance(outcome, dict):
        status = outcome["status"]
    else:
        status = outcome.status
    return EXIT_ALERT if status == "alert" else EXIT_OK


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
    (:func:`nbprod.usage.check_outputs`, in this order, so a problem names the flag the user
    typed before a derived default), written into staging beside its final path and published
    together at the end in :data:`PUBLISH_ORDER`: a new output flag is one more entry in each."""
    from .core.rows import default_issues_path

    return {"--output": args.output, "--issues": args.issues or str(default_issues_path(args.output)),
            "--summary": args.summary, "--report": args.report, "--html": args.html}


PUBLISH_ORDER = ("--report", "--html", "--summary", "--issues", "--output")  # predictions last


def run_score(args: argparse.Namespace) -> int:
    from .core.dataio import file_format
    from .core.staging import StagedOutputs
    from .core.trust import child_environment
    from .jobs.kernel import run_notebook
    from .jobs.usage import check_outputs

    root, check = verified_artifact(args.artifact, args.trusted_key)
    inp = Path(args.input).absolute()
    file_format(args.input, "INPUT")  # messages quote the paths as the user typed them
    file_format(args.output, "--output")
    if args.issues:
        file_format(args.issues, "--issues")
    _input_file("INPUT", args.input, empty_too=True)  # no kernel for a plainly empty file
    if args.labels:
        _input_file("--labels", args.labels)
    finals = check_outputs(score_outputs(args), artifact=root,
                           inputs={"INPUT": args.input, "--labels": args.labels})

    # the kernel writes only into staging; nothing reaches a final path unless all succeeded
    with StagedOutputs(finals) as staged:
        work = staged.work_dir()
        summary = staged.path("--summary") if args.summary else work / "summary.json"
        report = staged.path("--report") if args.report else work / "report.ipynb"
        params = {
            "input_path": str(inp),
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
        with child_environment(check, args.trusted_key):
            run_notebook(notebook, report, params, env=staged.handed_to_kernel())
        result = json.loads(summary.read_text())
        status = result["status"]
        if args.html:
            from .jupyter.html_export import write_html

            write_html(report, staged.path("--html"))
        run_id = (result.get("tracking") or {}).get("run_id")
        if run_id:  # the executed report joins the run the notebook logged
            from .tracking.runs import log_file

            try:
                log_file(run_id, str(report))
            except NbprodError as exc:  # the outputs are complete; say what MLflow lacks
                _warn(f"the report was not attached to MLflow run {run_id}: {exc}")
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


def verified_artifact(target: str, trusted_keys: list[str] | None) -> tuple[Path, Any]:
    """The artifact's local root and its whole verification, done before any of its code runs.

    A ``models:/NAME@ALIAS`` or ``models:/NAME/N`` target is downloaded (into a temporary
    directory removed at exit) and pinned to the digest ``nbprod register`` recorded.
    """
    from .core.trust import verify

    pin = None
    if str(target).startswith("models:/"):
        import atexit
        import shutil

        from .tracking.registry import download_pinned

        dst = tempfile.mkdtemp(prefix="nbprod-registry-")
        atexit.register(shutil.rmtree, dst, True)
        root, pin = download_pinned(str(target), dst=dst)
    else:
        root = Path(target).absolute()
    check = verify(root, trusted_keys=trusted_keys, pin=pin)
    check.raise_for_problems()
    return root, check


def verified_notebook(check: Any) -> bytes:
    from .exceptions import IntegrityError

    data = check.contents.get("score.ipynb")
    if data is None:  # only a file beyond manifest.KEEP_BYTES_LIMIT is not kept
        raise IntegrityError(f"Artifact {check.root}: score.ipynb is too large to be an nbprod "
                             "scoring notebook.", path="score.ipynb")
    return data


def _input_file(flag: str, value: str, *, empty_too: bool = False) -> None:
    from .core.text import quote
    from .exceptions import InputError

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
    p.add_argument("input", metavar="INPUT", help="CSV or Parquet file to score")
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
    add_trusted_key(p)
    p.set_defaults(run=run_score)


def add_trusted_key(p: Any) -> None:
    p.add_argument("--trusted-key", action="append", metavar="PUB.pem",
                   help="require a signature by this Ed25519 public key (repeatable; keys in "
                        "NBPROD_TRUSTED_KEYS count too)")


def _drift_runs_type() -> Any:
    from .jobs.usage import DRIFT_RUNS, whole_number_type

    return whole_number_type(*DRIFT_RUNS)


# -- verify ---------------------------------------------------------------------------------
def run_verify(args: argparse.Namespace) -> int:
    from .core.signing import read_signature
    from .core.trust import verify
    from .exceptions import IntegrityError

    result = verify(Path(args.artifact), trusted_keys=args.trusted_key)
    if not result.ok:
        for file, what in result.problems:
            print(f"FAIL {file}: {what}", file=sys.stderr)
        return EXIT_ERROR
    line = f"OK {args.artifact}: {result.checked} files match their SHA-256"
    if result.signed_by:
        line += f"; signed by trusted key {result.signed_by}"
    else:
        try:
            signature = read_signature(result.root)
        except IntegrityError as exc:  # not relied on without trusted keys, so only reported
            line += f"; {str(exc).rstrip('.')} (not checked: no trusted key given)"
        else:
            if signature:
                line += (f"; signed by key {signature['key'][:40]} (not checked: no trusted "
                         "key given)")
    print(line)
    return EXIT_OK


def add_verify(sub: Any) -> None:
    p = sub.add_parser("verify", help="check every file of an artifact against its hash "
                                      "(and its signature, with --trusted-key)")
    p.add_argument("artifact", metavar="PATH")
    add_trusted_key(p)
    p.set_defaults(run=run_verify)


# -- sign -----------------------------------------------------------------------------------
def run_sign(args: argparse.Namespace) -> int:
    from .core.signing import SIGNATURE, sign

    record = sign(Path(args.artifact), args.key)
    print(f"nbprod: signed {args.artifact} (digest {record['digest'][:16]}) with key "
          f"{record['key']}: {Path(args.artifact) / SIGNATURE}")
    return EXIT_OK


def add_sign(sub: Any) -> None:
    p = sub.add_parser("sign", help="sign an artifact with an Ed25519 private key (nbprod.sig)")
    p.add_argument("artifact", metavar="PATH")
    p.add_argument("--key", required=True, metavar="KEY.pem",
                   help="Ed25519 private key, PEM (openssl genpkey -algorithm ed25519)")
    p.set_defaults(run=run_sign)


# -- inspect --------------------------------------------------------------------------------
def run_inspect(args: argparse.Namespace) -> int:
    from .core import manifest as mf

    m = mf.read(Path(args.artifact))
    if args.json:
        print(json.dumps(m, indent=2))
        return EXIT_OK
    print(describe(m))
    return EXIT_OK


def describe(m: dict[str, Any]) -> str:
    lines = [
        f"{m['name']}  ({m['task']}, nbprod artifact format {m['format_version']})",
        f"  created     {m['created']}  by {m['provenance'].get('user')}",
        f"  model       {m['model']['class']} (skops; {len(m['model']['trusted_types'])} trusted types)",
        f"  features    {m['features']['function']}() in {m['features']['file']}",
        f"  target      {m['target']}" + (f"   id {m['id_column']}" if m.get("id_column") else ""),
    ]
    if m.get("classes") is not None:
        lines.append(f"  classes     {', '.join(map(str, m['classes']))}")
    lines.append(f"  inputs      {len(m['input_columns'])}: {', '.join(m['input_columns'][:12])}"
                 + (" ..." if len(m["input_columns"]) > 12 else ""))
    for role, s in m["snapshots"].items():
        found = s.get("pii_detected") or {}
        pii = (f", PII {', '.join(c + (' (detected)' if c in found else '') for c in s['pii'])}"
               if s.get("pii") else "")
        lines.append(f"  {role:<11} {s['rows']:,} rows, fingerprint {s['fingerprint'][:12]}{pii}")
    checks = m.get("checks") or []
    if checks:
        lines.append("  checks")
        lines += [f"    {c['status'].upper():<5} {c['name']}: {c['message']}" for c in checks]
    else:
        lines.append("  checks      none recorded")
    if m.get("override"):
        o = m["override"]
        lines.append(f"  OVERRIDE    {o['by']} packaged past failed checks {', '.join(o['checks'])} at {o['at']}")
    prov = m["provenance"]
    if prov.get("notebook"):
        lines.append(f"  notebook    {prov['notebook']}")
    if prov.get("git"):
        g = prov["git"]
        lines.append(f"  git         {g['commit'][:12]}{' (dirty)' if g['dirty'] else ''} on {g.get('branch')}")
    env = m["environment"]
    pk = env["packages"]
    lines.append(f"  environment Python {env['python']}, nbprod {env['nbprod']}, scikit-learn "
                 f"{pk.get('scikit-learn')}, pandas {pk.get('pandas')}")
    lines.append(f"  files       {len(m['files'])} (run `nbprod verify` to check their hashes)")
    return "\n".join(lines)


def add_inspect(sub: Any) -> None:
    p = sub.add_parser("inspect", help="a human summary of an artifact")
    p.add_argument("artifact", metavar="PATH")
    p.add_argument("--json", action="store_true", help="print the whole manifest as JSON")
    p.set_defaults(run=run_inspect)


# -- report ---------------------------------------------------------------------------------
def run_report(args: argparse.Namespace) -> int:
    from .jupyter.html_export import write_html

    if not args.html:
        raise NbprodUsageError("nbprod report: say what to write, e.g. --html [-o FILE].")
    from .jobs.usage import check_outputs

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


# -- history --------------------------------------------------------------------------------
def run_history(args: argparse.Namespace) -> int:
    from .tracking.runs import history_of

    runs = history_of(args.artifact, all_artifacts=args.all)
    name = args.artifact
    if args.json:
        print(runs.to_json(orient="records", date_format="iso"))
        return EXIT_OK
    if runs.empty:
        from .core.text import quote

        print(f"nbprod: no monitoring runs recorded for {quote(name)} yet.")
        return EXIT_OK
    print(format_history(runs))
    return EXIT_OK


def format_history(runs: Any) -> str:
    """One line per run with arrows for the trend of the key figures."""
    figures = [c for c in runs.columns if c in ("drift_share", "out_of_bounds") or c.startswith("perf_")]
    header = f"{'started':<17} {'status':<6} {'rows':>9}  " + "  ".join(f"{f:>16}" for f in figures)
    lines = [header]
    prev = None
    for _, r in runs.iterrows():
        cells = []
        for f in figures:
            v = r.get(f)
            arrow = " "
            if prev is not None and v == v and prev.get(f) == prev.get(f):
                arrow = "↑" if v > prev[f] else ("↓" if v < prev[f] else "=")
            cells.append(f"{'' if v != v else f'{v:.4g}':>15}{arrow}")
        rows = r.get("rows")
        lines.append(f"{str(r['start_time'])[:16]:<17} {str(r.get('status')):<6} "
                     f"{'' if rows != rows else int(rows):>9}  " + "  ".join(cells))
        prev = r
    return "\n".join(lines)


def add_history(sub: Any) -> None:
    p = sub.add_parser("history", help="monitoring runs of an artifact, with trends")
    p.add_argument("artifact", metavar="PATH", help="an artifact directory (or a model name)")
    p.add_argument("--all", action="store_true", help="every artifact of the model, not only this one")
    p.add_argument("--json", action="store_true", help="print the runs as JSON")
    p.set_defaults(run=run_history)


# -- main -----------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="nbprod", description=(
        "Score, verify, inspect and monitor nbprod artifacts. Exit codes: 0 ok, 1 error (nothing "
        "written), 2 usage error, 3 scored but a monitoring check failed."))
    parser.add_argument("--version", action="version", version=f"nbprod {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    from .cli_lifecycle import ADDERS

    for add in (add_score, add_verify, add_sign, add_inspect, add_report, add_history, *ADDERS):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except (NbprodError, KeyboardInterrupt) as exc:
        code = exit_code(exc)
        if code == EXIT_USAGE:
            _err(str(exc))
        elif code == EXIT_ERROR:
            _err(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return code


if __name__ == "__main__":
    sys.exit(main())
