"""Packaging refuses an artifact that would store personal data raw.

The snapshots hide their personal columns (:mod:`nbprod.core.pii`); these guards look at what the
model made of them: feature names made of personal values (one-hot encoding), and a model file
that keeps raw personal values (an encoder fitted on a personal column the features passed
through).
"""

from __future__ import annotations

from typing import Any

from ..checks.context import evaluation
from ..core.pii import file_carries, names_carrying, raw_values
from ..exceptions import PackagingError


def guard_feature_names(session: Any) -> None:
    """Refuse to package when the model's feature names are personal values."""
    train = session.train
    if not train.pii:
        return
    X = evaluation(session).X_train
    names = list(getattr(X, "columns", []))
    bad = names_carrying(names, train.data, train.pii)
    if bad:
        col, hits = next(iter(bad.items()))
        raise PackagingError(
            f"{len(hits)} feature column name(s) are made of values of the personal column "
            f"{col!r} (one-hot encoding?): the model file, the monitoring reference and every "
            "run summary would store them. Drop or hash that column in the feature function, "
            f"or declare --not-pii {col} if it is not personal."
        )


def guard_model(model_file: Any, session: Any, carried: dict[str, str]) -> None:
    """Refuse to package a model whose file holds raw personal values (an encoder fitted on a
    personal column that the features passed through)."""
    train = session.train
    if not carried:
        return
    pool = raw_values(train.data, train.pii)
    probes = [str(v) for v in pool[:2000]]
    if file_carries(model_file, probes):
        cols = ", ".join(sorted(carried))
        raise PackagingError(
            f"The model stores raw values of personal data: the feature function passes "
            f"{cols} to it ({'; '.join(carried.values())}), and the fitted model keeps those "
            "values (e.g. an encoder's categories). Drop the column in the feature function, "
            "derive what the model needs (a domain, a count), or declare it --not-pii if it is "
            "not personal."
        )
