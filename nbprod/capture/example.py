"""The MLflow input example of an artifact: a few training rows a REST client can copy.

MLflow shows the example in its UI and writes it as a ready request
(``serving_input_example.json``). It must hold no personal data and it must score: the rows come
from the training snapshot's sample (the id column and the input columns), every personal
column (declared ``--pii`` or detected, the id column included) is replaced by a neutral value
of the type it was trained with, and the rows are scored by the notebook's own scorer after a
round trip through JSON, as the scoring server would receive them. Rows that do not score are
left out; when none does, the artifact has no example (and packaging says so in its log).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pandas as pd

EXAMPLE_ROWS = 3
_CANDIDATES = 20  # sample rows tried, for the first EXAMPLE_ROWS that score
_NEUTRAL: dict[str, Any] = {"integer": 0, "float": 0.0, "bool": False, "string": "redacted",
                            "category": "redacted", "datetime": pd.Timestamp("2000-01-01"),
                            "other": "redacted"}

log = logging.getLogger(__name__)


def input_example(session: Any, live: Any) -> pd.DataFrame | None:
    """Up to :data:`EXAMPLE_ROWS` rows of the training sample that ``live`` (the notebook's
    :class:`~nbprod.core.scoring.Scorer`) scores, personal values replaced; None when none does."""
    from ..exceptions import NbprodError

    train = session.train
    columns = ([train.id] if train.id else []) + train.feature_columns
    rows = train.raw_sample()[columns].head(_CANDIDATES).reset_index(drop=True)
    for column in columns:
        if column in train.pii:
            rows[column] = neutral(train.schema[column], len(rows), distinct=column == train.id)
    as_sent = as_received(rows)
    try:
        scored = live.score(as_sent, errors="reject")
    except NbprodError as exc:
        log.warning("nbprod: no MLflow input example: the training rows do not score (%s)", exc)
        return None
    if scored.empty:
        log.warning("nbprod: no MLflow input example: none of the first %d training rows scores "
                    "once personal values are replaced", len(rows))
        return None
    return rows.loc[scored.index[:EXAMPLE_ROWS]].reset_index(drop=True)


def neutral(spec: Any, n: int, *, distinct: bool = False) -> pd.Series:
    """``n`` neutral values of a column's trained kind (``distinct``: numbered, for an id)."""
    if distinct:
        values: list[Any] = (list(range(1, n + 1)) if spec.kind == "integer"
                             else [f"example-{i}" for i in range(1, n + 1)])
    else:
        values = [_NEUTRAL.get(spec.kind, "redacted")] * n
    try:
        return pd.Series(values, dtype=spec.dtype if spec.kind != "category" else None)
    except (TypeError, ValueError):
        return pd.Series(values)


def as_received(rows: pd.DataFrame) -> pd.DataFrame:
    """``rows`` as the scoring server builds them from a JSON request: through JSON text."""
    split = json.loads(rows.to_json(orient="split", index=False, date_format="iso"))
    return pd.DataFrame(split["data"], columns=split["columns"])
