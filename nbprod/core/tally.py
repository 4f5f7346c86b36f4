"""The row issues of a whole batch, tallied from its chunks in bounded memory.

A batch scored in chunks gets one :class:`~nbprod.core.rows.RowIssues` per chunk. Their tables
go to the issues file as they come; what the run reports is kept here: the counts per column,
rule and action (in the order :meth:`RowIssues.counts` gives for the whole batch), the rejected
and flagged rows (one bit each), and the first :data:`SHOWN` issues. :class:`IssueTally` answers
the questions a :class:`RowIssues` answers for the summary and the ``input:rows`` check, so a
batch reports the same in one piece or in chunks. Tallies of consecutive chunks merge; the
``duplicate-id`` issues found across chunks (:mod:`nbprod.core.duplicates`) join at the end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .rows import FLAGGED, REJECTED, RowIssues, describe_counts

SHOWN = 20  # issues kept for the report and the summary (the issues file has them all)


@dataclass
class IssueTally:
    """Counts and the first issues of a batch (see the module docs); rows count from 0."""

    id_column: str | None
    rows_in: int = 0
    n_rejected: int = 0
    n_flagged: int = 0
    n_issues: int = 0
    # (column, rule, action) -> [rows, first row, place among that row's issues]
    by: dict[tuple[Any, str, str], list[int]] = field(default_factory=dict)
    first: pd.DataFrame | None = None
    first_place: list[tuple[int, int]] = field(default_factory=list)
    masks: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)

    @classmethod
    def of(cls, issues: RowIssues) -> IssueTally:
        """The tally of one chunk's issues (validated with ``start=0``)."""
        f = issues.frame
        by: dict[tuple[Any, str, str], list[int]] = {}
        if len(f):
            rows = f["row"].to_numpy()
            starts = np.concatenate([[0], np.flatnonzero(rows[1:] != rows[:-1]) + 1])
            place = np.arange(len(f)) - np.repeat(starts, np.diff(np.append(starts, len(f))))
            columns = f["column"].where(f["column"].notna(), None).tolist()
            for c, r, a, row, p in zip(columns, f["rule"].tolist(), f["action"].tolist(),
                                       rows.tolist(), place.tolist(), strict=True):
                entry = by.get((c, r, a))
                if entry is None:
                    by[(c, r, a)] = [1, row, p]
                else:
                    entry[0] += 1
        else:
            place = np.zeros(0, dtype="int64")
        head = f.head(SHOWN).reset_index(drop=True)
        return cls(issues.id_column, issues.rows_in, issues.n_rejected, issues.n_flagged, len(f),
                   by, head, list(zip(head["row"].tolist(), place[:len(head)].tolist(), strict=True)),
                   [(issues.rows_in, np.packbits(issues.rejected), np.packbits(issues.flagged))])

    def merge(self, other: IssueTally) -> IssueTally:
        """This tally and the next chunk's (whose rows follow this one's)."""
        shift = self.rows_in
        by = {k: list(v) for k, v in self.by.items()}
        for k, (n, row, p) in other.by.items():
            if k in by:
                by[k][0] += n
            else:
                by[k] = [n, row + shift, p]
        first, place = self.first, list(self.first_place)
        if other.first is not None and len(other.first) and (first is None or len(first) < SHOWN):
            more = other.first.assign(row=other.first["row"] + shift)
            first = more if first is None or not len(first) else pd.concat(
                [first, more], ignore_index=True)
            place += [(r + shift, p) for r, p in other.first_place]
            first, place = first.head(SHOWN).reset_index(drop=True), place[:SHOWN]
        elif first is None:
            first = other.first
        return IssueTally(self.id_column, self.rows_in + other.rows_in,
                          self.n_rejected + other.n_rejected, self.n_flagged + other.n_flagged,
                          self.n_issues + other.n_issues, by, first, place,
                          self.masks + other.masks)

    # -- what RowIssues answers --------------------------------------------------------------
    def __len__(self) -> int:
        return self.n_issues

    def __bool__(self) -> bool:
        return self.n_issues > 0

    def counts(self, action: str | None = None) -> list[dict[str, Any]]:
        """Rows per (column, rule, action), most frequent first; ties in the order the issues
        come in the table."""
        items = [(k, v) for k, v in self.by.items() if action is None or k[2] == action]
        items.sort(key=lambda kv: (-kv[1][0], kv[1][1], kv[1][2]))
        return [{"column": c, "rule": r, "action": a, "rows": v[0]} for (c, r, a), v in items]

    def describe(self, action: str, limit: int = 5) -> str:
        return describe_counts(self.counts(action), limit)

    def summary(self) -> dict[str, Any]:
        return {"rows_in": self.rows_in, "rejected": self.n_rejected, "flagged": self.n_flagged,
                "issues": self.n_issues, "by": self.counts()}

    def all_rejected_error(self) -> Any:
        from .rows import all_rejected

        return all_rejected(self.counts(REJECTED)[0], self.rows_in)

    def table(self) -> pd.DataFrame:
        """The first :data:`SHOWN` rows of the issues table (the file has every one)."""
        return self.first if self.first is not None else pd.DataFrame()

    # -- the end of the batch --------------------------------------------------------------
    def rows_marked(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Whether each of ``rows`` (ascending) was rejected, and whether it was flagged."""
        rejected = np.zeros(len(rows), dtype=bool)
        flagged = np.zeros(len(rows), dtype=bool)
        start = 0
        for n, rej, flag in self.masks:
            inside = (rows >= start) & (rows < start + n)
            if inside.any():
                local = rows[inside] - start
                rejected[inside] = np.unpackbits(rej, count=n).astype(bool)[local]
                flagged[inside] = np.unpackbits(flag, count=n).astype(bool)[local]
            start += n
        return rejected, flagged

    def with_repeats(self, table: pd.DataFrame) -> IssueTally:
        """This tally with the ``duplicate-id`` issues of ids repeated across chunks
        (:func:`nbprod.core.rows.duplicate_issues`; rows ascending)."""
        if not len(table):
            return self
        rows = table["row"].to_numpy()
        rejected, flagged = self.rows_marked(rows)
        by = {k: list(v) for k, v in self.by.items()}
        key = (self.id_column, "duplicate-id", FLAGGED)
        if key in by:
            by[key][0] += len(table)
            by[key][1:] = min(by[key][1:], [int(rows[0]), -1])
        else:
            by[key] = [len(table), int(rows[0]), -1]
        first, place = self.first, list(self.first_place)
        new_place = [(int(r), -1) for r in rows[:SHOWN]]
        joined = pd.concat([first, table.head(SHOWN)], ignore_index=True) \
            if first is not None and len(first) else table.head(SHOWN).reset_index(drop=True)
        places = place + new_place
        order = sorted(range(len(places)), key=lambda i: places[i])[:SHOWN]
        first = joined.iloc[order].reset_index(drop=True)
        marked = IssueTally(self.id_column, self.rows_in, self.n_rejected,
                            self.n_flagged + int((~rejected & ~flagged).sum()),
                            self.n_issues + len(table), by, first, [places[i] for i in order],
                            self.masks)
        return marked


__all__ = ["FLAGGED", "REJECTED", "SHOWN", "IssueTally"]
