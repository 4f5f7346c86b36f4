"""Snapshots of training and validation data.

A snapshot records what the model was built on: the schema, a mergeable statistical profile
(the drift reference), a stable content fingerprint, and a bounded sample used for parity replay
and for reviewers. Personal columns are never stored raw: those declared with ``--pii`` and
those the detector (:mod:`nbprod.core.pii`) finds personal by name and content, unless declared
``--not-pii``. The sample holds keyed hashes of their values (the key is random and discarded,
so equal values stay equal inside one artifact and cannot be looked up), and the profile and
schema hold only their counts.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import CaptureError
from . import pii as _pii
from .pii import Finding
from .profile import column_profile, frame_profile
from .schema import Schema

DEFAULT_SAMPLE_SIZE = 1000
ROLES = ("train", "valid")
_FINGERPRINT_VERSION = b"nbprod-fingerprint-1"


def row_hashes(df: pd.DataFrame) -> np.ndarray:
    """One uint64 per row, stable across processes; equal rows hash equal."""
    return pd.util.hash_pandas_object(df, index=False, categorize=True).to_numpy()


def fingerprint(df: pd.DataFrame) -> str:
    """SHA-256 over column names, dtypes and the row hashes, in order."""
    h = hashlib.sha256(_FINGERPRINT_VERSION)
    for name in df.columns:
        h.update(f"{name}\x1f{df[name].dtype}\x1e".encode())
    h.update(np.ascontiguousarray(row_hashes(df)).tobytes())
    return h.hexdigest()


def sample_positions(n_rows: int, size: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of a reproducible random sample of at most ``size`` rows."""
    if n_rows <= size:
        return np.arange(n_rows)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=size, replace=False))


pseudonymise = _pii.pseudonymise


