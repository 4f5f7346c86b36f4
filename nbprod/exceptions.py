"""Exceptions raised by nbprod.

Every error nbprod raises on purpose derives from :class:`NbprodError`. Where a built-in
exception fits, the subclass inherits it too, so existing ``except ValueError`` clauses keep
working. The magics turn :class:`NbprodUsageError` into IPython's ``UsageError`` (one line, no
traceback); the CLI turns any :class:`NbprodError` into one line on stderr and a non-zero exit.
"""

from __future__ import annotations


class NbprodError(Exception):
    """Root of every error nbprod raises deliberately."""


class NbprodUsageError(NbprodError, ValueError):
    """The user asked for something that cannot be done as asked (bad flag, unknown variable...)."""


class CaptureError(NbprodUsageError):
    """A feature function, model or snapshot cannot be captured as given."""


class SchemaError(NbprodError, ValueError):
    """Input data does not match the schema recorded in the training snapshot.

    ``column`` names the offending column when there is one.
    """

    def __init__(self, message: str, column: str | None = None) -> None:
        super().__init__(message)
        self.column = column

    def __reduce__(self):  # keep the column when pickled across processes
        return (type(self), (str(self), self.column))


class InputError(NbprodError, ValueError):
    """An input file is missing, empty, unreadable or not what its name claims."""


class IntegrityError(NbprodError, ValueError):
    """An artifact file is missing, altered or of an unsupported format.

    ``path`` names the offending file inside the artifact when there is one.
    """

    def __init__(self, message: str, path: str | None = None) -> None:
        super().__init__(message)
        self.path = path

    def __reduce__(self):
        return (type(self), (str(self), self.path))


class PackagingError(NbprodError, RuntimeError):
    """Packaging could not produce a trustworthy artifact (nothing was written)."""


class ParityError(PackagingError):
    """The packaged artifact, loaded in a fresh process, scores differently from the notebook."""


class ChecksFailedError(PackagingError):
    """Packaging was refused because checks failed (use ``force=True`` to override)."""

    def __init__(self, message: str, failed: list[str] | None = None) -> None:
        super().__init__(message)
        self.failed = list(failed or [])

    def __reduce__(self):
        return (type(self), (str(self), self.failed))
