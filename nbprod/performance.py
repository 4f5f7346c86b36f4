"""Joining the labels of a scored batch to its rows, once they are known.

Labels are joined on the id column declared at snapshot time, or by row order when no id was
declared. The metrics on them are the checks' own (see :mod:`nbprod.monitor`).
"""

from __future__ import annotations

import pandas as pd

from .exceptions import InputError


def align_labels(art, preds: pd.DataFrame, labels: pd.DataFrame) -> pd.Series:
    """The label of each scored row (NaN where a row has no label)."""
    target = art.target
    source = labels.attrs.get("source")
    where = f"labels file {source!r}" if source else "labels file"
    if target not in labels.columns:
        raise InputError(f"{where} has no target column {target!r}.")
    if art.id_column:
        if art.id_column not in labels.columns:
            raise InputError(f"{where} has no id column {art.id_column!r} to join on.")
        if labels[art.id_column].duplicated().any():
            dup = labels.loc[labels[art.id_column].duplicated(), art.id_column].iloc[0]
            raise InputError(f"{where} repeats id {dup!r}; ids must be unique.")
        mapping = pd.Series(labels[target].to_numpy(), index=labels[art.id_column].to_numpy())
        ids = preds[art.id_column]
        return pd.Series(mapping.reindex(ids.to_numpy()).to_numpy(), index=preds.index)
    if len(labels) != len(preds):
        raise InputError(
            f"{where} has {len(labels)} rows for {len(preds)} scored rows; without an id "
            "column labels are matched by row order, so the counts must be equal."
        )
    return pd.Series(labels[target].to_numpy(), index=preds.index)
