"""Writing an artifact: ``%nbprod package PATH`` and ``Session.package``.

The artifact is assembled in a hidden staging directory beside ``PATH``, verified by a parity
replay in a fresh Python process, logged to MLflow, and only then renamed into place, so a
failure at any step leaves no partial directory behind.
"""

from __future__ import annotations

import os
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core import manifest as mf
from ..core import model_store
from ..core.files import as_text, dumps, plain
from ..core.scoring import compare_outputs
from ..core.staging import SUFFIX, StagingDir, owner_gone, remove_stale, remove_tree
from ..core.user import user_name
from ..exceptions import ChecksFailedError, PackagingError, ParityError
from ..jobs.notebook import scoring_notebook
from .contract import PACKAGE_MIME, PACKAGE_VERSION  # read by the JupyterLab extension
from .example import input_example
from .provenance import default_name, environment, provenance, requirements
from .replay import Warm, replay
from .row_rules import ROW_RULES_KIND, apply_row_rules
from .training import store_training_notebook
from .wheel import write as write_wheel

PROBA_CHECK_ROWS = 50_000


@dataclass
class PackageResult:
    path: Path
    manifest: dict[str, Any]
    digest: str
    mlflow: dict[str, str] | None
    parity_rows: int
    timings: dict[str, float] = field(default_factory=dict)
    registry: dict[str, Any] | None = None
    signed_by: str | None = None  # fingerprint of the key that signed it (package(sign=...))

    def _repr_html_(self) -> str:
        from ..core.tables import table

        rows = [
            {"field": "artifact", "value": str(self.path)},
            {"field": "digest", "value": self.digest[:16]},
            {"field": "parity replay", "value": f"{self.parity_rows} rows identical in a fresh process"},
            {"field": "files", "value": len(self.manifest["files"])},
        ]
        if self.mlflow:
            rows.append({"field": "MLflow run", "value": f"{self.mlflow['run_id']} ({self.mlflow['tracking_uri']})"})
            if self.mlflow.get("model_id"):
                rows.append({"field": "MLflow model", "value": f"models:/{self.mlflow['model_id']}"})
        if self.registry:
            r = self.registry
            rows.append({"field": "registry", "value": f"{r['uri']} ({', '.join(r['aliases']) or 'no alias'})"})
        if self.manifest.get("override"):
            o = self.manifest["override"]
            rows.append({"field": "override", "value": f"{o['by']} forced past {', '.join(o['checks'])}"})
        for c in self.manifest.get("checks", []):
            if c.get("kind") == ROW_RULES_KIND and c.get("status") == "warn":
                rows.append({"field": f"warning {c['name']}", "value": c["message"]})
        return (f"<b>nbprod: packaged {self.manifest['name']!r}</b>" + table(rows, ["field", "value"])
                + _dependence_html(self.path))

    def __repr__(self) -> str:
        mlf = f"; MLflow run {self.mlflow['run_id']}" if self.mlflow else ""
        if self.mlflow and self.mlflow.get("model_id"):
            mlf += f", model models:/{self.mlflow['model_id']}"
        signed = f"; signed by {self.signed_by}" if self.signed_by else ""
        warned = [f"\n  WARN  {c['name']}: {c['message']}" for c in self.manifest.get("checks", [])
                  if c.get("kind") == ROW_RULES_KIND and c.get("status") == "warn"]
        return (f"Packaged {self.manifest['name']!r} at {self.path} (digest {self.digest[:12]}; "
                f"parity replay on {self.parity_rows} rows{mlf}{signed})" + "".join(warned))

    def to_json(self) -> dict[str, Any]:
        """The result as the JupyterLab extension reads it (under :data:`PACKAGE_MIME`)."""
        m = self.manifest
        return {
            "version": PACKAGE_VERSION,
            "outcome": "packaged",
            "status": "warn" if m.get("override") else "pass",
            "name": m["name"],
            "path": str(self.path),
            "digest": self.digest,
            "task": m.get("task"),
            "model": (m.get("model") or {}).get("class"),
            "files": len(m["files"]),
            "parity_rows": self.parity_rows,
            "mlflow": self.mlflow,
            "override": m.get("override"),
            "checks": m.get("checks", []),
            "timings": self.timings,
            "registry": self.registry,
            "signed_by": self.signed_by,
        }

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {PACKAGE_MIME: self.to_json(), "text/html": self._repr_html_(), "text/plain": repr(self)}


