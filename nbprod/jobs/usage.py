"""What a user passes to a scoring run, checked before any work: output paths and numbers.

:func:`check_outputs` takes every output of a run as a mapping of flag -> path (``--output``,
``--summary``, ``--report``, ``--html``, ...), so a new output flag is one more entry. It
refuses, as :class:`~nbprod.exceptions.NbprodUsageError` (exit 2 in the CLI), an output that is
one of the inputs (also through symlinks, hard links or relative paths), an output inside the
artifact, two outputs that are the same file, an output that is a directory, and an output
whose directory is missing, not a directory or not writable. The CLI and
:func:`nbprod.jobs.run.execute` both call it, so the rules are the same for ``nbprod score`` and
papermill.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..core.text import quote
from ..exceptions import NbprodUsageError

# drift_runs: a streak longer than the earlier runs a scoring run reads back (tracking's
# HISTORY_RUNS, 20) plus itself could never be seen
DRIFT_RUNS = (1, 21)
PathLike = str | os.PathLike[str]


# -- output paths ---------------------------------------------------------------------------
def check_outputs(
    outputs: Mapping[str, PathLike | None],
    *,
    inputs: Mapping[str, PathLike | None] | None = None,
    artifact: PathLike | None = None,
) -> dict[str, Path]:
    """Refuse outputs a run must not write (see the module docs); return flag -> absolute path
    for every output given (``None`` values are skipped). Nothing is created or written."""
    given_inputs = [(flag, Path(v)) for flag, v in (inputs or {}).items() if v]
    art = Path(artifact).resolve() if artifact else None
    seen: list[tuple[str, Path]] = []
    checked: dict[str, Path] = {}
    for flag, value in outputs.items():
        if value is None:
            continue
        if not str(value).strip():
            raise NbprodUsageError(f"{flag} is empty; give the path of a file to write.")
        try:
            checked[flag] = _check_output(flag, value, given_inputs, art, artifact, seen)
        except OSError as exc:  # e.g. a name longer than the file system allows
            raise NbprodUsageError(
                f"{flag} {quote(value)} cannot be written: {exc.strerror or exc}.") from None
        seen.append((flag, Path(value)))
    return checked


def _check_output(flag: str, value: PathLike, given_inputs: list[tuple[str, Path]],
                  art: Path | None, artifact: PathLike | None,
                  seen: list[tuple[str, Path]]) -> Path:
    path = Path(value)
    where = f"{flag} {quote(value)}"
    if path.is_dir():
        raise NbprodUsageError(f"{where} is a directory; give the path of a file to write.")
    for name, other in given_inputs:
        if _same_file(path, other):
            raise NbprodUsageError(
                f"{where} is the same file as {name} {quote(other)}: the run would overwrite "
                "what it reads. Write the output to another path.")
    if art is not None and _inside(path, art):
        raise NbprodUsageError(
            f"{where} lies inside the artifact {quote(artifact)}; an artifact is never written "
            "to after packaging (its files are verified by hash). Write the output elsewhere.")
    for name, other in seen:
        if _same_file(path, other):
            raise NbprodUsageError(
                f"{where} is the same file as {name} {quote(other)}; give each output its own "
                "path.")
    _check_directory(flag, value, path)
    return Path(os.path.abspath(path))


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)  # hard links
    except OSError:  # one of them does not exist yet
        return False


def _inside(path: Path, root: Path) -> bool:
    resolved = path.resolve()
    return resolved == root or root in resolved.parents


def _check_directory(flag: str, value: PathLike, path: Path) -> None:
    parent = Path(os.path.abspath(path)).parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise NbprodUsageError(
            f"{flag} {quote(value)}: {quote(existing)} is a file, not a directory.")
    if existing != parent:
        raise NbprodUsageError(
            f"{flag} {quote(value)}: directory {quote(parent)} does not exist; create it first "
            "or write the output elsewhere.")
    # os.access answers for this process: it refuses read-only file systems and missing
    # permissions, and grants root what root can really write
    if not os.access(parent, os.W_OK | os.X_OK):
        raise NbprodUsageError(
            f"{flag} {quote(value)}: directory {quote(parent)} is not writable (read-only file "
            "system or no write permission); write the output elsewhere.")


# -- numbers --------------------------------------------------------------------------------
def whole_number(value: Any, name: str, *, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int in [minimum, maximum]; otherwise NbprodUsageError naming ``name``."""
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            number = None
    if number is None or number < minimum or (maximum is not None and number > maximum):
        raise NbprodUsageError(f"{name} must be {_range(minimum, maximum)}. Got {quote(value)}.")
    return number


def _range(minimum: int, maximum: int | None) -> str:
    if maximum is None:
        return f"a whole number of at least {minimum}"
    return f"a whole number from {minimum} to {maximum}"


def whole_number_type(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type=`` with the same rule and wording as :func:`whole_number`."""
    import argparse

    def parse(text: str) -> int:
        try:
            return whole_number(text, "the value", minimum=minimum, maximum=maximum)
        except NbprodUsageError:
            raise argparse.ArgumentTypeError(
                f"must be {_range(minimum, maximum)}; got {quote(text)}") from None

    parse.__name__ = "whole number"  # argparse names the type in some messages
    return parse
