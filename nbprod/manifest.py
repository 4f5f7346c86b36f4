"""The artifact manifest, ``nbprod.json``: format, hashing and verification.

Format versions
---------------
``FORMAT_VERSION`` is stamped in every manifest. To change the format: bump it, describe the
change in ``docs/artifact-format.md``, keep reading every older version in :func:`read` (convert
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

from .exceptions import IntegrityError

MANIFEST = "nbprod.json"
FORMAT = "nbprod-artifact"
FORMAT_VERSION = 1
_CHUNK = 1 << 20
# what loading and scoring read from every manifest, with its JSON type
_REQUIRED = {"name": str, "task": str, "target": str, "input_columns": list, "features": dict,
             "model": dict, "scoring": dict, "snapshots": dict, "reference": str}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def file_entries(root: Path) -> dict[str, dict[str, Any]]:
    """SHA-256 and size of every file under ``root`` except the manifest itself."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            if rel != MANIFEST:
                out[rel] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    return out


def write(root: Path, manifest: dict[str, Any]) -> None:
    manifest = dict(manifest)
    manifest["files"] = file_entries(root)
    from ._json import dumps

    text = dumps(manifest, indent=2, sort_keys=False, default=_json_default)
    (root / MANIFEST).write_text(text + "\n", encoding="utf-8")


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def read(root: Path) -> dict[str, Any]:
    """Parse and format-check ``nbprod.json``: its format and version, a size and SHA-256 for
    every file, and the fields loading needs (does not verify the files' hashes)."""
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
    files = data.get("files")
    if not isinstance(files, dict):
        raise IntegrityError(f"{MANIFEST} lists no files.", path=MANIFEST)
    for rel, entry in files.items():
        if not (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
                and isinstance(entry.get("bytes"), int)):
            raise IntegrityError(
                f"{MANIFEST}: the entry for {rel} lacks its sha256 or size.", path=MANIFEST
            )
    for key, kind in _REQUIRED.items():
        if not isinstance(data.get(key), kind):
            raise IntegrityError(
                f"{MANIFEST} has no valid {key!r} ({kind.__name__}); the manifest is damaged.",
                path=MANIFEST,
            )
    return data


@dataclass
class Verification:
    """What :func:`verify` found: problems make the artifact unusable; extras are reported."""

    root: Path
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file, what)
    extra: list[str] = field(default_factory=list)
    checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        if self.problems:
            file, what = self.problems[0]
            more = f" ({len(self.problems) - 1} more problem(s))" if len(self.problems) > 1 else ""
            raise IntegrityError(f"Artifact {self.root}: {file}: {what}{more}", path=file)


def verify(root: Path, manifest: dict[str, Any] | None = None) -> Verification:
    """Check every listed file's size and SHA-256; list files the manifest does not know."""
    root = Path(root)
    result = Verification(root)
    try:
        manifest = manifest or read(root)
    except IntegrityError as exc:
        result.problems.append((exc.path or MANIFEST, str(exc)))
        return result
    listed = manifest["files"]
    for rel, entry in listed.items():
        p = root / rel
        if ".." in Path(rel).parts or Path(rel).is_absolute():
            result.problems.append((rel, "path escapes the artifact"))
            continue
        if not p.is_file():
            result.problems.append((rel, "missing"))
            continue
        if p.stat().st_size != entry.get("bytes"):
            result.problems.append(
                (rel, f"size {p.stat().st_size} bytes, manifest says {entry.get('bytes')}")
            )
            continue
        digest = sha256_file(p)
        if digest != entry.get("sha256"):
            result.problems.append(
                (rel, f"SHA-256 {digest[:12]}... does not match the manifest ({str(entry.get('sha256'))[:12]}...)")
            )
        result.checked += 1
    for p in sorted(root.rglob("*")):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            if rel != MANIFEST and rel not in listed and "__pycache__" not in p.parts:
                result.extra.append(rel)
    return result


def digest(manifest: dict[str, Any]) -> str:
    """A fingerprint of the whole artifact: SHA-256 of the canonical manifest."""
    text = json.dumps(manifest, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()