def package(
    session,
    path: str | Path,
    *,
    force: bool = False,
    overwrite: bool = False,
    log_to_mlflow: bool = True,
    user: str | None = None,
    sign: Any = None,
    progress: bool | None = None,
) -> PackageResult:
    """Write the artifact of ``session`` at ``path``, complete or not at all.

    The steps: check what was captured and the checks' gate (:func:`_override`) and the
    destination (:func:`_check_destination`); prepare the live scorer, its row rules, the replay
    sample and the notebook's own answer on it, and the permutation importance; write the
    contents and the manifest into a staging directory, sign it (or check its trusted types),
    replay it in a fresh process (:func:`_check_parity`), log it to MLflow, and rename it into
    place.

    Parameters
    ----------
    session : Session
        What the notebook captured (snapshots, feature code, model, checks).
    path : str or Path
        Where the artifact goes.
    force : bool
        Package despite failed checks, recording an override (by ``user``) in the manifest.
    overwrite : bool
        Replace an existing artifact at ``path``.
    log_to_mlflow : bool
        Copy the artifact into an MLflow run.
    user : str, optional
        Who overrides failed checks (default: the login name).
    sign : str, Path or private key, optional
        An Ed25519 private key (PEM path or key object) that signs the artifact
        (``nbprod.sig``) before the parity replay and the MLflow copy.
    progress : bool, optional
        Show a bar of the steps (:data:`STEPS`) on standard error; default: when standard error
        is a terminal (a script or terminal IPython, not Jupyter, papermill or a log).

    Returns
    -------
    PackageResult
        The path, the manifest, its digest, the MLflow run and the timings.

    Examples
    --------
    >>> result = session.package("artifacts/churn", log_to_mlflow=False)  # doctest: +SKIP
    >>> nbprod.verify(result.path)  # doctest: +SKIP
    """
    from ..core.progress import steps

    shown = steps(STEPS, desc=f"nbprod package {Path(path).name}", enabled=progress)
    with ExitStack() as cleanup:
        cleanup.callback(shown.close)
        return _package(session, path, force=force, overwrite=overwrite,
                        log_to_mlflow=log_to_mlflow, user=user, sign=sign, shown=shown,
                        cleanup=cleanup)


# the steps of packaging that take seconds, as the progress bar names them
STEPS = ["row rules", "importance", "contents", "parity replay", "MLflow"]


