"""Loading a packaged artifact and scoring with it.

:func:`load` verifies the whole artifact at a path (:func:`nbprod.core.trust.verify`: every file
listed and hashed, nothing unlisted, no symlink, the signature when trusted keys are configured,
the registry pin for a copy of a ``models:/`` version) *before* anything is executed or
deserialized, then
loads the feature module from the verified source and the model with skops from the verified
bytes (trusting the types the manifest lists only when the manifest is authentic, else only
an allowlist). :meth:`Artifact.score` is the scoring path shared by papermill, the CLI and the
MLflow pyfunc flavour.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from ..exceptions import IntegrityError
from . import manifest as mf
from .schema import Schema
from .scoring import Scorer


class Artifact:
    """A verified, loaded nbprod artifact.

    Made by :func:`nbprod.load`, which verifies every file first. It scores through the one
    scoring path the scoring job uses (:attr:`scorer`), and reads its manifest, snapshots and
    monitoring reference.

    Parameters
    ----------
    root : Path
        The artifact's directory.
    manifest : dict
        Its parsed ``nbprod.json``.
    verification : Verification, optional
        What :func:`nbprod.load` checked, with the verified bytes it keeps.

    Examples
    --------
    >>> art = nbprod.load(ARTIFACT)
    >>> art.task, art.target, art.input_columns
    ('classification', 'churned', ['plan', 'usage', 'tenure'])
    >>> art.score(BATCH.head(2))[["customer_id", "prediction"]]
      customer_id  prediction
    0      C00330           1
    1      C00331           0
    """

    def __init__(self, root: Path, manifest: dict[str, Any],
                 verification: mf.Verification | None = None) -> None:
        self.root = Path(root)
        self.manifest = manifest
        self.verification = verification  # what load() checked; its bytes are used
        self._scorer: Scorer | None = None

    def _bytes(self, rel: str) -> bytes:
        """The verified bytes of ``rel`` when load() kept them, else the file's bytes."""
        kept = self.verification.contents.get(rel) if self.verification else None
        return kept if kept is not None else (self.root / rel).read_bytes()

    @property
    def authentic(self) -> str | None:
        """Why the manifest can be believed (a trusted signature, a registry pin), or None."""
        return self.verification.authentic if self.verification else None

    # -- identity -----------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.manifest["name"])

    @property
    def task(self) -> str:
        return str(self.manifest["task"])

    @property
    def id_column(self) -> str | None:
        return self.manifest.get("id_column")

    @property
    def target(self) -> str:
        return str(self.manifest["target"])

    @property
    def input_columns(self) -> list[str]:
        return list(self.manifest["input_columns"])

    @property
    def classes(self) -> list[Any] | None:
        return self.manifest.get("classes")

    @property
    def digest(self) -> str:
        return mf.digest(self.manifest)

    def snapshot(self, role: str) -> dict[str, Any]:
        """The full metadata (schema, profile, fingerprint) of the ``train``/``valid`` snapshot."""
        entry = self.manifest["snapshots"].get(role)
        if entry is None:
            raise KeyError(f"the artifact has no {role!r} snapshot")
        return json.loads(self._bytes(entry["file"]).decode("utf-8"))

    def snapshot_sample(self, role: str) -> pd.DataFrame:
        entry = self.manifest["snapshots"][role]
        return pd.read_parquet(self.root / entry["sample"])

    @cached_property
    def reference(self) -> dict[str, Any]:
        """The monitoring reference recorded at packaging (outputs, features, metric values)."""
        return json.loads(self._bytes(self.manifest["reference"]).decode("utf-8"))

    @cached_property
    def schema(self) -> Schema:
        return Schema.from_list(self.snapshot("train")["schema"]).select(self.input_columns)

    @cached_property
    def reading_schema(self) -> Schema:
        """The training snapshot's whole schema (id and target included): how a batch's files
        are read, so that text columns stay text."""
        return Schema.from_list(self.snapshot("train")["schema"])

    @cached_property
    def train_profile(self) -> dict[str, Any]:
        """The training snapshot's profile (the drift reference of the raw inputs)."""
        return self.snapshot("train")["profile"]

    # -- scoring ------------------------------------------------------------------------
    @property
    def feature_source(self) -> str:
        return self._bytes(self.manifest["features"]["file"]).decode("utf-8")

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            from . import model_store
            from .feature_code import load_function
            from .pii import columns_of

            feats = self.manifest["features"]
            fn = load_function(self.feature_source, feats["function"], feats["file"])
            model_entry = self.manifest["model"]
            kept = self.verification.contents.get(model_entry["file"]) if self.verification else None
            model = model_store.load(self.root / model_entry["file"], model_entry["trusted_types"],
                                     data=kept, authentic=self.authentic is not None)
            if self.verification:  # deserialized: no need to hold the file's bytes any more
                self.verification.contents.pop(model_entry["file"], None)
            train = self.snapshot("train")
            self._scorer = Scorer(
                schema=self.schema,
                feature_fn=fn,
                model=model,
                task=self.task,
                id_column=self.id_column,
                prediction_from_proba=self.manifest["scoring"]["prediction"] == "argmax_proba",
                bounds=self.manifest.get("bounds"),
                hide_ids=self.id_column in columns_of(self),
                **row_rules(self.manifest, train),
            )
        return self._scorer

    @property
    def model(self) -> Any:
        return self.scorer.model

    def score(self, df: pd.DataFrame, errors: str = "raise") -> pd.DataFrame:
        """Score raw rows: id, ``prediction``, ``proba_<class>``, in input order and index.

        Every row is validated first (see ``docs/scoring.md``, "Row issues").

        Parameters
        ----------
        df : DataFrame
            Raw input rows, as the training snapshot had them (the feature function runs here).
        errors : {"raise", "reject", "mark"}
            ``"raise"`` (default): a row that cannot be scored raises
            :class:`~nbprod.exceptions.RowError` naming its row, column, rule and value, so
            every input row has its output row. ``"reject"``: rejected rows are left out (the
            output keeps the input's index, so ``df.loc[out.index]`` are the scored rows);
            :meth:`validate` or :meth:`score_detailed` give the issues. ``"mark"``: one output
            row per input row (what a Spark UDF needs); rejected rows have missing predictions
            and the reason (rule and column, e.g. ``missing: x2``) in a ``rejected`` column,
            missing for the rows scored (:meth:`nbprod.core.scoring.Scorer.score`).

        Returns
        -------
        DataFrame
            The id column (when the model has one), ``prediction`` and, for a classifier, one
            ``proba_<class>`` column per class; ``rejected`` last under ``errors="mark"``.

        Examples
        --------
        >>> art = nbprod.load(ARTIFACT)
        >>> bad = BATCH.head(3).assign(usage=["12.5", "lots", "3"])
        >>> art.score(bad, errors="reject").index.tolist()  # row 1 is rejected
        [0, 2]
        """
        return self.scorer.score(df, errors=errors)

    def score_detailed(self, df: pd.DataFrame, errors: str = "reject"):
        """The scored batch (:class:`~nbprod.core.scoring.Scored`): ``output`` and ``issues``
        (:class:`~nbprod.core.rows.RowIssues`, model errors included), ``positions`` of the scored
        rows."""
        return self.scorer.score_detailed(df, errors=errors)

    def validate(self, df: pd.DataFrame):
        """The row issues of ``df`` (:class:`~nbprod.core.rows.RowIssues`) without scoring it:
        which rows would be rejected or flagged, and why. Rows the model itself fails on show
        only when scoring (rule ``model-error``)."""
        return self.scorer.validate(df)

    def explain(self, df: pd.DataFrame, *, rows: int | None = None, ids: Any = None,
                method: str = "auto", **options: Any):
        """Per-row explanations (:class:`~nbprod.core.explain.Explanation`): for each row of
        ``df`` that scoring would not reject, the contribution of each model input to the
        model's output, with the base value they add up from (see ``docs/explain.md``).

        ``rows=N`` explains the first N rows, ``ids=[...]`` the rows with these ids; by default
        every row. ``method``: ``auto`` (default), ``linear``, ``tree`` (needs SHAP:
        ``pip install 'nbprod[explain]'``), ``exact`` or ``sampling``. The rejected rows are in
        ``.issues``; ``.frame`` is the long table."""
        from .explain import explain, pick

        chosen, positions = pick(df, rows=rows, ids=ids, id_column=self.id_column)
        return explain(self.scorer, chosen, background=self.background(), positions=positions,
                       method=method, carried=self.carried_features, **options)

    def background(self) -> pd.DataFrame:
        """The reference rows explanations are measured from: the validation snapshot's sample
        (the training sample when there is no validation snapshot)."""
        role = "valid" if "valid" in self.manifest["snapshots"] else "train"
        return self.snapshot_sample(role)

    @property
    def carried_features(self) -> set[str]:
        """Model inputs found at packaging to carry personal data (their values are hidden)."""
        features = self.reference.get("features") or {}
        return set((features.get("pii") or {}).keys())

    def score_record(self, record: dict[str, Any]) -> dict[str, Any]:
        """Score one record (online serving) through the same path as batches.

        A record that cannot be scored raises :class:`~nbprod.exceptions.RowError` naming the
        column, the rule and the value."""
        from ..exceptions import RowError, SchemaError

        if not isinstance(record, dict):
            raise SchemaError(f"score_record expects a dict of column -> value. Got {type(record).__name__}.")
        try:
            out = self.scorer.score(pd.DataFrame([record]), errors="raise")
        except RowError as exc:  # the same error, in the words of one record
            import re

            message = re.sub(r"^Row 0( \(id .*?\))? cannot be scored", r"The record\1 cannot be scored",
                             str(exc)).split(" Fix the input,", 1)[0]
            raise RowError(message, exc.column, row=0, rule=exc.rule, value=exc.value) from None
        if out.empty:
            from ..exceptions import OutputBoundsError

            raise OutputBoundsError("The record's prediction breaks the output bounds (policy drop).")
        return {k: (v.item() if hasattr(v, "item") else v) for k, v in out.iloc[0].items()}

    def __repr__(self) -> str:
        return f"<nbprod.Artifact {self.name!r} ({self.task}) at {self.root}>"


