"""The MLflow Model Registry face of nbprod: register, resolve, approve, promote.

Each artifact becomes a model version under the model's name (the ``%nbprod init`` name),
tagged with its digest, check status and format version. Aliases mark the roles: the first
version registered under a name becomes its ``champion``, later ones ``challenger``. Promotion
moves ``champion`` only when the challenger passed its checks and won a recorded comparison
against the current champion by the declared margin (``--force`` overrides, and says so), and,
when the model requires approval, after an approval is recorded. Every promotion is written to
the registry's tags: who, when, why.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core import manifest as mf
from ..exceptions import NbprodUsageError, RegistryError

CHAMPION, CHALLENGER, PREVIOUS = "champion", "challenger", "previous"
ARTIFACT_DIR = "nbprod-artifact"
MAX_PROMOTIONS_KEPT = 20


def _client():
    from .store import client

    return client()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _check_status(m: dict[str, Any]) -> str:
    statuses = [c["status"] for c in m.get("checks", [])]
    for s in ("fail", "warn", "pass"):
        if s in statuses:
            return s
    return "none"


# -- register ------------------------------------------------------------------------------
def _packaging_run(client, m: dict[str, Any]) -> str | None:
    exp = client.get_experiment_by_name(m["name"])
    if exp is None:
        return None
    runs = client.search_runs([exp.experiment_id],
                              filter_string=f"tags.`nbprod.artifact_id` = '{m['artifact_id']}' "
                                            "and tags.`nbprod.kind` = 'package'", max_results=1)
    return runs[0].info.run_id if runs else None


def find_version(name: str, artifact_id: str) -> Any | None:
    client = _client()
    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except Exception:
        return None
    for v in versions:
        if v.tags.get("nbprod.artifact_id") == artifact_id:
            return v
    return None


def register(path: str | Path, *, require_approval: bool | None = None) -> dict[str, Any]:
    """Create (or find) the registry version of the artifact at ``path``."""
    from ..core import trust

    root = Path(path).absolute()
    check = trust.verify(root, check_types=False)  # registering vouches, as signing does
    check.raise_for_problems()
    assert check.manifest is not None
    m = check.manifest
    client = _client()
    name = m["name"]
    try:
        model = client.get_registered_model(name)
    except Exception:
        model = client.create_registered_model(
            name, description=f"nbprod model {name!r}; versions are nbprod artifacts.")
    if require_approval is not None:
        client.set_registered_model_tag(name, "nbprod.require_approval", str(require_approval).lower())
    existing = find_version(name, m["artifact_id"])
    if existing is not None:  # a signature made (or renewed) since joins the registered copy
        pinned = (existing.tags or {}).get("nbprod.digest")
        if pinned and pinned != mf.digest(m):
            raise RegistryError(
                f"{root} is registered as {name} version {existing.version} with digest "
                f"{pinned[:12]}..., but it now has digest {mf.digest(m)[:12]}...: it was changed "
                "after registration. Re-package it to register a new version.")
        _upload_signature(client, existing.run_id, root)
        return _describe(client, name, existing.version, created=False)
    run_id = _packaging_run(client, m)
    if run_id is None:  # packaged with --no-mlflow: log it now so the registry has a copy
        from .model import log_package

        run_id = log_package(root, m, mf.digest(m))["run_id"]
    _same_as_logged(client, run_id, root, mf.digest(m))
    model_id = logged_model(client, run_id)
    if model_id is not None:  # the version is the packaging run's logged model
        source = f"models:/{model_id}"
    else:  # packaged before logged models: the run's copy of the files
        source = client.get_run(run_id).info.artifact_uri.rstrip("/") + "/" + ARTIFACT_DIR
    version = client.create_model_version(
        name, source=source, run_id=run_id, model_id=model_id,
        tags={
            "nbprod.artifact_id": m["artifact_id"],
            "nbprod.digest": mf.digest(m),
            "nbprod.checks": _check_status(m),
            "nbprod.override": "true" if m.get("override") else "false",
            "nbprod.format_version": str(m["format_version"]),
            "nbprod.path": str(root),
        },
        description=f"nbprod artifact {m['artifact_id']} packaged {m['created']}",
    )
    aliases = dict(getattr(model, "aliases", {}) or {})
    # the first version becomes champion, unless it was packaged past failed checks: that one
    # waits as challenger until someone promotes it (with --force, which is recorded)
    failed = _check_status(m) == "fail"  # what --force overrode
    role = CHALLENGER if CHAMPION in aliases or failed else CHAMPION
    client.set_registered_model_alias(name, role, version.version)
    if role == CHAMPION:
        _record_promotion(client, name, version.version, by="nbprod register",
                          reason="first version registered under this name", forced=False,
                          previous=None)
    out = _describe(client, name, version.version, created=True)
    if failed and CHAMPION not in aliases:
        out["note"] = ("packaged past failed checks, so not made champion; `nbprod promote "
                       f"{root} --force --by NAME` does it, on the record")
    return out


def _describe(client, name: str, version: str, *, created: bool) -> dict[str, Any]:
    model = client.get_registered_model(name)
    aliases = [a for a, v in (model.aliases or {}).items() if str(v) == str(version)]
    return {"name": name, "version": str(version), "aliases": aliases, "created": created,
            "uri": f"models:/{name}/{version}"}


def _same_as_logged(client, run_id: str, root: Path, digest: str) -> None:
    """The copy the version will point at must be the artifact being registered (the registry
    pins this digest); a signature made after packaging joins the logged copy."""
    logged = client.get_run(run_id).data.tags.get("nbprod.digest")
    if logged and logged != digest:
        raise RegistryError(
            f"{root} differs from the copy logged to MLflow when it was packaged (digest "
            f"{digest[:12]}..., logged {logged[:12]}...); the artifact was changed after "
            "packaging. Re-package it, or register the logged copy.")
    _upload_signature(client, run_id, root)


def _upload_signature(client, run_id: str | None, root: Path) -> None:
    sig = root / mf.SIGNATURE
    if run_id and sig.is_file() and not sig.is_symlink():
        model_id = logged_model(client, run_id)
        if model_id is not None:
            client.log_model_artifact(model_id, str(sig))
        else:
            client.log_artifact(run_id, str(sig), ARTIFACT_DIR)


def logged_model(client, run_id: str) -> str | None:
    """The id of the logged model a packaging run output (None for runs logged before nbprod
    logged models: their artifact is the run's ``nbprod-artifact/`` directory)."""
    outputs = getattr(client.get_run(run_id), "outputs", None)
    models = getattr(outputs, "model_outputs", None) or []
    return str(models[0].model_id) if models else None


# -- resolve -------------------------------------------------------------------------------
def download_pinned(uri: str, *, dst: str | Path | None = None) -> tuple[Path, tuple[str, str]]:
    """A local copy of the version ``uri`` names (an alias resolved to its version first) and
    its pin: ``("models:/NAME/N", digest recorded by nbprod register)``."""
    try:
        name, version, v = version_of(uri)
    except RegistryError:
        raise
    except Exception as exc:
        import mlflow

        raise RegistryError(f"Cannot resolve {uri} in the MLflow registry "
                            f"({mlflow.get_tracking_uri()}): {str(exc)[:200]}") from None
    exact = f"models:/{name}/{version}"
    digest = (v.tags or {}).get("nbprod.digest")
    if not digest:
        raise RegistryError(
            f"{exact} carries no nbprod.digest tag: it was not registered by `nbprod register`, "
            "so nbprod cannot check that the copy is what was registered. Register the artifact "
            "with `nbprod register PATH`.")
    return download(exact, dst=dst), (exact, digest)


def download_logged(uri: str, *, dst: str | Path | None = None
                    ) -> tuple[Path, tuple[str, str]]:
    """A local copy of the logged model ``uri`` (``models:/<model_id>``, as packaging logs it)
    and its pin: the digest the packaging recorded in the model's ``nbprod.digest`` tag."""
    model_id = uri[len("models:/"):].strip("/")
    try:
        logged = _client().get_logged_model(model_id)
    except Exception as exc:
        import mlflow

        raise RegistryError(f"Cannot find the logged model {uri} in MLflow "
                            f"({mlflow.get_tracking_uri()}): {str(exc)[:200]}") from None
    digest = (logged.tags or {}).get("nbprod.digest")
    if not digest:
        raise RegistryError(
            f"{uri} carries no nbprod.digest tag: it was not logged by nbprod's packaging, so "
            "nbprod cannot check that the copy is what was packaged.")
    return download(uri, dst=dst), (uri, digest)


def download(uri: str, *, dst: str | Path | None = None) -> Path:
    """A local copy of a ``models:/NAME@alias`` or ``models:/NAME/VERSION`` artifact (into
    ``dst`` when given, else a temporary directory MLflow chooses)."""
    import os

    import mlflow

    from .store import prepare, retry

    prepare()
    bar = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # errors stay one line
    try:
        return Path(retry(mlflow.artifacts.download_artifacts, artifact_uri=uri,
                          dst_path=str(dst) if dst is not None else None))
    except Exception as exc:
        raise RegistryError(f"Cannot resolve {uri} in the MLflow registry "
                            f"({mlflow.get_tracking_uri()}): {exc}") from None
    finally:
        if bar is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = bar


def version_of(target: str | Path) -> tuple[str, str, Any]:
    """(name, version, ModelVersion) for an artifact path or a ``models:/NAME/VERSION|@alias`` URI."""
    client = _client()
    text = str(target)
    if text.startswith("models:/"):
        rest = text[len("models:/"):]
        if "@" in rest:
            name, alias = rest.split("@", 1)
            v = client.get_model_version_by_alias(name, alias)
        else:
            name, number = rest.rsplit("/", 1)
            v = client.get_model_version(name, number)
        return name, str(v.version), v
    m = mf.read(Path(target))
    v = find_version(m["name"], m["artifact_id"])
    if v is None:
        raise RegistryError(
            f"{target} is not registered; run `nbprod register {target}` first.")
    return m["name"], str(v.version), v


def champion_version(name: str) -> str | None:
    model = _client().get_registered_model(name)
    v = (model.aliases or {}).get(CHAMPION)
    return str(v) if v is not None else None


# -- approve / promote -------------------------------------------------------------------
def approve(target: str | Path, *, by: str, note: str = "") -> dict[str, Any]:
    if not by or not by.strip():
        raise NbprodUsageError("nbprod approve needs --by NAME: who approves.")
    name, version, _ = version_of(target)
    client = _client()
    for key, value in (("nbprod.approved_by", by), ("nbprod.approved_at", _now()),
                       ("nbprod.approval_note", note)):
        client.set_model_version_tag(name, version, key, value)
    return {"name": name, "version": version, "approved_by": by}


def promote(target: str | Path, *, by: str, reason: str = "", force: bool = False,
            evidence: dict[str, Any] | None = None, evidence_problem: str | None = None,
            earned: bool = False) -> dict[str, Any]:
    """Move the champion alias to ``target`` if the rules allow it (see module docs).

    ``evidence``: the shadow/A/B evidence over runs (:mod:`nbprod.lifecycle.promotion`), recorded
    on the version (``nbprod.promoted_evidence``); ``evidence_problem``: why it contradicts the
    promotion (refused without ``force``); ``earned``: it shows the challenger better, which
    stands in for a recorded comparison win."""
    name, version, v = version_of(target)
    client = _client()
    model = client.get_registered_model(name)
    current = (model.aliases or {}).get(CHAMPION)
    current = str(current) if current is not None else None
    if current == version:
        raise RegistryError(f"{name} version {version} is already the champion.")
    tags = v.tags
    problems = []
    if tags.get("nbprod.checks") == "fail" or tags.get("nbprod.override") == "true":
        problems.append(f"version {version} failed checks at packaging")
    if evidence_problem:
        problems.append(evidence_problem)
    if current is not None and not earned:
        verdict = tags.get("nbprod.compare.verdict")
        against = tags.get("nbprod.compare.champion_version")
        if verdict != "win" or against != current:
            seen = (f"the recorded comparison says {verdict!r} against version {against}"
                    if verdict else "no comparison is recorded")
            problems.append(f"it has not beaten champion version {current} in a recorded "
                            f"comparison ({seen}); run `nbprod compare`")
    if problems and not force:
        raise RegistryError(f"Refusing to promote {name} version {version}: "
                            + "; ".join(problems) + ". Use --force to override (recorded).")
    if (model.tags or {}).get("nbprod.require_approval") == "true" and not tags.get("nbprod.approved_by"):
        raise RegistryError(
            f"{name} requires approval before promotion and version {version} has none: "
            f"`nbprod approve {target} --by NAME`.")
    if current is not None:
        client.set_registered_model_alias(name, PREVIOUS, current)
    client.set_registered_model_alias(name, CHAMPION, version)
    if (model.aliases or {}).get(CHALLENGER) is not None and str(model.aliases[CHALLENGER]) == version:
        client.delete_registered_model_alias(name, CHALLENGER)
    record = _record_promotion(client, name, version, by=by, reason=reason,
                               forced=bool(problems), previous=current, overridden=problems)
    if evidence is not None:
        client.set_model_version_tag(name, version, "nbprod.promoted_evidence",
                                     json.dumps(evidence, default=str)[:5000])
    return {"name": name, "version": version, "previous": current, **record}


def _record_promotion(client, name: str, version: str, *, by: str, reason: str, forced: bool,
                      previous: str | None, overridden: list[str] | None = None) -> dict[str, Any]:
    version, previous = str(version), (str(previous) if previous is not None else None)
    record = {"version": version, "by": by, "at": _now(), "reason": reason, "forced": forced,
              "previous": previous, "overridden": overridden or []}
    for key in ("by", "at", "reason", "forced", "previous"):
        client.set_model_version_tag(name, version, f"nbprod.promoted_{key}", str(record[key]))
    model = client.get_registered_model(name)
    past = json.loads((model.tags or {}).get("nbprod.promotions", "[]"))
    past = (past + [record])[-MAX_PROMOTIONS_KEPT:]
    client.set_registered_model_tag(name, "nbprod.promotions", json.dumps(past))
    return record


def promotions(name: str) -> list[dict[str, Any]]:
    model = _client().get_registered_model(name)
    return json.loads((model.tags or {}).get("nbprod.promotions", "[]"))