def _package(session, path: str | Path, *, force: bool, overwrite: bool, log_to_mlflow: bool,
             user: str | None, sign: Any, shown: Any, cleanup: ExitStack) -> PackageResult:
    t0 = time.perf_counter()
    path = Path(path).expanduser().absolute()
    signer = None
    if sign is not None:  # a bad key fails now, before any work
        from ..core.signing import load_private_key

        signer = load_private_key(sign)
    session.train  # noqa: B018 - each raises a clear CaptureError when missing
    session.require_features()
    cap = session.require_model()
    override = _override(session, force=force, user=user)
    _check_destination(path, overwrite=overwrite)
    # the replay's fresh process imports its libraries while the artifact is prepared
    warm = cleanup.enter_context(Warm())

    live = session.live_scorer()
    shown.note(STEPS[0])
    rules = apply_row_rules(session, live)
    if cap.task == "classification":
        live.prediction_from_proba = _argmax_matches_predict(session, live)
    sample = _parity_sample(session)
    example = input_example(session, live)
    # the notebook's own answer on the replay rows, before any bounds policy acts
    expected = live.score_detailed(sample, apply_policy=False).parity_frame()
    from .importance import permutation_importance

    shown.update()
    shown.note(STEPS[1])
    importance = permutation_importance(session)
    shown.update()
    shown.note(STEPS[2])
    from .privacy import guard_feature_names

    guard_feature_names(session)
    t1 = time.perf_counter()

    name = session.name or default_name(session)
    artifact_id = uuid.uuid4().hex
    owner = StagingDir.create(path.parent, path.name)  # not an artifact until renamed into place
    staging = owner.path
    try:
        manifest = _write_contents(
            staging, session, name=name, artifact_id=artifact_id, final_path=path,
            prediction_from_proba=live.prediction_from_proba, override=override,
            importance=importance, example=example,
        )
        manifest["row_rules"] = rules
        mf.write(staging, manifest)
        manifest = mf.read(staging)
        signed_by = _sign_or_check_types(staging, manifest, signer)
        t2 = time.perf_counter()
        shown.update()
        shown.note(STEPS[3])
        _check_parity(staging, sample, expected, signer, warm)
        t3 = time.perf_counter()
        shown.update()
        shown.note(STEPS[4] if log_to_mlflow else "")
        digest = mf.digest(manifest)
        run_info = mlflow_run(staging, manifest, digest, cap.model) if log_to_mlflow else None
        t4 = time.perf_counter()
        shown.update()
        _readable(staging)
        _move_into_place(owner, path)
    except BaseException:
        if owner.path == staging:
            owner.remove()
        else:  # interrupted just after the rename: the artifact at PATH is complete
            owner.unmark()
        raise
    return PackageResult(
        path=path,
        manifest=manifest,
        digest=digest,
        mlflow=run_info,
        parity_rows=len(sample),
        timings={"prepare_s": t1 - t0, "write_s": t2 - t1, "replay_s": t3 - t2,  # prepare:
                 "mlflow_s": t4 - t3, "total_s": time.perf_counter() - t0},  # + importance
        signed_by=signed_by,
    )


def _override(session, *, force: bool, user: str | None) -> dict[str, Any] | None:
    """The override of failed checks to record (None when none failed); refused without
    ``force``."""
    failed = sorted(n for n, c in session.checks.items() if c.status == "fail")
    if failed and not force:
        raise ChecksFailedError(
            f"Refusing to package: {len(failed)} check(s) failed: {', '.join(failed)}. Fix them, "
            "or package with --force to record an override.",
            failed=failed,
        )
    if not failed:
        return None
    return {
        "by": user or user_name(),
        "at": datetime.now(UTC).isoformat(),
        "checks": failed,
        "messages": {n: session.checks[n].message for n in failed},
    }


def _check_destination(path: Path, *, overwrite: bool) -> None:
    """``path`` is free (or an artifact to overwrite); what killed runs left beside it goes,
    and its parent directory exists."""
    _remove_left_by_killed_runs(path)
    if path.exists():
        if not overwrite:
            raise PackagingError(f"{path} already exists; choose a new path or pass --overwrite.")
        if not (path / mf.MANIFEST).is_file():
            raise PackagingError(f"{path} exists and is not an nbprod artifact; not replacing it.")
    path.parent.mkdir(parents=True, exist_ok=True)


def _check_parity(staging: Path, sample: pd.DataFrame, expected: pd.DataFrame,
                  signer: Any, warm: Warm | None = None) -> None:
    """The staged artifact, loaded in a fresh process, scores ``sample`` as the notebook did."""
    actual = replay(staging, sample, signer=signer, warm=warm)
    problems = compare_outputs(expected, actual)
    if problems:
        raise ParityError(
            "Parity replay failed: the artifact, loaded in a fresh process, scores the "
            "snapshot sample differently from the notebook.\n  "
            + "\n  ".join(problems)
            + "\nThe feature function or model depends on state the artifact does not carry "
            "(a variable changed after capture, a module attribute set at run time, "
            "randomness). Make the features depend only on their input."
        )


