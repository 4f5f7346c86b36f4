"""``nbprod history``: the monitoring runs of an artifact or a model, with trends."""

from __future__ import annotations

import argparse
from typing import Any

from ..core.results import number
from .base import EXIT_OK


def run_history(args: argparse.Namespace) -> int:
    from ..tracking.runs import history_of

    runs = history_of(args.artifact, all_artifacts=args.all)
    name = args.artifact
    if args.json:
        print(runs.to_json(orient="records", date_format="iso"))
        return EXIT_OK
    if runs.empty:
        from ..core.text import quote

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
            cells.append(f"{'' if v != v else number(v):>15}{arrow}")
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
