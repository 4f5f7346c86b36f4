"""Merging reviewers' feedback into training data.

The review queue writes a Parquet feedback file with one row per decision: ``id``, ``label``,
``reviewer``, ``time``, ``note``. :func:`apply` relabels the training rows whose id has a
decision (the latest decision per id wins) so that retraining learns from the minders'
corrections.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..exceptions import InputError

COLUMNS = ("id", "label", "reviewer", "time", "note")


def read(path: str | Path) -> pd.DataFrame:
    try:
        fb = pd.read_parquet(path)
    except Exception as exc:
        raise InputError(f"feedback file {str(path)!r} is not readable as Parquet: {exc}") from None
    missing = [c for c in ("id", "label", "time") if c not in fb.columns]
    if missing:
        raise InputError(f"feedback file {str(path)!r} lacks column {missing[0]!r} "
                         f"(expected {', '.join(COLUMNS)}).")
    return fb


def apply(df: pd.DataFrame, path: str | Path, *, id_column: str, target: str) -> pd.DataFrame:
    """``df`` with ``target`` replaced by the latest feedback label of each reviewed id."""
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