def _dependence_html(root: Path) -> str:
    """The partial dependence charts stored in the artifact's reference (issue 15)."""
    import json

    from .dependence import html

    try:
        reference = json.loads((root / "reference.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return html(reference.get("partial_dependence"))


def _sign_or_check_types(staging: Path, manifest: dict[str, Any], signer: Any) -> str | None:
    """Sign the staged artifact; unsigned, its trusted types must be ones nbprod accepts from an
    unauthenticated manifest (else the artifact could not be loaded, so say so now)."""
    if signer is not None:
        from ..core.signing import sign

        return sign(staging, signer, staging=True)["key"]
    refusal = model_store.unsigned_refusal(
        manifest["model"]["trusted_types"], "The model needs skops to trust",
        fix="Package it signed (`%nbprod package PATH --sign KEY.pem`) and trust the public key "
            "where it is loaded (--trusted-key PUB.pem, NBPROD_TRUSTED_KEYS or trusted_keys=).")
    if refusal:
        raise PackagingError(refusal)
    return None


def mlflow_run(root: Path, manifest: dict[str, Any], digest: str,
               estimator: Any = None) -> dict[str, str]:
    from ..tracking.model import log_package

    return log_package(root, manifest, digest, estimator)


# -- contents ---------------------------------------------------------------------------
def _write_contents(root: Path, session, *, name: str, artifact_id: str, final_path: Path,
                    prediction_from_proba: bool, override: dict | None,
                    importance: dict[str, Any], example: pd.DataFrame | None) -> dict[str, Any]:
    import nbformat

    from ..tracking.model import write_mlmodel

    train = session.train
    feats = session.require_features()
    cap = session.require_model()

    (root / "features.py").write_text(feats.code.source, encoding="utf-8")
    trusted = model_store.dump(cap.model, root / "model.skops")

    snaps: dict[str, Any] = {}
    (root / "snapshots").mkdir()
    pii_key = os.urandom(32)
    for role, snap in session.snapshots.items():
        meta = snap.metadata()
        meta_file = f"snapshots/{role}.json"
        sample_file = f"snapshots/{role}.sample.parquet"
        (root / meta_file).write_text(dumps(meta, indent=1, default=as_text), encoding="utf-8")
        _write_sample(snap.stored_sample(pii_key), root / sample_file)
        snaps[role] = {
            "file": meta_file,
            "sample": sample_file,
            "rows": meta["rows"],
            "sample_rows": meta["sample_rows"],
            "fingerprint": meta["fingerprint"],
            "target": meta["target"],
            "id": meta["id"],
            "pii": meta["pii"],
            "pii_declared": meta["pii_declared"],
            "pii_detected": {c: f["evidence"] for c, f in meta["pii_detected"].items()},
            "not_pii": meta["not_pii"],
            "source": meta["source"],
        }

    nb = scoring_notebook(name=name, packaged_at=str(final_path), artifact_id=artifact_id)
    nbformat.write(nb, str(root / "score.ipynb"))
    training = store_training_notebook(session, root)
    from .privacy import guard_model
    from .reference import REFERENCE_FILE, build

    reference = build(session, root)
    guard_model(root / "model.skops", session, (reference["features"] or {}).get("pii") or {})
    (root / REFERENCE_FILE).write_text(dumps(reference, indent=1, default=as_text),
                                       encoding="utf-8")
    classes = None
    if cap.task == "classification":
        classes = [plain(c) for c in cap.model.classes_]
    live = session.live_scorer()
    wheel = write_wheel(root)  # nbprod itself, for the environment MLflow restores
    inputs = train.schema.select(([train.id] if train.id else []) + train.feature_columns)
    write_mlmodel(root, requirements(feats.code.source, cap.model, wheel),
                  inputs=inputs.to_list(), outputs=_output_kinds(train, cap.task, live),
                  example=example, artifact_id=artifact_id)
    return {
        "format": mf.FORMAT,
        "format_version": mf.FORMAT_VERSION,
        "name": name,
        "artifact_id": artifact_id,
        "created": datetime.now(UTC).isoformat(),
        "packaged_at": str(final_path),
        "task": cap.task,
        "target": train.target,
        "id_column": train.id,
        "classes": classes,
        "input_columns": train.feature_columns,
        "features": {"file": "features.py", "function": feats.fn_name},
        "model": {
            "file": "model.skops",
            "format": "skops",
            "class": cap.class_name,
            "variable": cap.var,
            "trusted_types": trusted,
        },
        "scoring": {
            "prediction": "argmax_proba" if prediction_from_proba else "predict",
            "output_columns": live.output_columns,
            "notebook": "score.ipynb",
        },
        "snapshots": snaps,
        "checks": [c.to_dict() for c in session.checks.values()],
        "override": override,
        "bounds": session.bounds,
        "importance": importance,
        "reference": "reference.json",
        "training": training,
        "provenance": provenance(session),
        "environment": environment(),
    }


def _output_kinds(train: Any, task: str, live: Any) -> list[tuple[str, str]]:
    """``(column, kind)`` of the predictions: the id as trained, the prediction of the
    target's kind (classes) or a number, the probabilities."""
    kinds = []
    for column in live.output_columns:
        if column == train.id:
            kinds.append((column, train.schema[column].kind))
        elif column == "prediction" and task == "classification":
            kinds.append((column, train.schema[train.target].kind))
        else:
            kinds.append((column, "float"))
    return kinds


def _write_sample(df: pd.DataFrame, path: Path) -> None:
    try:
        df.to_parquet(path, index=False)
    except Exception:  # mixed-type object columns: store their text
        fixed = df.assign(**{c: df[c].astype("str") for c in df.columns if df[c].dtype == object})
        fixed.to_parquet(path, index=False)


def _parity_sample(session) -> pd.DataFrame:
    parts = [s.raw_sample() for s in session.snapshots.values()]
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)


def _argmax_matches_predict(session, live) -> bool:
    """Whether predict() equals the argmax of predict_proba() on the snapshot rows.

    When it does, scoring computes probabilities once and derives the class from them.
    """
    frames = [s.data for s in session.snapshots.values()]
    data = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    if len(data) > PROBA_CHECK_ROWS:
        data = data.sample(PROBA_CHECK_ROWS, random_state=0)
    X = live.features(live.prepare(data))
    model = live.model
    pred = np.asarray(model.predict(X))
    derived = np.asarray(model.classes_)[np.argmax(model.predict_proba(X), axis=1)]
    return bool(np.array_equal(pred, derived))


def _readable(root: Path) -> None:
    """mkdtemp makes a private (0700) directory; give the artifact the usual permissions."""
    from ..core.files import usual_mode

    for p in [root, *root.rglob("*")]:
        p.chmod(usual_mode(p.is_dir()))


def _move_into_place(staging: StagingDir, path: Path) -> None:
    """Rename the staging directory to ``path``; it stays marked (refused by verification)
    until it is there, so no moment of a kill leaves a second artifact anywhere. An artifact
    being replaced is marked first, moved aside and removed."""
    old = None
    if path.exists():
        try:
            old = StagingDir(path)  # from now on not an artifact
        except FileExistsError:
            raise PackagingError(f"{path} is being replaced by another packaging run.") from None
        aside = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}{SUFFIX}")
        os.replace(path, aside)
        old.moved(aside)
    try:
        os.replace(staging.path, path)
    except BaseException:
        if old is not None:
            os.replace(old.path, path)
            old.moved(path)
            old.unmark()
        raise
    staging.moved(path)
    staging.unmark()
    if old is not None:
        old.remove()


def _remove_left_by_killed_runs(path: Path) -> None:
    """Staging directories beside ``path`` whose packaging process is gone, and ``path``
    itself when a packaging run was killed while renaming it (it is still marked)."""
    if path.parent.is_dir():
        remove_stale(path.parent)
    if (path / mf.STAGING_MARKER).exists() and owner_gone(path):
        remove_tree(path)
