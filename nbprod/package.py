"""Writing an artifact: ``%nbprod package PATH`` and ``Session.package``.

The artifact is assembled in a hidden staging directory beside ``PATH``, verified by a parity
replay in a fresh Python process, logged to MLflow, and only then renamed into place, so a
failure at any step leaves no partial directory behind.
"""

from __future__ import annotations

import getpass
import os
import pickle
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .core import manifest as mf
from .core import model_store
from .core.files import dumps
from .core.scoring import compare_outputs
from .core.staging import SUFFIX, StagingDir, owner_gone, remove_stale, remove_tree
from .exceptions import ChecksFailedError, PackagingError, ParityError
from .frontend import PACKAGE_MIME, PACKAGE_VERSION  # drawn by the JupyterLab extension
from .jobs.notebook import scoring_notebook

KEY_PACKAGES = ("pandas", "numpy", "scikit-learn", "scipy", "skops", "pyarrow", "mlflow",
                "papermill", "nbformat")
PROBA_CHECK_ROWS = 50_000
REPLAY_TIMEOUT_S = 600


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
        from .core.tables import table

        rows = [
            {"field": "artifact", "value": str(self.path)},
            {"field": "digest", "value": self.digest[:16]},
            {"field": "parity replay", "value": f"{self.parity_rows} rows identical in a fresh process"},
            {"field": "files", "value": len(self.manifest["files"])},
        ]
        if self.mlflow:
            rows.append({"field": "MLflow run", "value": f"{self.mlflow['run_id']} ({self.mlflow['tracking_uri']})"})
        if self.registry:
            r = self.registry
            rows.append({"field": "registry", "value": f"{r['uri']} ({', '.join(r['aliases']) or 'no alias'})"})
        if self.manifest.get("override"):
            o = self.manifest["override"]
            rows.append({"field": "override", "value": f"{o['by']} forced past {', '.join(o['checks'])}"})
        for c in self.manifest.get("checks", []):
            if c.get("kind") == ROW_RULES_KIND and c.get("status") == "warn":
                rows.append({"field": f"warning {c['name']}", "value": c["message"]})
        return f"<b>nbprod: packaged {self.manifest['name']!r}</b>" + table(rows, ["field", "value"])

    def __repr__(self) -> str:
        mlf = f"; MLflow run {self.mlflow['run_id']}" if self.mlflow else ""
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
) -> PackageResult:
    """Write the artifact at ``path``. ``sign``: an Ed25519 private key (PEM path or key
    object) that signs it (``nbprod.sig``) before the parity replay and the MLflow copy."""
    t0 = time.perf_counter()
    path = Path(path).expanduser().absolute()
    signer = None
    if sign is not None:  # a bad key fails now, before any work
        from .core.signing import load_private_key

        signer = load_private_key(sign)
    session.train  # noqa: B018 - each raises a clear CaptureError when missing
    session.require_features()
    cap = session.require_model()

    failed = sorted(n for n, c in session.checks.items() if c.status == "fail")
    override = None
    if failed and not force:
        raise ChecksFailedError(
            f"Refusing to package: {len(failed)} check(s) failed: {', '.join(failed)}. Fix them, "
            "or package with --force to record an override.",
            failed=failed,
        )
    if failed:
        override = {
            "by": user or _user(),
            "at": datetime.now(UTC).isoformat(),
            "checks": failed,
            "messages": {n: session.checks[n].message for n in failed},
        }
    _remove_left_by_killed_runs(path)
    if path.exists():
        if not overwrite:
            raise PackagingError(f"{path} already exists; choose a new path or pass --overwrite.")
        if not (path / mf.MANIFEST).is_file():
            raise PackagingError(f"{path} exists and is not an nbprod artifact; not replacing it.")
    path.parent.mkdir(parents=True, exist_ok=True)

    live = session.live_scorer()
    rules = apply_row_rules(session, live)
    if cap.task == "classification":
        live.prediction_from_proba = _argmax_matches_predict(session, live)
    sample = _parity_sample(session)
    # the notebook's own answer on the replay rows, before any bounds policy acts
    expected = live.score_detailed(sample, apply_policy=False).parity_frame()
    from .importance import permutation_importance

    importance = permutation_importance(session)
    from .privacy import guard_feature_names

    guard_feature_names(session)
    t1 = time.perf_counter()

    name = session.name or _default_name(session)
    artifact_id = uuid.uuid4().hex
    owner = StagingDir.create(path.parent, path.name)  # not an artifact until renamed into place
    staging = owner.path
    try:
        manifest = _write_contents(
            staging, session, name=name, artifact_id=artifact_id, final_path=path,
            prediction_from_proba=live.prediction_from_proba, override=override,
            importance=importance,
        )
        manifest["row_rules"] = rules
        mf.write(staging, manifest)
        manifest = mf.read(staging)
        signed_by = _sign_or_check_types(staging, manifest, signer)
        t2 = time.perf_counter()
        actual = replay(staging, sample, signer=signer)
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
        t3 = time.perf_counter()
        digest = mf.digest(manifest)
        run_info = mlflow_run(staging, manifest, digest) if log_to_mlflow else None
        t4 = time.perf_counter()
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


