"""``nbprod explain``: per-row explanations of an artifact's predictions, written as a long table."""

from __future__ import annotations

import argparse
from typing import Any

from .base import EXIT_OK, add_trusted_key, warn


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number of rows; got {text[:40]!r}")
    return value


def _ids(text: str) -> list[str]:
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("expected one or more ids separated by commas, e.g. A17,A42")
    return ids


def run_explain(args: argparse.Namespace) -> int:
    from ..core.artifact import Artifact
    from ..core.dataio import file_format, read_frame, write_frame
    from ..core.schema import Schema
    from ..jobs.usage import check_outputs
    from .score import input_file, verified_artifact

    file_format(args.input, "INPUT")
    file_format(args.output, "--output")
    input_file("INPUT", args.input, empty_too=True)
    root, check = verified_artifact(args.artifact, args.trusted_key)
    finals = check_outputs({"--output": args.output}, artifact=root, inputs={"INPUT": args.input})
    art = Artifact(root, check.manifest, check)
    reading = Schema.from_list(art.snapshot("train")["schema"])  # text ids stay text (00042)
    df = read_frame(args.input, reading, what="INPUT")
    result = art.explain(df, rows=args.rows, ids=args.ids, method=args.method)
    for note in result.notes:
        warn(note)
    frame = result.frame
    if args.top is not None:
        frame = result.top(args.top)
    write_frame(frame, finals["--output"])
    asked = result.issues.rows_in
    print(f"nbprod: explained {result.rows:,} of {asked:,} rows -> {args.output} "
          f"(contributions on the {result.scale} scale, method {result.method})")
    if result.rejected:
        rejected = result.issues.frame[result.issues.frame["action"] == "rejected"]
        shown = ", ".join(f"row {int(r.row)} ({_where(r.column)} {r.rule})"
                          for r in rejected.drop_duplicates("row").head(5).itertuples())
        more = result.rejected - min(result.rejected, 5)
        rows = "row was" if result.rejected == 1 else "rows were"
        print(f"nbprod: {result.rejected:,} {rows} rejected as in scoring, not explained: {shown}"
              f"{f' and {more} more' if more else ''}")
    return EXIT_OK


def _where(column: Any) -> str:
    return column if isinstance(column, str) else "the model"


def add_explain(sub: Any) -> None:
    p = sub.add_parser("explain", help="explain predictions row by row: each model input's "
                                       "contribution (long table)")
    p.add_argument("artifact", metavar="PATH",
                   help="the artifact directory, or models:/NAME@ALIAS or models:/NAME/N")
    p.add_argument("input", metavar="INPUT", help="CSV or Parquet file with the rows to explain")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT",
                   help="where to write the explanations (CSV or Parquet)")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--rows", type=_positive, metavar="N", help="explain the first N rows")
    which.add_argument("--ids", type=_ids, metavar="ID,...",
                       help="explain the rows with these ids (the artifact's id column)")
    p.add_argument("--method", default="auto", metavar="METHOD",
                   help="auto (default: linear or tree when the model allows, else exact or "
                        "sampling), linear, tree (needs SHAP: pip install 'nbprod[explain]'), "
                        "exact, sampling")
    p.add_argument("--top", type=_positive, metavar="K",
                   help="keep only the K largest contributions of each row")
    add_trusted_key(p)
    p.set_defaults(run=run_explain)

