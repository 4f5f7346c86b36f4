"""Which scored rows of a chunk may have a label: what a batch scored in chunks keeps for its
performance.

Performance metrics such as ROC AUC need every labelled row's output at once, so a batch scored
in chunks holds the labels file (its id and target columns) and, from each chunk, the outputs
of the rows whose id is among the labels' ids; :func:`nbprod.monitoring.performance.evaluate_performance`
then joins them exactly as it joins a batch scored in one piece. Memory grows with the labelled
rows (about the id and target, plus the prediction and probabilities, per labelled row), not
with the batch. Without an id column, labels join by row order, so every scored row is kept.

The pick never misses a row the join would match: ids are compared as equal values, or as text
(:func:`nbprod.monitoring.performance.id_keys`) when the labels and the chunk hold ids of
different kinds, which is the join's own rule.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .performance import id_keys, id_kind


class LabelKeys:
    """The labels of a batch, ready to pick the labelled rows of each chunk."""

    def __init__(self, art: Any, labels: pd.DataFrame) -> None:
        self.labels = labels
        self.id_column = art.id_column
        self._ids = None
        self._kind = None
        self._text: dict[bool, pd.Index] = {}
        if self.id_column and self.id_column in labels.columns:
            ids = labels[self.id_column]
            self._ids = pd.Index(ids[ids.notna()].to_numpy())
            self._kind = id_kind(ids)

    def pick(self, outputs: pd.DataFrame) -> np.ndarray:
        """Which rows of ``outputs`` (a chunk's outputs with the id) may have a label."""
        if self._ids is None:
            return np.ones(len(outputs), dtype=bool)
        ids = outputs[self.id_column]
        kind = id_kind(ids)
        if kind == self._kind or "empty" in (kind, self._kind):
            return ids.isin(self._ids).to_numpy(dtype=bool) & ids.notna().to_numpy()
        numeric = kind == "number"
        if numeric not in self._text:
            lab = self.labels[self.id_column]
            keys = id_keys(lab, other_numeric=numeric)
            self._text[numeric] = pd.Index(keys[keys.notna()].to_numpy())
        mine = id_keys(ids, other_numeric=self._kind == "number")
        return mine.isin(self._text[numeric]).to_numpy(dtype=bool) & mine.notna().to_numpy()
