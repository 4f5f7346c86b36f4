"""The capture session: what the notebook has declared so far, as plain Python.

Every magic is a thin skin over a method here, so scripts and tests need no IPython::

    import nbprod
    s = nbprod.Session("churn")
    s.snapshot(train_df, role="train", target="churned", id="customer_id")
    s.snapshot(valid_df, role="valid", target="churned", id="customer_id")
    s.features(features)            # a function, captured as source
    s.model(model)                  # a fitted estimator
    s.package("artifacts/churn")
"""

from __future__ import annotations

import inspect
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.feature_code import FeatureCode, capture
from ..core.model_store import check_estimator
from ..core.results import CheckResult
from ..core.snapshot import DEFAULT_SAMPLE_SIZE, Snapshot
from ..exceptions import CaptureError


@dataclass
class FeatureCapture:
    code: FeatureCode
    fn: Any  # the live function in the notebook, used for parity replay

    @property
    def fn_name(self) -> str:
        return self.code.fn_name


@dataclass
class ModelCapture:
    model: Any
    var: str
    task: str
    cell_source: str | None = None

    @property
    def class_name(self) -> str:
        t = type(self.model)
        return f"{t.__module__}.{t.__qualname__}"


@dataclass
class Session:
    """Captures for one model: snapshots, feature code, fitted model, check results.

    What the ``%nbprod`` magics fill in a notebook; usable from plain Python too.

    Parameters
    ----------
    name : str, optional
        The model's name (default: the notebook's name).
    notebook_path : str, optional
        The notebook the captures come from (for provenance).

    Examples
    --------
    >>> s = nbprod.Session(name="churn")
    >>> s.snapshot(TRAIN, role="train", target="churned", id="customer_id")  # doctest: +SKIP
    >>> s.package("artifacts/churn", log_to_mlflow=False)  # doctest: +SKIP
    >>> s.name, s.snapshots
    ('churn', {})
    """

    name: str | None = None
    notebook_path: str | None = None
    snapshots: dict[str, Snapshot] = field(default_factory=dict)
    feature_capture: FeatureCapture | None = None
    model_capture: ModelCapture | None = None
    checks: dict[str, CheckResult] = field(default_factory=dict)
    cells: list[dict[str, str]] = field(default_factory=list)  # provenance: captured cells
    # what the checks evaluate on, computed once per capture state (nbprod.checks.context)
    evaluation_cache: Any = field(default=None, init=False, repr=False, compare=False)

    # -- capture ------------------------------------------------------------------------
    def init(self, name: str) -> None:
        if not name or not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
            raise CaptureError(
                f"Model names may use letters, digits, '-', '_' and '.'. Got {name!r}."
            )
        self.name = name

    def snapshot(
        self,
        df: pd.DataFrame,
        *,
        role: str,
        target: str,
        id: str | None = None,
        pii: tuple[str, ...] | list[str] = (),
        sample_size: int = DEFAULT_SAMPLE_SIZE,
        source: str | None = None,
        not_pii: tuple[str, ...] | list[str] = (),
    ) -> Snapshot:
        """Record ``df`` as the ``train`` or ``valid`` snapshot.

        Columns that look personal (see :mod:`nbprod.core.pii`) and are not declared in ``pii`` are
        hidden like declared ones, with a :class:`~nbprod.exceptions.PersonalDataWarning` naming the
        column and the evidence; ``not_pii`` says a column is not personal. Declarations and
        findings hold for both snapshots: what one hides, the other hides too.
        """
        other = self.snapshots.get("valid" if role == "train" else "train")
        pii, not_pii = _reconcile(tuple(pii), tuple(not_pii), other, df)
        snap = Snapshot(
            role=role,
            data=df,
            target=target,
            id=id,
            pii=pii,
            sample_size=sample_size,
            source=source,
            not_pii=not_pii,
        )
        found = dict(snap.pii_detected)  # this snapshot's own findings, each one warned of
        if other is not None:
            _check_compatible(snap, other)
            snap.hide(other.pii_detected)
            other.declare(list(snap.pii_declared))
            other.unhide(list(snap.not_pii))
            other.hide(found)
        for col, finding in found.items():
            warn_detected(snap, col, finding)
        self.snapshots[role] = snap
        self._record_cell(f"snapshot {role}", source or "")
        return snap

    def features(
        self,
        fn: Any = None,
        *,
        source: str | None = None,
        namespace: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> FeatureCapture:
        """Capture the feature function.

        Either pass the function itself (its module's globals serve as the namespace), or the
        ``source`` of a cell together with the ``namespace`` it ran in (what the magic does).
        """
        if source is None:
            if not callable(fn):
                raise CaptureError("Pass the feature function, or source= and namespace=.")
            try:
                source = textwrap.dedent(inspect.getsource(fn))
            except (OSError, TypeError):
                raise CaptureError(
                    f"The source of {getattr(fn, '__name__', fn)!r} is not available; define it "
                    "in a cell or a file."
                ) from None
            namespace = dict(getattr(fn, "__globals__", {}))
            namespace[fn.__name__] = fn
            name = name or fn.__name__
        if namespace is None:
            raise CaptureError("features(source=...) also needs the namespace the source ran in.")
        code = capture(source, namespace, fn=name)
        live = namespace.get(code.fn_name)
        self.feature_capture = FeatureCapture(code=code, fn=live)
        self._record_cell("features", source)
        return self.feature_capture

    def model(self, model: Any, *, var: str = "model", cell_source: str | None = None) -> ModelCapture:
        task = check_estimator(model, var)
        self.model_capture = ModelCapture(model=model, var=var, task=task, cell_source=cell_source)
        if cell_source is not None:
            self._record_cell("model", cell_source)
        return self.model_capture

    def record_check(self, result: CheckResult) -> CheckResult:
        """Store a check result; re-running a check replaces its earlier result."""
        self.checks[result.name] = result
        return result

    def check(self, kind: str, **options: Any) -> list[CheckResult]:
        """Run a check (overfit, metric, cv, baseline, data, bounds) and record its results.

        Options are the magic's flags with dashes as underscores, e.g.
        ``s.check("overfit", metric="roc_auc", max_gap=0.05)``.
        """
        from .. import checks

        if kind not in checks.KINDS:
            import difflib

            near = difflib.get_close_matches(kind, checks.KINDS, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise CaptureError(
                f"Unknown check {kind!r}; one of: {', '.join(checks.KINDS)}.{hint}"
            )
        out = getattr(checks, kind)(self, **options)
        results = out if isinstance(out, list) else [out]
        if kind == "data":  # a re-run replaces every earlier data result
            self.checks = {n: c for n, c in self.checks.items() if c.kind != "data"}
        for r in results:
            self.record_check(r)
        return results

    @property
    def bounds(self) -> dict[str, Any] | None:
        """The output bounds declared with ``check bounds`` (enforced at scoring time)."""
        result = self.checks.get("bounds")
        return result.details["spec"] if result else None

    def _record_cell(self, kind: str, source: str) -> None:
        self.cells = [c for c in self.cells if c["kind"] != kind]
        self.cells.append(
            {"kind": kind, "source": source, "captured": datetime.now(UTC).isoformat()}
        )

    # -- views --------------------------------------------------------------------------
    @property
    def train(self) -> Snapshot:
        snap = self.snapshots.get("train")
        if snap is None:
            raise CaptureError(
                "No training snapshot yet: run `%nbprod snapshot DF --role train --target COL`."
            )
        return snap

    @property
    def valid(self) -> Snapshot | None:
        return self.snapshots.get("valid")

    def require_features(self) -> FeatureCapture:
        if self.feature_capture is None:
            raise CaptureError(
                "No feature function captured yet: run a `%%nbprod features` cell that defines it."
            )
        return self.feature_capture

    def require_model(self) -> ModelCapture:
        if self.model_capture is None:
            raise CaptureError(
                "No model captured yet: run a `%%nbprod model` cell that fits `model`."
            )
        return self.model_capture

    def live_scorer(self):
        """A :class:`~nbprod.core.scoring.Scorer` over the live notebook objects."""
        from ..core.scoring import Scorer

        train = self.train
        return Scorer(
            schema=train.schema.select(train.feature_columns),
            feature_fn=self.require_features().fn,
            model=self.require_model().model,
            task=self.require_model().task,
            id_column=train.id,
            bounds=self.bounds,
            hide_ids=train.id is not None and train.id in train.pii,
        )

    def package(self, path: str | Path, **options: Any):
        """Write the artifact; see :func:`nbprod.capture.package.package` for the options."""
        from .package import package

        return package(self, path, **options)


def _reconcile(pii: tuple[str, ...], not_pii: tuple[str, ...], other: Snapshot | None,
               df: Any) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The declarations of a new snapshot: its own plus those of the other snapshot."""
    if other is None:
        return pii, not_pii
    for col in not_pii:
        if col in other.pii_declared and col not in pii:
            raise CaptureError(
                f"--not-pii {col!r} contradicts the {other.role} snapshot, which declared it "
                f"--pii. Say the same in both: re-run the {other.role} snapshot with "
                f"--not-pii {col}, or drop --not-pii {col} here."
            )
    columns = set(getattr(df, "columns", []))
    carried = tuple(c for c in other.pii_declared if c in columns and c not in not_pii)
    kept_raw = tuple(c for c in other.not_pii if c in columns and c not in pii)
    return tuple(dict.fromkeys(pii + carried)), tuple(dict.fromkeys(not_pii + kept_raw))


def warn_detected(snap: Snapshot, column: str, finding: Any) -> None:
    """The visible warning for a column hidden because it looks personal."""
    import warnings

    from ..exceptions import PersonalDataWarning

    warnings.warn(PersonalDataWarning(
        f"column {column!r} of the {snap.role} snapshot {finding.evidence}; it is pseudonymised "
        f"like a --pii column and never stored raw. If it is not personal data, snapshot with "
        f"--not-pii {column}."
    ), stacklevel=3)


def _check_compatible(new: Snapshot, other: Snapshot) -> None:
    if new.target != other.target:
        raise CaptureError(
            f"The {new.role} snapshot's --target {new.target!r} differs from the {other.role} "
            f"snapshot's {other.target!r}."
        )
    if new.id != other.id:
        def said(s: Snapshot) -> str:
            return f"--id {s.id!r}" if s.id else "no --id"

        raise CaptureError(
            f"The {new.role} snapshot has {said(new)} but the {other.role} snapshot has "
            f"{said(other)}; give both the same id column (or neither)."
        )
    missing = [c for c in other.feature_columns if c not in new.data.columns]
    if missing:
        raise CaptureError(
            f"The {new.role} snapshot lacks column {missing[0]!r} that the {other.role} "
            "snapshot has; both must have the same input columns."
        )
