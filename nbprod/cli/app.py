"""The ``nbprod`` command: its parser, made of every subcommand group's, and :func:`main`.

Each subcommand is a parser builder (``add_*``) plus a ``run_*(args)`` callable, testable
without a subprocess; :func:`main` turns an :class:`~nbprod.exceptions.NbprodError` into one line
on stderr and an exit code (see :mod:`nbprod.cli.base`).
"""

from __future__ import annotations

import argparse
import difflib
import re
from typing import NoReturn

from ..exceptions import NbprodError
from .artifacts import add_inspect, add_sign, add_verify
from .base import EXIT_ERROR, EXIT_USAGE, err, exit_code
from .explain import add_explain
from .history import add_history
from .lifecycle import ADDERS
from .score import add_report, add_score


class Parser(argparse.ArgumentParser):
    """argparse with suggestions: a misspelt command or flag gets "did you mean", and a flag
    error prints the usage of the command it was given to."""

    def error(self, message: str) -> NoReturn:  # type: ignore[override]
        match = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if match:
            choices = re.findall(r"'([^']*)'", match.group(2))
            near = difflib.get_close_matches(match.group(1), choices, n=1)
            if near:
                message = (f"{message.split(':')[0]}: unknown {match.group(1)!r}; did you mean "
                           f"{near[0]!r}? (one of: {', '.join(choices)})")
        super().error(message)

    def unknown(self, extra: list[str]) -> NoReturn:
        """Refuse ``extra`` (arguments this parser does not take), naming the nearest flag."""
        flags = sorted({f for a in self._actions for f in a.option_strings})
        for token in extra:
            if token.startswith("-"):
                near = difflib.get_close_matches(token.split("=", 1)[0], flags, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else f" (flags: {', '.join(flags)})"
                self.error(f"unknown flag {token!r}{hint}")
        self.error(f"unexpected argument(s): {' '.join(extra)}")


def build_parser() -> argparse.ArgumentParser:
    from .._version import __version__

    parser = Parser(prog="nbprod", description=(
        "Score, verify, inspect and monitor nbprod artifacts. Exit codes: 0 ok, 1 error (nothing "
        "written), 2 usage error, 3 scored but a monitoring check failed."))
    parser.add_argument("--version", action="version", version=f"nbprod {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                parser_class=Parser)
    for add in (add_score, add_verify, add_sign, add_inspect, add_report, add_history, *ADDERS,
                add_explain):
        add(sub)
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, but arguments the chosen command does not take are refused
    by that command's parser (its usage, and the nearest flag)."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        commands = next(a for a in parser._actions
                        if isinstance(a, argparse._SubParsersAction)).choices
        target = commands.get(args.command, parser)
        if isinstance(target, Parser):
            target.unknown(extra)
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse(parser, argv)
    try:
        return int(args.run(args))
    except (NbprodError, KeyboardInterrupt) as exc:
        code = exit_code(exc)
        if code == EXIT_USAGE:
            err(str(exc))
        elif code == EXIT_ERROR:
            err(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return code