@dataclass
class Snapshot:
    """One captured data frame (train or valid) with its metadata.

    ``pii`` is given as the declared personal columns; once built it holds every hidden column:
    the declared ones (``pii_declared``) and those the detector found (``pii_detected``, with
    the evidence), less those declared ``not_pii``.
    """

    role: str
    data: pd.DataFrame
    target: str
    id: str | None = None
    pii: tuple[str, ...] = ()
    sample_size: int = DEFAULT_SAMPLE_SIZE
    source: str | None = None
    not_pii: tuple[str, ...] = ()
    schema: Schema = field(init=False)
    fingerprint: str = field(init=False)
    pii_declared: tuple[str, ...] = field(init=False)
    pii_detected: dict[str, Finding] = field(init=False)

    def __post_init__(self) -> None:
        self.pii = tuple(dict.fromkeys(self.pii))
        self.not_pii = tuple(dict.fromkeys(self.not_pii))
        self._validate()
        # pandas copy-on-write makes a shallow copy behave as a copy: later edits of the
        # user's frame do not reach the snapshot, and nothing is duplicated until then.
        self.data = self.data.copy(deep=False)
        self.pii_declared = self.pii
        skip = {self.target, *self.pii_declared, *self.not_pii}
        self.pii_detected = _pii.detect(self.data, skip=skip)
        self.pii = self.pii_declared + tuple(self.pii_detected)
        self.schema = Schema.infer(self.data, hide_categories=self.pii)
        self.fingerprint = fingerprint(self.data)

    def hide(self, findings: dict[str, Finding]) -> list[str]:
        """Hide more columns as detected (what the other snapshot found); the newly hidden."""
        new = {c: f for c, f in findings.items()
               if c in self.data.columns and c not in self.pii and c not in self.not_pii
               and c != self.target}
        if new:
            self.pii_detected = {**self.pii_detected, **new}
            self.pii = self.pii + tuple(new)
            self.schema = Schema.infer(self.data, hide_categories=self.pii)
        return list(new)

    def declare(self, columns: list[str]) -> list[str]:
        """Hide columns the other snapshot declared ``--pii``; the newly declared."""
        new = [c for c in columns if c in self.data.columns and c not in self.pii_declared
               and c != self.target]
        if new:
            self.pii_declared = self.pii_declared + tuple(new)
            self.not_pii = tuple(c for c in self.not_pii if c not in new)
            self.pii_detected = {c: f for c, f in self.pii_detected.items() if c not in new}
            self.pii = self.pii_declared + tuple(self.pii_detected)
            self.schema = Schema.infer(self.data, hide_categories=self.pii)
        return new

    def unhide(self, columns: list[str]) -> list[str]:
        """Stop hiding detected columns the user declared not personal; the unhidden."""
        gone = [c for c in columns if c in self.pii_detected]
        if gone:
            self.not_pii = tuple(dict.fromkeys(self.not_pii + tuple(gone)))
            self.pii_detected = {c: f for c, f in self.pii_detected.items() if c not in gone}
            self.pii = tuple(c for c in self.pii if c not in gone)
            self.schema = Schema.infer(self.data, hide_categories=self.pii)
        return gone

    # -- checks -----------------------------------------------------------------------
    def _validate(self) -> None:
        df = self.data
        what = f"the {self.role} snapshot"
        if self.role not in ROLES:
            raise CaptureError(f"--role must be one of {', '.join(ROLES)}. Got {self.role!r}.")
        if not isinstance(df, pd.DataFrame):
            raise CaptureError(
                f"{what} must be a pandas DataFrame. Got {type(df).__name__}."
            )
        if len(df) == 0:
            raise CaptureError(f"{what} is empty (0 rows); snapshot a frame with data.")
        bad = [c for c in df.columns if not isinstance(c, str)]
        if bad:
            raise CaptureError(
                f"Column names must be strings; {what} has {bad[0]!r} "
                f"({type(bad[0]).__name__}). Fix: df.columns = df.columns.astype(str)."
            )
        dupes = df.columns[df.columns.duplicated()].tolist()
        if dupes:
            raise CaptureError(f"{what} has duplicate column {dupes[0]!r}; names must be unique.")
        for flag, col in (("--target", self.target), ("--id", self.id)):
            if col is not None and col not in df.columns:
                raise CaptureError(_unknown_column(flag, col, df.columns))
        if self.id is not None and self.id == self.target:
            raise CaptureError("--id and --target must name different columns.")
        for flag, cols in (("--pii", self.pii), ("--not-pii", self.not_pii)):
            for col in cols:
                if col not in df.columns:
                    raise CaptureError(_unknown_column(flag, col, df.columns))
        both = [c for c in self.pii if c in self.not_pii]
        if both:
            raise CaptureError(
                f"Column {both[0]!r} is declared both --pii and --not-pii; say one or the other."
            )
        if self.target in self.pii:
            raise CaptureError(
                f"--pii names the target {self.target!r}: the target's values are the model's "
                "classes and labels, which the artifact records. Personal data cannot be the "
                "target; drop it from --pii."
            )
        if df[self.target].isna().any():
            n = int(df[self.target].isna().sum())
            raise CaptureError(
                f"Target column {self.target!r} has {n} missing value(s) in {what}; "
                "drop or fill them before the snapshot."
            )
        if self.sample_size < 1:
            raise CaptureError(f"--sample must be a positive integer. Got {self.sample_size}.")

    # -- views ------------------------------------------------------------------------
    @property
    def feature_columns(self) -> list[str]:
        """The raw input columns: everything but the target and the id."""
        return [c for c in self.data.columns if c not in (self.target, self.id)]

    @property
    def X(self) -> pd.DataFrame:
        return self.data[self.feature_columns]

    @property
    def y(self) -> pd.Series:
        return self.data[self.target]

    @property
    def n_rows(self) -> int:
        return len(self.data)

    def sample_positions(self) -> np.ndarray:
        return sample_positions(self.n_rows, self.sample_size)

    def raw_sample(self) -> pd.DataFrame:
        """The sampled rows as they are in memory (PII included): never written to the artifact."""
        return self.data.iloc[self.sample_positions()]

    def stored_sample(self, key: bytes | None = None) -> pd.DataFrame:
        """The sampled rows as written into the artifact, PII columns pseudonymised."""
        sample = self.raw_sample().reset_index(drop=True)
        if self.pii:
            key = key or os.urandom(32)
            sample = sample.assign(**{c: pseudonymise(sample[c], key) for c in self.pii})
        return sample

    def metadata(self) -> dict[str, Any]:
        """Everything about the snapshot that goes into the manifest and snapshot file."""
        hidden = set(self.pii)
        return {
            "role": self.role,
            "rows": self.n_rows,
            "columns": list(self.data.columns),
            "target": self.target,
            "id": self.id,
            "pii": list(self.pii),
            "pii_declared": list(self.pii_declared),
            "pii_detected": {c: f.to_dict() for c, f in self.pii_detected.items()},
            "not_pii": list(self.not_pii),
            "pii_detector": {"version": _pii.DETECTOR_VERSION, "sample_size": _pii.SAMPLE_SIZE,
                             "match_share": _pii.MATCH_SHARE,
                             "hinted_share": _pii.HINTED_SHARE},
            "source": self.source,
            "fingerprint": self.fingerprint,
            "schema": self.schema.to_list(),
            "profile": frame_profile(self.X, hidden=hidden),
            "target_profile": column_profile(self.y),
            "sample_rows": int(min(self.n_rows, self.sample_size)),
        }

    def describe(self) -> str:
        cols = len(self.feature_columns)
        parts = [*self.pii_declared, *(f"{c} (detected)" for c in self.pii_detected)]
        pii = f", PII {', '.join(parts)}" if parts else ""
        ident = f", id {self.id!r}" if self.id else ""
        return (
            f"{self.role} snapshot: {self.n_rows:,} rows x {cols} input columns, "
            f"target {self.target!r}{ident}{pii}; fingerprint {self.fingerprint[:12]}"
        )


def _unknown_column(flag: str, col: str, columns: pd.Index) -> str:
    import difflib

    near = difflib.get_close_matches(col, [str(c) for c in columns], n=1)
    hint = f" Did you mean {near[0]!r}?" if near else ""
    return f"{flag} names column {col!r}, which the frame does not have.{hint}"
