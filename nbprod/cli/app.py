"""The ``nbprod`` command: its parser, made of every subcommand group's, and :func:`main`.

Each subcommand is a parser builder (``add_*``) plus a ``run_*(args)`` callable, testable
without a subprocess; :func:`main` turns an :class:`~nbprod.exceptions.NbprodError` into one line
on stderr and an exit code (see :mod:`nbprod.cli.base`).
"""

from __future__ import annotations

import argparse

from ..exceptions import NbprodError
from .artifacts import add_inspect, add_sign, add_verify
from .base import EXIT_ERROR, EXIT_USAGE, err, exit_code
from .explain import add_explain
from .history import add_history
from .lifecycle import ADDERS
from .score import add_report, add_score


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = argparse.ArgumentParser(prog="nbprod", description=(
        "Score, verify, inspect and monitor nbprod artifacts. Exit codes: 0 ok, 1 error (nothing "
        "written), 2 usage error, 3 scored but a monitoring check failed."))
    parser.add_argument("--version", action="version", version=f"nbprod {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in (add_score, add_verify, add_sign, add_inspect, add_report, add_history, *ADDERS,
                add_explain):
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
            err(str(exc))
        elif code == EXIT_ERROR:
            err(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return code