def _sign_or_check_types(staging: Path, manifest: dict[str, Any], signer: Any) -> str | None:
    """Sign the staged artifact; unsigned, its trusted types must be ones nbprod accepts from an
    unauthenticated manifest (else the artifact could not be loaded, so say so now)."""
    if signer is not None:
        from .core.signing import sign

        return sign(staging, signer, staging=True)["key"]
    refusal = model_store.unsigned_refusal(
        manifest["model"]["trusted_types"], "The model needs skops to trust",
        fix="Package it signed (`%nbprod package PATH --sign KEY.pem`) and trust the public key "
            "where it is loaded (--trusted-key PUB.pem, NBPROD_TRUSTED_KEYS or trusted_keys=).")
    if refusal:
        raise PackagingError(refusal)
    return None


# -- what the model takes, per column (row rules) ---------------------------------------------
ROW_RULES_KIND = "row-rules"
PROBE_ROWS = 5
UNSEEN_MARKER = "__nbprod_unseen__"


def apply_row_rules(session, live) -> dict[str, Any]:
    """Probe what the model takes, give the live scorer the artifact's row rules (so parity
    replay compares like with like) and record the warnings as checks of the session."""
    from .core.profile import frame_profile
    from .core.rows import ModelTakes

    train = session.train
    profile = frame_profile(train.X, hidden=set(train.pii))
    live.profile = profile
    live.hidden = frozenset(train.pii) | {c for c, p in profile.items() if p.get("hidden")}
    rules = probe_row_rules(live, train.raw_sample())
    live.takes = ModelTakes.from_manifest(rules)
    for name in [n for n, c in session.checks.items() if c.kind == ROW_RULES_KIND]:
        del session.checks[name]  # a re-packaged model is probed afresh
    for check in row_rule_checks(rules, live.schema, profile):
        session.record_check(check)
    return rules


def probe_row_rules(scorer, sample: pd.DataFrame) -> dict[str, Any]:
    """What the model takes in each input column (the manifest's ``row_rules``).

    On a few sample rows, each column in turn is set to a missing value, and text and category
    columns to a value never seen in training; the rows go through conversion, the feature
    function and the model as in production. The column "takes" the value when that succeeds
    with finite outputs."""
    base = sample.reset_index(drop=True).iloc[:PROBE_ROWS]
    columns: dict[str, Any] = {}
    for spec in scorer.schema.columns:
        error = scorer.failure(base.assign(**{spec.name: None}))
        entry: dict[str, Any] = {"takes_missing": error is None, "takes_unseen": None}
        if error:
            entry["missing_error"] = error
        if spec.kind in ("string", "category"):
            error = scorer.failure(base.assign(**{spec.name: _unseen_value(spec)}))
            entry["takes_unseen"] = error is None
            if error:
                entry["unseen_error"] = error
        columns[spec.name] = entry
    return {"probed_rows": len(base), "columns": columns}


