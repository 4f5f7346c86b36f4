"""The feedback file: reviewers' decisions on scored rows, and their merge into training data.

The file is a Parquet table with one row per reviewed id (the last decision on an id wins). Its
format, the one that :func:`append` writes and that :func:`read` and :func:`apply` read:

- ``id``: the artifact's id column as text (the row number when it declares none);
- ``label``: the reviewed label, typed as the model's classes, or a float for a regressor;
- ``time``: when the decision was taken (UTC);
- ``reviewer``: who took it;
- ``note``: free text;
- ``decision``: ``accept`` (the prediction is the label) or ``relabel``;
- ``prediction``: what the model said (empty when that was no valid label);
- ``reasons``: why the row was in the review queue;
- ``artifact_id``: the artifact that scored the row.

``id``, ``label`` and ``time`` are required (:data:`REQUIRED`); a file written by other means
with those three is merged too. The review queue (:mod:`nbprod.jupyter.review`) writes the
file; :func:`apply` relabels the training rows whose id has a decision, so that retraining
learns from the minders' corrections.

Writes are atomic (a temporary file renamed over the old one) and serialised by a lock file
beside it (POSIX), so two reviewers appending at once lose nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.files import atomic_path
from ..exceptions import InputError, NbprodUsageError

COLUMNS = ("id", "label", "reviewer", "time", "note", "decision", "prediction", "reasons",
           "artifact_id")
REQUIRED = ("id", "label", "time")
_TEXT = ("id", "reviewer", "note", "decision", "reasons", "artifact_id")


@dataclass(frozen=True)
class Decision:
    """One reviewer's verdict on one row: a row of the feedback file."""

    id: str
    label: Any
    reviewer: str
    time: pd.Timestamp
    note: str
    decision: str  # accept | relabel
    prediction: Any
    reasons: str
    artifact_id: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read(path: str | Path, *, missing_ok: bool = False) -> pd.DataFrame:
    """The feedback file's rows; with ``missing_ok``, an empty table when there is no file yet.

    Raises :class:`~nbprod.exceptions.InputError` when the file is not Parquet or lacks a
    required column."""
    p = Path(path)
    if missing_ok and not p.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    try:
        fb = pd.read_parquet(p)
    except Exception as exc:
        raise InputError(f"feedback file {str(p)!r} is not readable as Parquet: {exc}") from None
    missing = [c for c in REQUIRED if c not in fb.columns]
    if missing:
        raise InputError(f"feedback file {str(p)!r} lacks column {missing[0]!r} "
                         f"(required: {', '.join(REQUIRED)}).")
    return fb


def append(path: str | Path, decisions: list[Decision]) -> pd.DataFrame:
    """Add ``decisions`` to the feedback file, atomically; the last decision per id wins.

    A file that holds one kind of label (numbers, text, booleans) refuses another kind."""
    p = Path(path)
    if not p.parent.is_dir():
        raise InputError(f"feedback directory {str(p.parent)!r} does not exist.")
    new = pd.DataFrame([d.to_dict() for d in decisions], columns=list(COLUMNS))
    for col in _TEXT:
        new[col] = new[col].astype("str")
    new["time"] = pd.to_datetime(new["time"], utc=True)
    with _locked(p):
        old = read(p) if p.exists() else None
        if old is not None and not old.empty:
            was, now = _kind(old["label"]), _kind(new["label"])
            if "empty" not in (was, now) and was != now:
                raise NbprodUsageError(
                    f"feedback file {str(p)!r} holds {was} labels; this model's labels are {now}. "
                    "Use one feedback file per model.")
            both = pd.concat([old.astype({"id": "str"}), new], ignore_index=True)
        else:
            both = new
        both = both.drop_duplicates("id", keep="last").reset_index(drop=True)
        with atomic_path(p) as tmp:
            both.to_parquet(tmp, index=False)
    return both


def apply(df: pd.DataFrame, path: str | Path, *, id_column: str, target: str) -> pd.DataFrame:
    """``df`` with ``target`` replaced by the latest feedback label of each reviewed id.

    What a training notebook calls to learn from the review queue's decisions.

    Parameters
    ----------
    df : DataFrame
        Training data with ``id_column`` and ``target``.
    path : str or Path
        The feedback file (Parquet) that :func:`nbprod.review` decisions are appended to.
    id_column, target : str
        The columns that hold each row's id and its label.

    Returns
    -------
    DataFrame
        A copy of ``df``; ``attrs["nbprod_feedback_rows"]`` counts the rows relabelled.

    Raises
    ------
    InputError
        When ``df`` lacks one of the two columns.

    Examples
    --------
    >>> import pandas as pd
    >>> from nbprod.lifecycle.feedback import Decision, append
    >>> fb = TMP / "feedback.parquet"
    >>> _ = append(fb, [Decision(id="C2", label=1, reviewer="ana", time=pd.Timestamp.now("UTC"),
    ...                          note="", decision="relabel", prediction=0, reasons="",
    ...                          artifact_id=None)])
    >>> out = nbprod.apply_feedback(pd.DataFrame({"id": ["C1", "C2"], "y": [0, 0]}), fb,
    ...                             id_column="id", target="y")
    >>> out["y"].tolist(), out.attrs["nbprod_feedback_rows"]
    ([0, 1], 1)
    """
    if id_column not in df.columns or target not in df.columns:
        raise InputError(f"the frame needs columns {id_column!r} and {target!r} to take feedback.")
    fb = read(path).sort_values("time", kind="stable").drop_duplicates("id", keep="last")
    labels = pd.Series(fb["label"].to_numpy(), index=fb["id"].astype("str").to_numpy())
    ids = df[id_column].astype("str")
    hit = ids.isin(labels.index).to_numpy()
    out = df.copy()
    if hit.any():
        new = labels.reindex(ids[hit].to_numpy()).to_numpy()
        dtype = out[target].dtype
        out.loc[hit, target] = pd.Series(new, index=out.index[hit]).astype(dtype)
    out.attrs["nbprod_feedback_rows"] = int(hit.sum())
    return out


def _kind(s: pd.Series) -> str:
    s = s.dropna()
    if s.empty:
        return "empty"
    if pd.api.types.is_bool_dtype(s):
        return "bool"
    return "number" if pd.api.types.is_numeric_dtype(s) else "text"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Serialise writers of ``path`` with a lock file beside it (POSIX; elsewhere no lock)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path.with_name(f".{path.name}.lock"), "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