def row_rules(manifest: dict[str, Any], train: dict[str, Any]) -> dict[str, Any]:
    """What the row rules need from the artifact: the training profile, what the model takes
    (``row_rules`` in the manifest; defaults for artifacts without it) and the columns whose
    values are never echoed (personal data)."""
    from .rows import ModelTakes

    profile = train.get("profile") or {}
    hidden = {c for c, p in profile.items() if isinstance(p, dict) and p.get("hidden")}
    hidden |= set(train.get("pii") or [])
    return {"profile": profile, "takes": ModelTakes.from_manifest(manifest.get("row_rules")),
            "hidden": frozenset(hidden)}


def load(path: str | Path, *, trusted_keys: Any = None,
         pin: tuple[str, str] | None = None) -> Artifact:
    """Verify and load the artifact at ``path``; raises IntegrityError naming a bad file.

    ``trusted_keys``: Ed25519 public keys (PEM paths) of which one must have signed the artifact;
    the keys in ``NBPROD_TRUSTED_KEYS`` count too. With none, no signature is required.
    ``pin``: ``(uri, digest)`` when the copy at ``path`` came from the registry, whose digest it
    must have (a pinned artifact counts as authentic). ``nbprod.load`` also takes registry URIs
    (:func:`nbprod.tracking.resolve.load` makes the local copy and its pin, then calls this).
    """
    from . import trust

    root = Path(path)
    check = trust.verify(root, trusted_keys=trusted_keys, pin=pin)
    check.raise_for_problems()
    assert check.manifest is not None
    art = Artifact(root, check.manifest, check)
    art.scorer  # noqa: B018 - deserialize now, after verification, so errors surface at load
    return art


def verify(path: str | Path, *, trusted_keys: Any = None) -> mf.Verification:
    """Verify the whole artifact at ``path`` without loading it.

    Checks the manifest, every file's size and SHA-256, that nothing is missing, extra or a
    link, and the signature (see :func:`nbprod.core.trust.verify`).

    Parameters
    ----------
    path : str or Path
        The artifact's directory.
    trusted_keys : PEM path, key, or list of them, optional
        Ed25519 public keys of which one must have signed the artifact (with
        ``NBPROD_TRUSTED_KEYS``); with none, no signature is required.

    Returns
    -------
    Verification
        ``ok`` and ``problems``, every problem found (never only the first).

    Examples
    --------
    >>> nbprod.verify(ARTIFACT).ok
    True
    """
    from . import trust

    return trust.verify(Path(path), trusted_keys=trusted_keys)


__all__ = ["Artifact", "IntegrityError", "load", "verify"]