def _unseen_value(spec) -> Any:
    known = spec.categories or []
    if known and all(isinstance(k, int | float) and not isinstance(k, bool) for k in known):
        return max(known) + 1  # numeric categories: a number never seen
    return UNSEEN_MARKER


def row_rule_checks(rules: dict[str, Any], schema, profile: dict[str, Any]) -> list:
    """Warnings, in words, for what will happen in production to rows the model cannot take."""
    from .core.results import CheckResult

    cols = rules["columns"]
    out = []
    missing = [s.name for s in schema.columns
               if not s.nullable and cols.get(s.name, {}).get("takes_missing") is False]
    if missing:
        out.append(CheckResult(
            name=f"{ROW_RULES_KIND}:missing", kind=ROW_RULES_KIND, status="warn",
            message=(f"The model cannot take a missing value in {_listed(missing)}, which had none "
                     "in training. In production a row with a missing value there is rejected: "
                     "not scored, and listed in the issues file (rule 'missing'). To score such "
                     "rows, impute in the feature function or the model's pipeline."),
            value=len(missing),
            details={"columns": missing,
                     "errors": {c: cols[c].get("missing_error") for c in missing}}))
    unseen = [s.name for s in schema.columns if cols.get(s.name, {}).get("takes_unseen") is False]
    if unseen:
        unlisted = [c for c in unseen if (profile.get(c) or {}).get("other_count")
                    or (profile.get(c) or {}).get("hidden")]
        note = (f" The training profile of {_listed(unlisted)} does not list every value, so "
                "there such rows are found when the model fails on them (rule 'model-error')."
                if unlisted else "")
        out.append(CheckResult(
            name=f"{ROW_RULES_KIND}:unseen-category", kind=ROW_RULES_KIND, status="warn",
            message=(f"The model cannot encode a category unseen in training in {_listed(unseen)} "
                     "(e.g. a OneHotEncoder with handle_unknown='error'). In production a row with "
                     "a new category there is rejected: not scored, and listed in the issues file "
                     "(rule 'unseen-category'). To score such rows, let the encoder ignore "
                     f"unknown categories (handle_unknown='ignore').{note}"),
            value=len(unseen),
            details={"columns": unseen,
                     "errors": {c: cols[c].get("unseen_error") for c in unseen}}))
    return out


def _listed(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def mlflow_run(root: Path, manifest: dict[str, Any], digest: str) -> dict[str, str]:
    from .tracking.model import log_package

    return log_package(root, manifest, digest)


# -- contents ---------------------------------------------------------------------------
def _write_contents(root: Path, session, *, name: str, artifact_id: str, final_path: Path,
                    prediction_from_proba: bool, override: dict | None,
                    importance: dict[str, Any]) -> dict[str, Any]:
    import nbformat

    from .tracking.model import write_mlmodel

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
        (root / meta_file).write_text(dumps(meta, indent=1, default=_plain), encoding="utf-8")
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
    training = _store_training_notebook(session, root)
    from .privacy import guard_model
    from .reference import REFERENCE_FILE, build

    reference = build(session)
    guard_model(root / "model.skops", session, (reference["features"] or {}).get("pii") or {})
    (root / REFERENCE_FILE).write_text(dumps(reference, indent=1, default=_plain),
                                       encoding="utf-8")
    write_mlmodel(root, _requirements(feats.code.source, cap.model))

    classes = None
    if cap.task == "classification":
        classes = [_plain(c) for c in cap.model.classes_]
    live = session.live_scorer()
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
        "provenance": _provenance(session),
        "environment": _environment(),
    }


