"""The artifact manifest, ``nbprod.json``: format, hashing and verification.

Format versions
---------------
``FORMAT_VERSION`` is stamped in every manifest. To change the format: bump it, describe the
change in ``docs/artifact-format.md`` and in a schema of the new version beside
``docs/manifest.schema.json`` (:mod:`nbprod.core.manifest_schema`), keep reading every older version in :func:`read` (convert
it to the current shape there), and keep an artifact of each older version under
``tests/data/`` loading in the tests.

- 1: first version.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exceptions import IntegrityError, PackagingError
from .files import dumps, jsonable
from .manifest_schema import problem

MANIFEST = "nbprod.json"
SIGNATURE = "nbprod.sig"  # written by nbprod sign; the one file outside the list
STAGING_MARKER = ".nbprod-staging"  # in a directory packaging is still assembling
FORMAT = "nbprod-artifact"
FORMAT_VERSION = 1
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def file_entries(root: Path) -> dict[str, dict[str, Any]]:
    """SHA-256 and size of every file under ``root`` except the manifest itself (and the
    staging marker of a directory being packaged)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            if rel not in (MANIFEST, STAGING_MARKER):
                out[rel] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    return out


def write(root: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` with the list of every file under ``root``; a manifest the schema
    refuses is nbprod's own bug, so it is refused before anything is written."""
    manifest = dict(manifest)
    manifest["files"] = file_entries(root)
    text = dumps(manifest, indent=2, sort_keys=False)  # strict; an unknown value is an error
    wrong = problem(json.loads(text))
    if wrong:
        raise PackagingError(f"nbprod built a manifest that its own schema refuses: {wrong}")
    (root / MANIFEST).write_text(text + "\n", encoding="utf-8")


def read(root: Path) -> dict[str, Any]:
    """Parse and format-check ``nbprod.json``: its format and version, then every field against
    the schema of that version (:mod:`nbprod.core.manifest_schema`), a size and SHA-256 for every
    file included. Does not verify the files' hashes (:func:`verify` does)."""
    root = Path(root)
    path = root / MANIFEST
    if not root.exists():
        raise IntegrityError(f"No artifact at {root}: the directory does not exist.")
    if not path.is_file():
        raise IntegrityError(
            f"{root} is not an nbprod artifact: it has no {MANIFEST}.", path=MANIFEST
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{MANIFEST} is not valid JSON: {exc}", path=MANIFEST) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise IntegrityError(f"{MANIFEST} is not an nbprod manifest.", path=MANIFEST)
    version = data.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise IntegrityError(f"{MANIFEST} has no valid format_version.", path=MANIFEST)
    if version > FORMAT_VERSION:
        raise IntegrityError(
            f"Artifact format {version} is newer than this nbprod reads ({FORMAT_VERSION}); "
            "upgrade nbprod.",
            path=MANIFEST,
        )
    wrong = problem(data)  # the schema of format 1 (docs/manifest.schema.json)
    if wrong:
        raise IntegrityError(wrong, path=MANIFEST)
    return data


@dataclass
class Verification:
    """What :func:`verify` found. Any problem makes the artifact unusable.

    ``contents`` keeps the verified bytes of the files nbprod executes or deserializes (feature
    code, model, scoring notebook, reference, snapshot metadata), so that loading uses exactly
    the bytes whose hash matched instead of reading the file a second time. ``authentic`` says
    why the manifest itself can be believed (a trusted signature, a registry pin), or is None.
    """

    root: Path
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, what)
    extra: list[str] = field(default_factory=list)  # files present but not listed (refused)
    checked: int = 0
    manifest: dict[str, Any] | None = field(default=None, repr=False)
    digest: str | None = None
    contents: dict[str, bytes] = field(default_factory=dict, repr=False)
    signed_by: str | None = None  # fingerprint of the trusted key whose signature verified
    authentic: str | None = None  # e.g. "signed by trusted key ed25519:...", or None
    read_error: IntegrityError | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        if self.read_error is not None:
            raise self.read_error
        if self.problems:
            file, what = self.problems[0]
            more = f" ({len(self.problems) - 1} more problem(s))" if len(self.problems) > 1 else ""
            raise IntegrityError(f"Artifact {self.root}: {file}: {what}{more}", path=file)


# every artifact has these at fixed names (the MLflow model and the papermill job)
FIXED_FILES = ("MLmodel", "python_env.yaml", "requirements.txt", "score.ipynb")
# MLflow writes this file (model name and version, YAML) into every copy of a registered model
# it downloads, into the store's own copy when the store is local; nbprod never reads it
MLFLOW_FILES = ("registered_model_meta",)
KEEP_BYTES_LIMIT = 256 << 20  # a used file larger than this is streamed, not kept in memory
_CUT = 80


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _CUT else text[: _CUT - 3] + "..."


def path_problem(rel: Any) -> str | None:
    """Why ``rel`` is not a plain relative path inside an artifact, or None when it is."""
    if not isinstance(rel, str) or not rel:
        return "is not a file path"
    if "\\" in rel or "\0" in rel:
        return "is not a plain POSIX path"
    if rel.startswith("/") or Path(rel).is_absolute():
        return "is an absolute path, outside the artifact"
    parts = rel.split("/")
    if ".." in parts:
        return "uses '..': path escapes the artifact"
    if any(part in ("", ".") for part in parts):
        return "is not a normalised relative path"
    if rel in (MANIFEST, SIGNATURE):
        return f"is {rel}, which is never listed in the manifest"
    return None


def pointers(manifest: dict[str, Any]) -> list[tuple[str, Any]]:
    """``(field, path)`` for every file the manifest names, fixed names included."""
    out: list[tuple[str, Any]] = [
        ("features.file", manifest["features"].get("file")),
        ("model.file", manifest["model"].get("file")),
        ("reference", manifest["reference"]),
    ]
    if "notebook" in manifest["scoring"]:
        out.append(("scoring.notebook", manifest["scoring"]["notebook"]))
    snapshots = manifest["snapshots"]
    if "train" not in snapshots:
        out.append(("snapshots.train", None))
    for role, snap in snapshots.items():
        if not isinstance(snap, dict):
            out.append((f"snapshots.{role}", None))
            continue
        out += [(f"snapshots.{role}.file", snap.get("file")),
                (f"snapshots.{role}.sample", snap.get("sample"))]
    training = manifest.get("training")
    if training is not None:
        notebook = training.get("notebook") if isinstance(training, dict) else None
        out.append(("training.notebook", notebook))
    out += [(name, name) for name in FIXED_FILES]
    return out


def _used(manifest: dict[str, Any]) -> set[str]:
    """Files whose verified bytes nbprod uses: code it runs (features, notebooks), the model,
    and the JSON metadata."""
    used = ["score.ipynb", manifest["features"].get("file"), manifest["model"].get("file"),
            manifest["reference"]]
    used += [s.get("file") for s in manifest["snapshots"].values() if isinstance(s, dict)]
    if isinstance(manifest.get("training"), dict):
        used.append(manifest["training"].get("notebook"))
    return {u for u in used if isinstance(u, str)}


def _walk(root: Path) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Every regular file below ``root`` (relative path -> size) without following links, and
    the entries that are not plain files or directories (symbolic links above all)."""
    import os
    import stat

    files: dict[str, int] = {}
    odd: list[tuple[str, str]] = []
    pending = [""]
    while pending:
        rel_dir = pending.pop()
        try:
            entries = list(os.scandir(root / rel_dir if rel_dir else root))
        except OSError as exc:
            odd.append((rel_dir or ".", f"cannot be listed: {exc.strerror or exc}"))
            continue
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                odd.append((rel, "is a symbolic link; an artifact holds only plain files "
                                 "(replace the link by the file it points to, or re-package)"))
            elif stat.S_ISDIR(st.st_mode):
                pending.append(rel)
            elif stat.S_ISREG(st.st_mode):
                files[rel] = st.st_size
            else:
                odd.append((rel, "is not a regular file"))
    return files, odd


def _read_listed(path: Path, keep: bool) -> tuple[int, str, bytes | None]:
    """(size, SHA-256, bytes if kept) of a file opened without following a final symlink."""
    import os

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if keep and size <= KEEP_BYTES_LIMIT:
            data = fh.read()
            return len(data), hashlib.sha256(data).hexdigest(), data
        h = hashlib.sha256()
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
        return size, h.hexdigest(), None


def verify(root: Path, manifest: dict[str, Any] | None = None, *,
           staging: bool = False) -> Verification:
    """Check that the artifact at ``root`` is exactly what its manifest lists.

    Complete and confined: every file below ``root`` (but the manifest, the signature file and
    MLflow's ``registered_model_meta``) must be listed; every path the manifest names
    (``features.file``, ``model.file``, snapshots, ``reference``, the training notebook, and the
    fixed ``MLmodel``, ``python_env.yaml``, ``requirements.txt``, ``score.ipynb``) must be a
    listed, plain relative path; no symbolic link anywhere below ``root``; each listed file must
    have its size and SHA-256. Does not check a signature or the trusted types: :func:`nbprod.core.trust.verify` does.

    A directory that packaging is still assembling (:func:`staging_problem`) is refused, unless
    ``staging=True``: the parity replay, and only it, loads one.
    """
    root = Path(root)
    result = Verification(root)
    unfinished = staging_problem(root)
    if unfinished and not staging:
        result.problems.append((STAGING_MARKER, unfinished))
    try:
        manifest = manifest or read(root)
    except IntegrityError as exc:
        result.problems.append((exc.path or MANIFEST, str(exc)))
        result.read_error = exc
        return result
    result.manifest = manifest
    result.digest = digest(manifest)
    listed = manifest["files"]
    on_disk, odd = _walk(root)
    linked = [rel for rel, _ in odd]
    for rel, what in odd:
        if rel in (MANIFEST, SIGNATURE) or rel in listed:
            result.problems.append((rel, what))

    for name, target in pointers(manifest):
        if target is None and name.startswith("snapshots.") and name.count(".") == 1:
            result.problems.append((MANIFEST, f"{name} is missing or not an object; the manifest "
                                              "is damaged"))
            continue
        bad = path_problem(target)
        if bad:
            result.problems.append((MANIFEST, f"{name} {_shown(target)} {bad}"))
        elif target not in listed:
            result.problems.append(
                (MANIFEST, f"{name} names {target}, which the manifest's file list does not "
                           "cover (a shortened or emptied list is refused)"))

    used = _used(manifest)
    for rel, entry in listed.items():
        bad = path_problem(rel)
        if bad:
            result.problems.append((rel, f"listed path {bad}"))
            continue
        if rel not in on_disk:
            if not any(rel == p or rel.startswith(p + "/") for p in linked):
                result.problems.append((rel, "missing"))
            continue
        try:
            size, sha, data = _read_listed(root / rel, rel in used)
        except OSError as exc:
            result.problems.append((rel, f"cannot be read: {exc.strerror or exc}"))
            continue
        if size != entry.get("bytes"):
            result.problems.append((rel, f"size {size} bytes, manifest says {entry.get('bytes')}"))
            continue
        if sha != entry.get("sha256"):
            result.problems.append(
                (rel, f"SHA-256 {sha[:12]}... does not match the manifest "
                      f"({str(entry.get('sha256'))[:12]}...)"))
            continue
        if data is not None:
            result.contents[rel] = data
        result.checked += 1

    for rel in sorted(on_disk):
        if rel not in listed and rel not in (MANIFEST, SIGNATURE, STAGING_MARKER, *MLFLOW_FILES):
            result.extra.append(rel)
            result.problems.append(
                (rel, "is not listed in the manifest; an artifact holds only the files it "
                      "lists (remove it, or re-package)"))
    for rel, what in odd:
        if rel not in (MANIFEST, SIGNATURE) and rel not in listed:
            result.problems.append((rel, what))
    return result


def staging_problem(root: Path) -> str | None:
    """Why ``root`` is not an artifact yet, when packaging is assembling it (or was killed doing
    so): a staging directory holds :data:`STAGING_MARKER` until its parity replay has passed and
    it is renamed into place. Verification refuses it; only the parity replay loads it."""
    if (Path(root) / STAGING_MARKER).exists():
        return (f"{root} is a packaging staging directory, not an artifact: packaging is still "
                "running there or was interrupted before its parity replay passed. Package again; "
                "the next package removes it once its owner is gone.")
    return None


def digest(manifest: dict[str, Any]) -> str:
    """A fingerprint of the whole artifact: SHA-256 of the canonical manifest."""
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), default=jsonable)
    return hashlib.sha256(text.encode()).hexdigest()
