"""The one scoring path: validate input -> features -> predict -> output frame.

:class:`Scorer` is built either from live objects in the notebook (for parity replay) or from a
loaded artifact; papermill, the CLI, ``Artifact.score`` and the MLflow pyfunc flavour all end
here, so batch, online and replayed scoring share one code path.

Every row is validated first (:mod:`nbprod.core.rows`): rejected rows are not scored, flagged rows
are. If the feature function or the model still fails on the rows left, the failing rows are
isolated by bisection and rejected as ``model-error``; when more than
:data:`MAX_MODEL_ERROR_ROWS` rows fail that way the batch fails as a whole, so a feature
function broken for every row stays one clear error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import FeatureError, ModelFailure, NbprodError, OutputBoundsError, SchemaError
from .rows import MODEL_ERROR, REJECTED, ModelTakes, RowIssues, validate
from .schema import Schema, conform, conform_rows

PREDICTION = "prediction"
PROBA_PREFIX = "proba_"
OUT_OF_BOUNDS = "out_of_bounds"
MAX_MODEL_ERROR_ROWS = 50  # more rows failing inside the model: the batch fails as a whole
ERRORS = ("raise", "reject", "mark")
REASON = "rejected"  # errors="mark": why a row has no prediction (None when it has one)
BOUNDS_RULE = "out-of-bounds"  # errors="mark": the reason of a prediction the bounds drop


def proba_column(cls: Any) -> str:
    if isinstance(cls, np.generic):
        cls = cls.item()
    return f"{PROBA_PREFIX}{cls}"


def _take_classes(classes: np.ndarray, codes: np.ndarray) -> Any:
    """``classes[codes]``, as the column the output frame would make of it.

    Text labels are taken from a small array holding the classes as pandas' string dtype:
    inferring that dtype from a million Python strings costs more than predict_proba itself,
    and the result (values and dtype) is the same as ``pd.DataFrame({...: classes[codes]})``.
    """
    if classes.dtype == object and len(classes):
        labels = pd.Series(classes, copy=False).array  # the same inference as the output frame
        if isinstance(labels.dtype, pd.StringDtype):
            return labels.take(codes)
    return classes[codes]


@dataclass
class Scored:
    """A scored batch: the output as written, the conformed input of the scored rows, every
    raw output row and the mask of rows outside the output bounds (before any were dropped).

    ``issues`` holds the row issues (:class:`~nbprod.core.rows.RowIssues`), ``positions`` the input
    position of each scored row and ``all_inputs`` every input row conformed (rejected rows
    included, values that did not convert as nulls)."""

    output: pd.DataFrame
    inputs: pd.DataFrame
    all_outputs: pd.DataFrame
    out_of_bounds: np.ndarray
    features: Any = None
    issues: RowIssues | None = None
    positions: np.ndarray | None = None
    all_inputs: pd.DataFrame | None = None

    @property
    def rows_in(self) -> int:
        return self.issues.rows_in if self.issues is not None else len(self.inputs)

    def parity_frame(self) -> pd.DataFrame:
        """Every raw output row with its bounds verdict: what parity replay compares, whatever
        the bounds policy would then do with the violating rows."""
        return self.all_outputs.assign(**{OUT_OF_BOUNDS: self.out_of_bounds})


@dataclass
class Scorer:
    """Everything needed to score raw input frames."""

    schema: Schema  # raw input columns (no target, no id), from the train snapshot
    feature_fn: Callable[[pd.DataFrame], Any]
    model: Any
    task: str  # "classification" | "regression"
    id_column: str | None = None
    prediction_from_proba: bool = False
    bounds: dict[str, Any] | None = None  # output sanity bounds and their policy
    hide_ids: bool = False  # the id column is personal data: messages give row numbers
    profile: dict[str, Any] | None = None  # training profile: ranges and categories per column
    takes: ModelTakes = field(default_factory=ModelTakes)  # what the model takes (row rules)
    hidden: frozenset[str] = frozenset()  # personal-data columns: values never echoed

    @property
    def classes(self) -> list[Any] | None:
        if self.task != "classification":
            return None
        return list(self.model.classes_)

    @property
    def output_columns(self) -> list[str]:
        cols = [self.id_column] if self.id_column else []
        cols.append(PREDICTION)
        if self.task == "classification":
            cols += [proba_column(c) for c in self.model.classes_]
        if self.bounds and self.bounds["policy"] == "flag":
            cols.append(OUT_OF_BOUNDS)
        return cols

    def prepare(self, df: pd.DataFrame) -> pd.DataFrame:
        """Conform ``df`` to the training schema (raises SchemaError naming the column)."""
        if self.id_column and isinstance(df, pd.DataFrame) and self.id_column not in df.columns:
            raise SchemaError(
                f"Input is missing the id column {self.id_column!r} declared at snapshot time.",
                column=self.id_column,
            )
        X = conform(df, self.schema)
        if len(X) == 0:
            raise SchemaError("Input has no rows to score.")
        return X

    def features(self, X: pd.DataFrame) -> Any:
        try:
            out = self.feature_fn(X)
        except Exception as exc:
            raise FeatureError(f"The feature function {self._fn_name}() raised "
                               f"{type(exc).__name__}: {exc}") from exc
        return self._check_features(out, X)

    @property
    def _fn_name(self) -> str:
        return getattr(self.feature_fn, "__name__", "features")

    def _check_features(self, out: Any, X: pd.DataFrame) -> Any:
        n = getattr(out, "shape", (None,))[0]
        if n is None:
            raise FeatureError(
                f"The feature function returned a {type(out).__name__}; it must return a "
                "DataFrame or array with one row per input row."
            )
        if n != len(X):
            raise FeatureError(
                f"The feature function returned {n} rows for {len(X)} input rows; it must keep "
                "one row per input row, in order (no filtering or de-duplication)."
            )
        return out

    def predict(self, features: Any, index: pd.Index) -> pd.DataFrame:
        """Model outputs for a feature matrix, as the output frame (without the id)."""
        if self.task == "classification":
            proba = np.asarray(self.model.predict_proba(features), dtype="float64")
            classes = np.asarray(self.model.classes_)
            pred: Any
            if self.prediction_from_proba:
                pred = _take_classes(classes, np.argmax(proba, axis=1))
            else:
                pred = np.asarray(self.model.predict(features))
            cols: dict[str, Any] = {PREDICTION: pred}
            for j, cls in enumerate(classes):
                cols[proba_column(cls)] = proba[:, j]
            return pd.DataFrame(cols, index=index)
        pred = np.asarray(self.model.predict(features))
        if pred.ndim != 1:
            pred = pred.reshape(len(index), -1)
            if pred.shape[1] != 1:
                raise FeatureError(
                    f"The model returned {pred.shape[1]} outputs per row; nbprod scores "
                    "single-output models."
                )
            pred = pred[:, 0]
        return pd.DataFrame({PREDICTION: pred}, index=index)

    def score(self, df: pd.DataFrame, *, errors: str = "raise") -> pd.DataFrame:
        """Score raw rows: id, prediction, proba_<class>, in input order, with the input's index.

        ``errors="raise"`` (default) raises :class:`~nbprod.exceptions.RowError` naming the
        first row that cannot be scored (so every input row has its output row);
        ``errors="reject"`` leaves rejected rows out. Flagged rows are scored either way.
        With output bounds declared, the ``flag`` policy adds an ``out_of_bounds`` column,
        ``drop`` removes violating rows and ``fail`` raises :class:`OutputBoundsError`.

        ``errors="mark"`` returns exactly one output row per input row (a Spark UDF, a REST
        client): rejected rows keep their id, have missing ``prediction`` and ``proba_<class>``
        and, in the column :func:`reason_column` names (``rejected``), the reason in one line:
        ``rule: column`` per rejected column, ``; `` between them (``missing: x2``), ``model-error``
        for a row the feature function or the model fails on alone, ``out-of-bounds`` for a
        prediction the bounds' ``drop`` policy would remove. Values never appear there. Accepted
        rows have a missing reason. The columns and their dtypes are the same whatever the rows,
        pandas' nullable dtypes (missing is ``pd.NA``, ``null`` in JSON and Spark): ``string``
        for the reason and text classes, ``Float64`` for probabilities and regression, ``Int64``
        or ``boolean`` for such classes (and ``out_of_bounds`` under ``flag``); the id keeps the
        input's dtype. A batch whose every row is
        rejected comes back marked; so does a column in which no value converts (the batch may
        be one slice of a larger input). A missing column, a bounds policy ``fail`` broken, or
        more than :data:`MAX_MODEL_ERROR_ROWS` rows the model fails on still raise.
        """
        return self.score_detailed(df, errors=errors).output

    def validate(self, df: pd.DataFrame) -> RowIssues:
        """The row issues of ``df`` under the rules, without running the model."""
        self._require_id(df)
        X, lost = conform_rows(df, self.schema)
        return self._issues(df, X, lost)

    def score_detailed(self, df: pd.DataFrame, *, apply_policy: bool = True,
                       errors: str = "reject", start: int = 0, part: bool = False) -> Scored:
        """Validate every row, score the rows not rejected, and keep what monitoring needs.

        ``apply_policy=False`` (parity replay) marks violating rows without the policy acting
        on them: nothing dropped, nothing refused. Raises :class:`~nbprod.exceptions.SchemaError`
        for problems of the input as a whole (missing column, no rows, a column where no value
        converts, every row rejected).

        ``part=True`` scores ``df`` as one chunk of a larger batch whose first row is at
        position ``start``: what can only be judged on the whole batch is left to the caller
        (:mod:`nbprod.jobs.chunk`): ids repeated across chunks, a column where no value
        converts, every row rejected, the number of rows the model fails on, and the bounds'
        ``fail`` policy. A chunk whose rows are all rejected comes back with an empty output.

        ``errors="mark"``: ``output`` has every input row (see :meth:`score`); ``inputs``,
        ``all_outputs`` and ``positions`` stay those of the rows scored."""
        if errors not in ERRORS:
            from ..exceptions import NbprodUsageError

            raise NbprodUsageError(f"errors must be one of {', '.join(ERRORS)}. Got {errors!r}.")
        self._require_id(df)
        mark = errors == "mark"
        X, lost = conform_rows(df, self.schema, whole=not (part or mark))
        if len(X) == 0 and not mark:
            raise SchemaError("Input has no rows to score.")
        issues = validate(df, X, lost, self.schema, profile=self.profile, takes=self.takes,
                          id_column=self.id_column, hidden=self.hidden, start=start,
                          duplicates=not part)
        rejected = issues.n_rejected
        if errors == "raise" and rejected:
            raise issues.first_rejection()
        if rejected == len(X):
            if not (part or mark):
                raise issues.all_rejected_error()
            return self._marked(df, self._nothing_kept(X, issues)) if mark else \
                self._nothing_kept(X, issues)
        keep = ~issues.rejected
        feats, out, issues, keep = self._score_kept(df, X, issues, keep, errors, part or mark)
        if out is None:
            nothing = self._nothing_kept(X, issues)
            return self._marked(df, nothing) if mark else nothing
        rejected = issues.n_rejected
        if errors == "raise" and rejected:
            raise issues.first_rejection()
        positions = np.flatnonzero(keep) if rejected else np.arange(len(X))
        Xk = X.iloc[positions] if rejected else X
        if self.id_column:
            ids = df[self.id_column].to_numpy()
            out.insert(0, self.id_column, ids if len(positions) == len(ids) else ids[positions])
        bad = np.zeros(len(out), dtype=bool)
        result = out
        if self.bounds:
            from .bounds import violations

            bad = violations(out, self.bounds)
            policy = self.bounds["policy"]
            if apply_policy and not (part and policy == "fail") and not (mark and policy == "drop"):
                result = self.apply_bounds(out, bad)
        scored = Scored(result, Xk, out, bad, feats, issues=issues, positions=positions,
                        all_inputs=X)
        return self._marked(df, scored, drop=apply_policy) if mark else scored

    # -- errors="mark": one output row per input row ---------------------------------------
    @property
    def reason_column(self) -> str:
        """The name of the reason column under ``errors="mark"``."""
        return reason_column(self.output_columns)

    def marked_dtypes(self) -> dict[str, Any]:
        """The dtype of each output column under ``errors="mark"``: the same whatever the rows
        (a Spark UDF has one result type), missing values allowed in every column."""
        dtypes: dict[str, Any] = {}
        for col in self.output_columns:
            if col == self.id_column:
                continue
            if col == PREDICTION and self.task == "classification":
                classes = np.asarray(self.model.classes_)
                dtypes[col] = _nullable(pd.Series(_take_classes(classes, np.zeros(0, int))).dtype)
            elif col == OUT_OF_BOUNDS:
                dtypes[col] = pd.BooleanDtype()
            else:
                dtypes[col] = pd.Float64Dtype()
        dtypes[self.reason_column] = pd.StringDtype()
        return dtypes

    def _marked(self, df: pd.DataFrame, scored: Scored, drop: bool = True) -> Scored:
        """``scored`` with ``output`` holding every row of ``df`` (see :meth:`score`)."""
        n = len(df)
        positions = scored.positions if scored.positions is not None else np.arange(0)
        where = np.full(n, -1, dtype="int64")
        where[positions] = np.arange(len(positions))
        texts = _reasons(scored.issues)
        if self.bounds and self.bounds["policy"] == "drop" and drop and scored.out_of_bounds.any():
            out_pos = positions[scored.out_of_bounds]
            where[out_pos] = -1
            texts = pd.concat([texts, pd.Series(BOUNDS_RULE, index=out_pos)])
        codes = np.full(n, -1, dtype="int64")
        labels: Any = []
        if len(texts):
            found, labels = pd.factorize(texts.to_numpy(dtype=object))
            codes[texts.index.to_numpy(dtype="int64")] = found
        reasons = pd.array(list(labels), dtype=pd.StringDtype()).take(codes, allow_fill=True)
        cols: dict[str, Any] = {}
        if self.id_column:
            cols[self.id_column] = df[self.id_column].array  # the input's dtype, whatever the rows
        for col, dtype in self.marked_dtypes().items():
            if col == self.reason_column:
                cols[col] = reasons
                continue
            source = scored.output[col] if col in scored.output else \
                pd.Series([None] * len(positions), dtype="object")  # no rows, or no policy
            kw = {"fill_value": None} if dtype == np.dtype("object") else {}
            cols[col] = source.astype(dtype).array.take(where, allow_fill=True, **kw)
        output = pd.DataFrame(cols, index=df.index)
        return Scored(output, scored.inputs, scored.all_outputs, scored.out_of_bounds,
                      scored.features, issues=scored.issues, positions=scored.positions,
                      all_inputs=scored.all_inputs)

    def _nothing_kept(self, X: pd.DataFrame, issues: RowIssues) -> Scored:
        """A chunk (``part=True``) whose every row was rejected: nothing to write."""
        empty = pd.DataFrame({c: pd.Series([], dtype="object") for c in self.output_columns
                              if c != OUT_OF_BOUNDS})
        return Scored(empty, X.iloc[:0], empty, np.zeros(0, dtype=bool), None, issues=issues,
                      positions=np.zeros(0, dtype="int64"), all_inputs=X)

    def _require_id(self, df: pd.DataFrame) -> None:
        if self.id_column and isinstance(df, pd.DataFrame) and self.id_column not in df.columns:
            raise SchemaError(
                f"Input is missing the id column {self.id_column!r} declared at snapshot time.",
                column=self.id_column,
            )

    def _issues(self, df: pd.DataFrame, X: pd.DataFrame, lost: dict[str, np.ndarray]) -> RowIssues:
        return validate(df, X, lost, self.schema, profile=self.profile, takes=self.takes,
                        id_column=self.id_column, hidden=self.hidden)

    # -- running the model, isolating the rows it fails on -------------------------------
    def _model(self, X: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
        """Features and outputs for ``X``; an exception of the feature function or the model
        becomes :class:`ModelFailure` (our own shape checks raise FeatureError at once)."""
        try:
            raw = self.feature_fn(X)
        except MemoryError:
            raise
        except Exception as exc:
            raise ModelFailure(f"the feature function {self._fn_name}() raised", exc) from exc
        feats = self._check_features(raw, X)
        try:
            out = self.predict(feats, X.index)
        except (FeatureError, MemoryError):
            raise
        except Exception as exc:
            raise ModelFailure(f"the model ({type(self.model).__name__}) raised", exc) from exc
        return feats, out

    def _score_kept(self, df: pd.DataFrame, X: pd.DataFrame, issues: RowIssues,
                    keep: np.ndarray, errors: str,
                    part: bool = False) -> tuple[Any, pd.DataFrame | None, RowIssues, np.ndarray]:
        """Score the kept rows; rows the model fails on alone are rejected as model errors.

        In ``raise`` mode the caller raises as soon as ``issues`` has a rejection. In a chunk
        (``part``) that loses every row this way the output is None (see score_detailed)."""
        ids = df[self.id_column] if self.id_column else None
        Xk = X if not issues.rejected.any() else X.iloc[np.flatnonzero(keep)]
        try:
            feats, out = self._model(Xk)
        except ModelFailure as first:
            failed = self._isolate(Xk, first)
            if len(failed) == len(Xk) and not part:
                raise _batch_error(first, len(Xk)) from first.exc
            pos = np.flatnonzero(keep)[[p for p, _ in failed]]
            issues = issues.add(pos, column=None, rule=MODEL_ERROR, action=REJECTED,
                                detail=[failure_text(f, hide=bool(self.hidden)) for _, f in failed],
                                ids=ids)
            if errors == "raise":
                return None, pd.DataFrame(), issues, keep
            keep = ~issues.rejected
            if not keep.any():
                return None, None, issues, keep
            feats, out = self._model_again(X, keep)
        nonfinite = nonfinite_rows(out)
        if nonfinite.any():
            pos = np.flatnonzero(keep)[nonfinite]
            issues = issues.add(pos, column=None, rule=MODEL_ERROR, action=REJECTED,
                                detail="the model returned a non-finite output for this row",
                                ids=ids)
            if issues.n_rejected == len(X):
                if part:
                    return None, None, issues, ~issues.rejected
                raise issues.all_rejected_error()
            if errors == "raise":
                return None, pd.DataFrame(), issues, keep
            keep = ~issues.rejected
            feats, out = self._model_again(X, keep)
        return feats, out, issues, keep

    def _model_again(self, X: pd.DataFrame, keep: np.ndarray) -> tuple[Any, pd.DataFrame]:
        """The model on the rows left once the failing ones are out, all together."""
        Xk = X.iloc[np.flatnonzero(keep)]
        try:
            return self._model(Xk)
        except ModelFailure as again:  # the failure depends on the batch, not on rows
            raise _batch_error(again, len(Xk)) from again.exc

    def _isolate(self, X: pd.DataFrame, first: ModelFailure) -> list[tuple[int, ModelFailure]]:
        """Positions (in ``X``) of the rows the model fails on alone, by bisection.

        Stops after :data:`MAX_MODEL_ERROR_ROWS` failing rows: then the whole batch fails with
        the first error (a feature function broken for every row costs about 2 x that many
        calls, not one per row)."""
        failed: list[tuple[int, ModelFailure]] = []
        stack = [(0, len(X), first)]  # segments known to fail
        while stack:
            lo, hi, failure = stack.pop()
            if hi - lo == 1:
                failed.append((lo, failure))
                if len(failed) > MAX_MODEL_ERROR_ROWS:
                    raise _batch_error(first, len(X), isolated=len(failed)) from first.exc
                continue
            mid = (lo + hi) // 2
            for a, b in ((mid, hi), (lo, mid)):  # popped in order: left half first
                try:
                    self._model(X.iloc[a:b])
                except ModelFailure as f:
                    stack.append((a, b, f))
        failed.sort(key=lambda t: t[0])
        return failed

    def failure(self, df: pd.DataFrame) -> str | None:
        """Why these rows cannot be scored as a whole (conversion, the feature function, the
        model, or a non-finite output), in one line; None when they can. What packaging probes
        to learn which values the model takes."""
        try:
            X, _ = conform_rows(df, self.schema)
            _, out = self._model(X)
        except ModelFailure as failure:
            return failure_text(failure)
        except NbprodError as exc:
            return str(exc)[:320]
        if nonfinite_rows(out).any():
            return "the model returned a non-finite output"
        return None

    def apply_bounds(self, out: pd.DataFrame, bad: np.ndarray) -> pd.DataFrame:
        assert self.bounds is not None
        policy = self.bounds["policy"]
        if policy == "flag":
            out = out.copy()
            out[OUT_OF_BOUNDS] = bad
            return out
        if not bad.any():
            return out
        if policy == "drop":
            return out.loc[~bad]
        rows = out.loc[bad]
        by_id = self.id_column and not self.hide_ids
        ids = rows[self.id_column].tolist()[:10] if by_id else np.flatnonzero(bad)[:10].tolist()
        what = "ids" if by_id else "rows"
        raise OutputBoundsError(
            f"{int(bad.sum())} prediction(s) break the output bounds declared at packaging "
            f"(policy fail), {what} {ids}; nothing was written."
        )


def _reasons(issues: RowIssues | None) -> pd.Series:
    """The reason of each rejected row, by local position: ``rule: column`` (or the rule alone
    when no column is to blame), ``; `` between the columns of one row. Never a value."""
    if issues is None or not len(issues.frame):
        return pd.Series([], dtype=object)
    f = issues.frame[issues.frame["action"] == REJECTED]
    rule = f["rule"].astype(object).to_numpy()
    column = f["column"].astype(object).to_numpy()
    named = np.array([isinstance(c, str) for c in column], dtype=bool)
    texts = rule.copy()
    texts[named] = rule[named] + ": " + column[named]
    local = f["row"].to_numpy(dtype="int64") - issues.start
    order = np.argsort(local, kind="stable")  # a row's columns stay in the issues' order
    local, texts = local[order], texts[order]
    first = np.r_[True, local[1:] != local[:-1]] if len(local) else np.zeros(0, dtype=bool)
    group = np.cumsum(first) - 1
    rank = np.arange(len(local)) - np.flatnonzero(first)[group]
    joined = texts[first].copy()
    for k in range(1, int(rank.max(initial=0)) + 1):  # several rejected columns in one row
        more = rank == k
        joined[group[more]] = joined[group[more]] + "; " + texts[more]
    return pd.Series(joined, index=local[first], dtype=object)


def _nullable(dtype: Any) -> Any:
    """``dtype`` as pandas' nullable dtype, whose missing value is ``pd.NA`` (a real null in
    Arrow and Spark, ``null`` in MLflow's JSON, where a float NaN is written ``NaN``): text
    becomes ``string``, integers ``Int64``, booleans ``boolean``, floats ``Float64``; other
    dtypes (objects, dates) stay as they are."""
    if isinstance(dtype, pd.StringDtype):
        return pd.StringDtype()
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):
        return dtype
    if pd.api.types.is_bool_dtype(dtype):
        return pd.BooleanDtype()
    if pd.api.types.is_integer_dtype(dtype):
        return pd.Int64Dtype()
    if pd.api.types.is_float_dtype(dtype):
        return pd.Float64Dtype()
    return dtype


def reason_column(output_columns: list[str]) -> str:
    """The reason column's name under ``errors="mark"``: ``rejected``, or ``nbprod_rejected``
    when an output column (the id) already has that name."""
    return REASON if REASON not in output_columns else f"nbprod_{REASON}"


def failure_text(failure: ModelFailure, *, hide: bool = False) -> str:
    """One line for a model-error row: which step raised what (cut to a sane length).

    ``hide``: the input has personal-data columns, whose values an exception's message may
    echo (``Found unknown categories ['jane.doe@...']``): the message is left out."""
    from .rows import VALUE_CHARS

    exc = failure.exc
    if hide:
        return (f"{failure.where} {type(exc).__name__} (its message is not shown: the input "
                "has personal-data columns)")
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    limit = 4 * VALUE_CHARS
    if len(message) > limit:
        message = message[: limit - 3] + "..."
    return f"{failure.where} {type(exc).__name__}: {message}"


def _batch_error(failure: ModelFailure, rows: int, isolated: int = 0) -> FeatureError:
    return batch_refused(failure_text(failure), rows, isolated)


def batch_refused(text: str, rows: int, isolated: int = 0) -> FeatureError:
    """The error when the feature function or the model fails on a whole batch of ``rows``
    (``text`` is :func:`failure_text`'s line), or on more than :data:`MAX_MODEL_ERROR_ROWS`
    single rows (``isolated``)."""
    if isolated:
        return FeatureError(
            f"{text[0].upper()}{text[1:]} (on more than {MAX_MODEL_ERROR_ROWS} single rows, "
            "so the whole batch is refused: is the feature function or the model broken?)")
    if text.startswith("the feature function "):
        return FeatureError(f"The feature function {text[len('the feature function '):]}")
    return FeatureError(f"{text[0].upper()}{text[1:]} on every one of the {rows:,} rows.")


def nonfinite_rows(out: pd.DataFrame) -> np.ndarray:
    """Rows whose numeric outputs (regression prediction, probabilities) are not finite."""
    bad = np.zeros(len(out), dtype=bool)
    for col in out.columns:
        if (col.startswith(PROBA_PREFIX) or col == PREDICTION) and \
                pd.api.types.is_float_dtype(out[col].dtype):  # never convert text classes
            bad |= ~np.isfinite(out[col].to_numpy(dtype="float64", na_value=np.nan))
    return bad


def compare_outputs(
    expected: pd.DataFrame, actual: pd.DataFrame, *, rtol: float = 1e-9, atol: float = 1e-12
) -> list[str]:
    """Differences between two output frames, as readable lines (empty when they agree).

    Classes and ids must be identical; floats must agree within ``rtol`` relative (``atol``
    only absorbs values that are zero up to rounding).
    """
    problems: list[str] = []
    if list(expected.columns) != list(actual.columns):
        return [f"columns differ: notebook {list(expected.columns)}, artifact {list(actual.columns)}"]
    if len(expected) != len(actual):
        return [f"row counts differ: notebook {len(expected)}, artifact {len(actual)}"]
    for col in expected.columns:
        a = expected[col].to_numpy()
        b = actual[col].to_numpy()
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            a = a.astype("float64")
            b = b.astype("float64")
            same = np.isclose(a, b, rtol=rtol, atol=atol) | (np.isnan(a) & np.isnan(b))
        else:
            same = np.asarray(pd.Series(a).astype("object").to_numpy() == pd.Series(b).astype("object").to_numpy())
        if not same.all():
            bad = np.flatnonzero(~same)
            i = int(bad[0])
            problems.append(
                f"{len(bad)} of {len(a)} rows differ in {col!r}; first at sample row {i}: "
                f"notebook {a[i]!r}, artifact {b[i]!r}"
            )
    return problems
