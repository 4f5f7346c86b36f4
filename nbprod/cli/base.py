"""What every ``nbprod`` subcommand shares: exit codes, one-line messages, common flags.

Exit codes: 0 ok, 1 error (nothing written), 2 usage error, 3 scored but a monitoring check
failed (predictions were written).
"""

from __future__ import annotations

import sys
from typing import Any

from ..exceptions import NbprodError, NbprodUsageError

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_ALERT = 0, 1, 2, 3


def err(message: str) -> None:
    """One line on stderr: what went wrong."""
    print(f"nbprod: error: {message}", file=sys.stderr)


def warn(message: str) -> None:
    """One line on stderr: what the user should know."""
    print(f"nbprod: warning: {message}", file=sys.stderr)


def exit_code(outcome: Any) -> int:
    """The exit code of a scoring outcome, for the CLI and anyone who runs ``nbprod.jobs.run.execute``
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


def add_trusted_key(p: Any) -> None:
    """The repeatable --trusted-key flag of every subcommand that verifies an artifact."""
    p.add_argument("--trusted-key", action="append", metavar="PUB.pem",
                   help="require a signature by this Ed25519 public key (repeatable; keys in "
                        "NBPROD_TRUSTED_KEYS count too)")