def _store_training_notebook(session, root: Path) -> dict[str, Any] | None:
    """Copy the training notebook into the artifact (outputs cleared) so it can be re-run."""
    src = session.notebook_path
    if not src or not Path(src).is_file():
        return None
    import nbformat

    from .retrain import TRAINING_NOTEBOOK, notebook_parameters

    nb = nbformat.read(src, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nb.metadata.pop("papermill", None)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    nbformat.write(nb, str(root / TRAINING_NOTEBOOK))
    return {"notebook": TRAINING_NOTEBOOK, "source": str(src),
            "parameters": notebook_parameters(root / TRAINING_NOTEBOOK)}


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


def replay(root: Path, sample: pd.DataFrame, signer: Any = None) -> pd.DataFrame:
    """Load the artifact at ``root`` in a fresh Python process and score ``sample`` there.

    The replay trusts exactly the signer's public key (none when unsigned), whatever
    ``NBPROD_TRUSTED_KEYS`` says: it checks parity, and the signature it just made.
    """
    from .core.signing import ENV
    from .core.trust import AUTHENTIC_ENV

    # the sample goes to a staging directory beside the artifact, not to /tmp: removed on the
    # way out, and by the next package if this process is killed
    scratch = StagingDir.create(root.parent, "nbprod-replay")
    try:
        tmp = scratch.path
        src = Path(tmp) / "sample.pkl"
        dst = Path(tmp) / "scored.pkl"
        with open(src, "wb") as fh:
            pickle.dump(sample, fh, protocol=pickle.HIGHEST_PROTOCOL)
        keys = []
        if signer is not None:
            from .core.signing import public_pem

            keys = [str(Path(tmp) / "signer.pub.pem")]
            Path(keys[0]).write_bytes(public_pem(signer))
        env = {k: v for k, v in os.environ.items() if k not in (ENV, AUTHENTIC_ENV)}
        proc = subprocess.run(
            [sys.executable, "-m", "nbprod._replay", str(root), str(src), str(dst), *keys],
            capture_output=True, text=True, timeout=REPLAY_TIMEOUT_S, env=env,
        )
        if proc.returncode != 0:
            lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
            last = lines[-1] if lines else f"exit code {proc.returncode}"
            raise ParityError(
                "Parity replay failed: the artifact could not score its snapshot sample in a "
                f"fresh process: {last}"
            )
        with open(dst, "rb") as fh:
            return pickle.load(fh)
    finally:
        scratch.remove()


def _readable(root: Path) -> None:
    """mkdtemp makes a private (0700) directory; give the artifact the usual permissions."""
    from .core.files import usual_mode

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


# -- provenance -------------------------------------------------------------------------
def _default_name(session) -> str:
    if session.notebook_path:
        return Path(session.notebook_path).stem
    return "model"


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return "unknown"


def _provenance(session) -> dict[str, Any]:
    where = Path(session.notebook_path).parent if session.notebook_path else Path.cwd()
    return {
        "notebook": session.notebook_path,
        "working_directory": str(Path.cwd()),
        "user": _user(),
        "cells": session.cells,
        "git": _git(where),
    }


def _git(where: Path) -> dict[str, Any] | None:
    def git(*args: str) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", str(where), *args], capture_output=True,
                                  text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None
    return {"commit": commit, "dirty": bool(git("status", "--porcelain")),
            "branch": git("rev-parse", "--abbrev-ref", "HEAD")}


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _environment() -> dict[str, Any]:
    import platform

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nbprod": __version__,
        "packages": {d: _version(d) for d in KEY_PACKAGES},
    }


def _requirements(feature_source: str, model: Any) -> list[str]:
    """Pinned pip requirements: nbprod's scoring stack plus what the features and model import."""
    import ast
    from importlib.metadata import packages_distributions

    dists = {"nbprod", "scikit-learn", "pandas", "numpy", "scipy", "skops", "pyarrow"}
    top_level = {type(model).__module__.split(".")[0]}
    for node in ast.walk(ast.parse(feature_source)):
        if isinstance(node, ast.Import):
            top_level |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            top_level.add(node.module.split(".")[0])
    mapping = packages_distributions()
    for mod in top_level:
        dists.update(mapping.get(mod, []))
    reqs = []
    for d in sorted(dists, key=str.lower):
        v = __version__ if d == "nbprod" else _version(d)
        if v:
            reqs.append(f"{d}=={v}")
    return reqs


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return str(value)
