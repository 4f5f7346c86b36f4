"""The ``nbprod`` command line, one module per group of subcommands: scoring and reports
(:mod:`~nbprod.cli.score`), an artifact's integrity and contents (:mod:`~nbprod.cli.artifacts`),
monitoring history (:mod:`~nbprod.cli.history`) and the model lifecycle
(:mod:`~nbprod.cli.lifecycle`). ``nbprod.cli.main`` is the console script;
``nbprod.cli.exit_code`` maps a scoring outcome to the command's exit code.
"""

from .app import build_parser, main
from .base import EXIT_ALERT, EXIT_ERROR, EXIT_OK, EXIT_USAGE, exit_code

__all__ = ["EXIT_ALERT", "EXIT_ERROR", "EXIT_OK", "EXIT_USAGE", "build_parser", "exit_code", "main"]
