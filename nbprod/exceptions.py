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


class FeatureError(NbprodError, RuntimeError):
    """The captured feature function failed or returned something the model cannot use."""


class OutputBoundsError(NbprodError, ValueError):
    """Outputs broke the declared sanity bounds under the ``fail`` policy; nothing is written."""


class ModelFailure(Exception):
    """The feature function or the model raised on a set of rows (internal to scoring).

    Scoring isolates the rows that fail alone and rejects them (rule ``model-error``), or turns
    the failure into a :class:`FeatureError`; it never reaches a caller. ``where`` says which
    step raised, ``exc`` is what it raised.
    """

    def __init__(self, where: str, exc: BaseException) -> None:
        super().__init__(where)
        self.where = where
        self.exc = exc


class MonitoringAlert(NbprodError, RuntimeError):
    """Raised at the end of a scoring notebook run with ``raise_on_alert=True`` when a monitoring
    check failed, so schedulers that only watch papermill's exit code notice. The predictions
    and the report were written before it was raised."""


class NotebookError(NbprodError, RuntimeError):
    """A cell of a notebook nbprod executed (a scoring or a training notebook) raised.

    ``ename`` and ``evalue`` are the cell's exception name and message, ``cell_index`` the
    failing cell's index (papermill marks that cell in the executed notebook).
    """

    def __init__(self, message: str, *, ename: str | None = None, evalue: str | None = None,
                 cell_index: int | None = None) -> None:
        super().__init__(message)
        self.ename = ename
        self.evalue = evalue
        self.cell_index = cell_index

    def __reduce__(self):
        return (_rebuild_notebook_error, (type(self), str(self), self.ename, self.evalue,
                                          self.cell_index))


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


class RetrainError(NbprodError, RuntimeError):
    """Retraining produced no new artifact (the executed notebook says why)."""


class RegistryError(NbprodError, RuntimeError):
    """A registry operation was refused or could not be completed."""


class TrackingStoreError(NbprodError, RuntimeError):
    """The MLflow tracking store cannot be opened or used (the message says what to do)."""


class RowError(SchemaError):
    """A row cannot be scored (``errors="raise"``): names the row, column, rule and value.

    ``row`` is the 0-based position in the input, ``rule`` the row rule that rejected it
    (``type``, ``missing``, ``non-finite``, ``magnitude``, ``unseen-category``, ``null-id`` or
    ``model-error``) and ``value`` the offending value as text (``None`` for hidden columns).
    """

    def __init__(self, message: str, column: str | None = None, *, row: int | None = None,
                 rule: str | None = None, value: str | None = None) -> None:
        super().__init__(message, column)
        self.row = row
        self.rule = rule
        self.value = value

    def __reduce__(self):
        return (_rebuild_row_error, (type(self), str(self), self.column, self.row, self.rule,
                                     self.value))


class RowsRejectedError(SchemaError):
    """Every row of the input was rejected: the input is unusable as a whole. ``column`` and
    ``rule`` name the most common reason."""

    def __init__(self, message: str, column: str | None = None, *, rule: str | None = None) -> None:
        super().__init__(message, column)
        self.rule = rule

    def __reduce__(self):
        return (_rebuild_rows_rejected, (type(self), str(self), self.column, self.rule))


class PersonalDataWarning(UserWarning):
    """A column that looks personal was not declared: nbprod hides it as if it were."""


class ExplainError(NbprodError, RuntimeError):
    """Per-row explanations cannot be computed as asked (a method this model does not allow,
    an optional library missing, contributions that do not add up)."""


class ExplainWarning(UserWarning):
    """Explanations were computed, but not the way one would expect (a slower fallback)."""


class HelpShown(Exception):  # noqa: N818 - a signal, not an error
    """Not an error: ``%nbprod ... --help`` printed its help, and the magic has nothing more to
    do (raised by the magics' argument parser instead of exiting the kernel)."""


def _rebuild_notebook_error(cls, message, ename, evalue, cell_index):
    return cls(message, ename=ename, evalue=evalue, cell_index=cell_index)


def _rebuild_row_error(cls, message, column, row, rule, value):
    return cls(message, column, row=row, rule=rule, value=value)


def _rebuild_rows_rejected(cls, message, column, rule):
    return cls(message, column, rule=rule)
