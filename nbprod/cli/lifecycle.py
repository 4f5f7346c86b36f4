"""The model's lifecycle: ``nbprod register``, ``retrain``, ``compare``, ``approve`` and ``promote``."""

from __future__ import annotations

import argparse
from typing import Any

from ..core.results import number
from ..core.user import user_name as _user
from .base import EXIT_OK


def run_register(args: argparse.Namespace) -> int:
    from ..tracking.registry import register

    r = register(args.artifact, require_approval=True if args.require_approval else None)
    verb = "registered" if r["created"] else "already registered as"
    print(f"nbprod: {verb} {r['uri']} ({', '.join(r['aliases']) or 'no alias'})")
    if r.get("note"):
        print(f"nbprod: {r['note']}")
    return EXIT_OK


def add_register(sub: Any) -> None:
    p = sub.add_parser("register", help="create an MLflow Model Registry version for an artifact")
    p.add_argument("artifact", metavar="PATH")
    p.add_argument("--require-approval", action="store_true",
                   help="promotions of this model need `nbprod approve` first")
    p.set_defaults(run=run_register)


def run_retrain(args: argparse.Namespace) -> int:
    from ..lifecycle.retrain import parse_params, retrain

    r = retrain(args.artifact, output=args.output, params=parse_params(args.param or []),
                feedback=args.feedback, report=args.report, register=args.register)
    print(f"nbprod: retrained -> {r['artifact']} (executed notebook {r['notebook']})")
    if r.get("registry"):
        reg = r["registry"]
        print(f"nbprod: registered {reg['uri']} ({', '.join(reg['aliases']) or 'no alias'})")
    return EXIT_OK


def add_retrain(sub: Any) -> None:
    p = sub.add_parser("retrain", help="re-run the artifact's training notebook on new data")
    p.add_argument("artifact", metavar="PATH")
    p.add_argument("--param", action="append", metavar="NAME=VALUE",
                   help="a parameter of the training notebook (repeatable)")
    p.add_argument("--feedback", metavar="FILE", help="reviewers' feedback (Parquet) to merge")
    p.add_argument("-o", "--output", required=True, metavar="NEW_PATH", help="the new artifact")
    p.add_argument("--report", metavar="NB", help="where to keep the executed training notebook")
    p.add_argument("--register", action="store_true", help="register the new artifact (challenger)")
    p.set_defaults(run=run_retrain)


def run_compare(args: argparse.Namespace) -> int:
    from ..lifecycle.compare import compare

    c = compare(args.champion, args.challenger, args.data, labels=args.labels,
                metric=args.metric, margin=args.margin, report=args.report,
                record=not args.no_mlflow)
    if args.json:
        from ..core.files import dumps

        print(dumps(c.to_dict(), indent=2, default=str))
        return EXIT_OK
    print(f"nbprod: {c.rows:,} rows; agreement {c.agreement:.1%}; verdict {c.verdict.upper()}")
    for metric, pair in c.metrics.items():
        print(f"  {metric:<24} champion {number(pair.get('champion', float('nan')))}   "
              f"challenger {number(pair.get('challenger', float('nan')))}")
    if c.gain is not None:
        print(f"  gain in {c.metric}: {number(c.gain)} (margin {c.margin:g})")
    if c.recorded.get("version"):
        print(f"nbprod: verdict recorded on {c.challenger.name} version {c.recorded['version']}")
    if c.report:
        print(f"nbprod: report {c.report}")
    return EXIT_OK


def add_compare(sub: Any) -> None:
    p = sub.add_parser("compare", help="champion vs challenger on the same data")
    p.add_argument("champion", metavar="CHAMPION", help="artifact path or models:/NAME@champion")
    p.add_argument("challenger", metavar="CHALLENGER", help="artifact path or registry URI")
    p.add_argument("data", metavar="DATA", help="CSV or Parquet to score with both")
    p.add_argument("--labels", metavar="FILE", help="labels for DATA (target and id)")
    p.add_argument("--metric", metavar="M", help="primary metric (default roc_auc / r2)")
    p.add_argument("--margin", type=float, default=0.0, metavar="X",
                   help="the challenger must beat the champion by at least X (default 0)")
    p.add_argument("--report", metavar="NB", default="comparison.ipynb",
                   help="report notebook (default comparison.ipynb)")
    p.add_argument("--no-mlflow", action="store_true", help="do not record the verdict")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(run=run_compare)


def run_approve(args: argparse.Namespace) -> int:
    from ..tracking.registry import approve

    r = approve(args.target, by=args.by, note=args.note or "")
    print(f"nbprod: {r['name']} version {r['version']} approved by {r['approved_by']}")
    return EXIT_OK


def add_approve(sub: Any) -> None:
    p = sub.add_parser("approve", help="record a human approval for promotion")
    p.add_argument("target", metavar="PATH", help="artifact path or models:/NAME/VERSION")
    p.add_argument("--by", required=True, metavar="NAME")
    p.add_argument("--note", metavar="TEXT")
    p.set_defaults(run=run_approve)


def run_promote(args: argparse.Namespace) -> int:
    from ..lifecycle.promotion import evidence_for, promote

    ev = evidence_for(args.target, min_effect=args.min_effect, confidence=args.confidence)
    if ev["judged"]:
        print(f"nbprod: evidence over {ev['runs']:,} shadow/A/B run(s) against champion version "
              f"{ev['champion']}:")
        for mode, e in ev["judged"].items():
            print(f"  {mode}: {e.describe()}")
    elif ev["champion"] is not None and ev["champion"] != ev["version"]:
        print(f"nbprod: no shadow or A/B runs recorded against champion version {ev['champion']}")
    r = promote(args.target, by=args.by or _user(), reason=args.reason or "", force=args.force,
                evidence=ev)
    forced = " (FORCED past: " + "; ".join(r["overridden"]) + ")" if r["forced"] else ""
    print(f"nbprod: {r['name']} version {r['version']} is now champion "
          f"(was {r['previous'] or 'none'}){forced}")
    return EXIT_OK


def add_promote(sub: Any) -> None:
    p = sub.add_parser("promote", help="move the champion alias to a challenger that earned it")
    p.add_argument("target", metavar="PATH", help="artifact path or models:/NAME/VERSION")
    p.add_argument("--by", metavar="NAME", help="who promotes (default: the current user)")
    p.add_argument("--reason", metavar="TEXT", help="why (recorded)")
    p.add_argument("--force", action="store_true",
                   help="promote without a winning comparison or evidence, or with failed checks "
                        "(recorded)")
    p.add_argument("--min-effect", type=_min_effect, default=0.005, metavar="X",
                   help="the smallest loss difference that matters, in loss units (Brier score "
                        "or squared error; default %(default)s)")
    p.add_argument("--confidence", type=_confidence, default=0.95, metavar="C",
                   help="confidence of the evidence's interval (default %(default)s)")
    p.set_defaults(run=run_promote)


def _min_effect(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a loss difference >= 0 such as 0.005; got {text[:40]!r}")
    return value


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a confidence strictly between 0 and 1 such as "
                                         f"0.95; got {text[:40]!r}")
    return value


ADDERS = (add_register, add_retrain, add_compare, add_approve, add_promote)
