"""Ed25519 signatures of artifacts: ``nbprod sign`` and the trusted keys that check them.

A signature covers the artifact's digest (:func:`nbprod.core.manifest.digest`, the SHA-256 of the
canonical manifest, which holds every file's SHA-256), so one signature vouches for every byte
the manifest lists. It lives in ``nbprod.sig`` at the artifact root, the one file outside the
manifest's list. Keys are PEM files (``openssl genpkey -algorithm ed25519``); messages name a
key by its fingerprint, ``ed25519:`` and the first 16 hex digits of the SHA-256 of its raw
32-byte public key.

Signature file format (JSON), version 1::

    {"format": "nbprod-signature", "format_version": 1, "algorithm": "ed25519",
     "key": "ed25519:0123456789abcdef", "digest": "<64 hex: the manifest digest>",
     "signature": "<base64 of 64 bytes>", "signed": "<ISO time, informative>"}

plus ``"files"``, each listed file's SHA-256 at signing (so a refusal can name the file that
changed). The signed message is ``b"nbprod-signature:v1\n"`` followed by the record without its
``"signature"`` field as canonical JSON (keys sorted, no whitespace): the digest and every other
field are covered, and a signature made for nbprod cannot pass for one of anything else. The
key is checked first, then the signature, then the digest. To change the format:
bump ``FORMAT_VERSION``, keep reading version 1, describe the change in
``docs/artifact-format.md``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..exceptions import IntegrityError, NbprodUsageError
from . import manifest as mf

SIGNATURE = mf.SIGNATURE
ENV = "NBPROD_TRUSTED_KEYS"
FORMAT = "nbprod-signature"
FORMAT_VERSION = 1
_MESSAGE = b"nbprod-signature:v1\n"


def _payload(record: dict[str, Any]) -> bytes:
    """What a signature signs: the record without its signature, as canonical JSON."""
    body = {k: v for k, v in record.items() if k != "signature"}
    return _MESSAGE + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class TrustedKey:
    """A public key to accept signatures from, and where it came from."""

    fingerprint: str
    source: str
    key: Any  # cryptography's Ed25519PublicKey

    def __str__(self) -> str:
        return f"{self.fingerprint} from {self.source}"


def _crypto():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return serialization, ed25519


def fingerprint(public_key: Any) -> str:
    serialization, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def _pem(path: str | Path, what: str) -> bytes:
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise NbprodUsageError(f"{what} {str(path)!r} does not exist.") from None
    except IsADirectoryError:
        raise NbprodUsageError(f"{what} {str(path)!r} is a directory, not a PEM key file.") from None
    except OSError as exc:
        raise NbprodUsageError(f"{what} {str(path)!r} cannot be read: {exc.strerror}.") from None
    if b"-----BEGIN" not in data[:4096]:
        raise NbprodUsageError(
            f"{what} {str(path)!r} is not a PEM key. Create an Ed25519 key pair with "
            "`openssl genpkey -algorithm ed25519 -out key.pem` and "
            "`openssl pkey -in key.pem -pubout -out key.pub.pem`.")
    return data


def load_private_key(path: str | Path) -> Any:
    """The Ed25519 private key in the PEM file ``path`` (unencrypted PKCS#8)."""
    serialization, ed25519 = _crypto()
    if isinstance(path, ed25519.Ed25519PrivateKey):
        return path
    data = _pem(path, "--key")
    if b"PUBLIC KEY" in data and b"PRIVATE KEY" not in data:
        raise NbprodUsageError(
            f"--key {str(path)!r} is a public key; signing needs the private key "
            "(`openssl genpkey -algorithm ed25519 -out key.pem`).")
    try:
        return _parse(lambda d: serialization.load_pem_private_key(d, password=None), data,
                      f"--key {str(path)!r}", "private key", ed25519.Ed25519PrivateKey,
                      "key; nbprod signs with Ed25519 (`openssl genpkey -algorithm ed25519`).")
    except TypeError:
        raise NbprodUsageError(
            f"--key {str(path)!r} is encrypted; nbprod reads unencrypted PEM keys. Keep the key "
            "in a secrets store and write it to a private file for signing.") from None


def load_public_key(path: str | Path, what: str = "trusted key") -> TrustedKey:
    """The Ed25519 public key in the PEM file ``path``."""
    serialization, ed25519 = _crypto()
    if isinstance(path, ed25519.Ed25519PublicKey):
        return TrustedKey(fingerprint(path), "given as a key object", path)
    data = _pem(path, what)
    if b"PRIVATE KEY" in data:
        raise NbprodUsageError(
            f"{what} {str(path)!r} is a private key; trust the public key instead "
            f"(`openssl pkey -in {path} -pubout -out key.pub.pem`) and keep the private key "
            "where you sign.")
    key = _parse(serialization.load_pem_public_key, data, f"{what} {str(path)!r}", "public key",
                 ed25519.Ed25519PublicKey, "public key; nbprod signatures are Ed25519.")
    return TrustedKey(fingerprint(key), str(path), key)


def _parse(load: Any, data: bytes, named: str, kind: str, expected: type, instead: str) -> Any:
    """The key that ``load`` reads from the PEM ``data``; it must be an ``expected`` (Ed25519)
    key. ``named`` names the file in the messages; ``instead`` ends the wrong-type one."""
    try:
        key = load(data)
    except ValueError as exc:
        raise NbprodUsageError(f"{named} is not a readable PEM {kind}: {str(exc)[:120]}") from None
    if not isinstance(key, expected):
        raise NbprodUsageError(
            f"{named} is a {type(key).__name__.lstrip('_')}, not an Ed25519 {instead}")
    return key


def trusted_keys(explicit: Any = None, *, env: bool = True) -> list[TrustedKey]:
    """The keys to require a signature from: ``explicit`` (paths or key objects) together with
    the files named in ``NBPROD_TRUSTED_KEYS`` (separated by ``os.pathsep``). Empty: no
    signature is required."""
    sources: list[tuple[Any, str]] = []
    if isinstance(explicit, str | Path):
        explicit = [explicit]
    for item in explicit or ():
        sources.append((item, "trusted key"))
    if env:
        for item in os.environ.get(ENV, "").split(os.pathsep):
            if item.strip():
                sources.append((item.strip(), f"{ENV} entry"))
    keys: dict[str, TrustedKey] = {}
    for item, what in sources:
        k = load_public_key(item, what)
        keys.setdefault(k.fingerprint, k)
    return list(keys.values())


def describe_keys(keys: list[TrustedKey]) -> str:
    return ", ".join(str(k) for k in keys)


# -- signing --------------------------------------------------------------------------------
def sign(root: str | Path, key: Any, *, staging: bool = False) -> dict[str, Any]:
    """Sign the artifact at ``root`` with the private ``key`` (a PEM path or key object).

    Refuses an artifact that does not verify (hashes, completeness, confinement). Writes
    ``nbprod.sig`` atomically, replacing an earlier signature. Returns the signature record.
    ``staging=True``: packaging signs the directory it is still assembling.
    """
    private = load_private_key(key)
    root = Path(root)
    check = mf.verify(root, staging=staging)
    if not check.ok:
        file, what = check.problems[0]
        more = f" ({len(check.problems) - 1} more problem(s))" if len(check.problems) > 1 else ""
        raise IntegrityError(
            f"Refusing to sign {root}: it does not verify: {file}: {what}{more}. Sign only an "
            "artifact that `nbprod verify` accepts.", path=file)
    assert check.digest is not None
    assert check.manifest is not None
    record: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "algorithm": "ed25519",
        "key": fingerprint(private.public_key()),
        "digest": check.digest,
        "signed": datetime.now(UTC).isoformat(timespec="seconds"),
        "files": {rel: e["sha256"] for rel, e in check.manifest["files"].items()},
    }
    record["signature"] = base64.b64encode(private.sign(_payload(record))).decode()
    from .files import atomic_path

    with atomic_path(root / SIGNATURE) as tmp:
        Path(tmp).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def read_signature(root: str | Path) -> dict[str, Any] | None:
    """The parsed ``nbprod.sig`` of ``root``, None when there is none; IntegrityError if damaged."""
    path = Path(root) / SIGNATURE
    if not path.exists() and not path.is_symlink():
        return None
    if path.is_symlink() or not path.is_file():
        raise IntegrityError(f"{SIGNATURE} is not a plain file.", path=SIGNATURE)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{SIGNATURE} is damaged (not JSON: {exc}).", path=SIGNATURE) from None
    if not (isinstance(record, dict) and record.get("format") == FORMAT
            and isinstance(record.get("format_version"), int)
            and all(isinstance(record.get(k), str) for k in ("key", "digest", "signature"))):
        raise IntegrityError(f"{SIGNATURE} is damaged: it is not an nbprod signature record.",
                             path=SIGNATURE)
    if record["format_version"] > FORMAT_VERSION:
        raise IntegrityError(
            f"{SIGNATURE} has format {record['format_version']}, newer than this nbprod reads "
            f"({FORMAT_VERSION}); upgrade nbprod.", path=SIGNATURE)
    if record.get("algorithm") != "ed25519":
        raise IntegrityError(f"{SIGNATURE}: algorithm {str(record.get('algorithm'))[:40]!r} is "
                             "not supported (ed25519 only).", path=SIGNATURE)
    return record


def check(root: str | Path, digest: str, keys: list[TrustedKey],
          manifest: dict[str, Any] | None = None) -> str:
    """Require a signature of ``digest`` by one of ``keys`` in ``root``; return its fingerprint.

    Raises IntegrityError saying which key and what is wrong; its ``path`` is ``nbprod.sig``, or
    the file whose entry changed since signing when ``manifest`` tells.
    """
    from cryptography.exceptions import InvalidSignature

    trusted = describe_keys(keys)
    record = read_signature(root)
    if record is None:
        raise IntegrityError(
            f"the artifact is unsigned (no {SIGNATURE}) and trusted keys are configured "
            f"({trusted}); only an artifact signed by one of them is accepted. Sign it with "
            "`nbprod sign ART --key KEY.pem`.", path=SIGNATURE)
    who = record["key"][:40]
    candidates = [k for k in keys if k.fingerprint == record["key"]]
    if not candidates:
        raise IntegrityError(
            f"signed by key {who}, which is not trusted (trusted: {trusted}). Trust that key's "
            "public half, or have the artifact signed by a trusted key.", path=SIGNATURE)
    try:
        signature = base64.b64decode(record["signature"], validate=True)
    except ValueError:
        raise IntegrityError(f"{SIGNATURE} is damaged: the signature is not base64.",
                             path=SIGNATURE) from None
    for k in candidates:
        try:
            k.key.verify(signature, _payload(record))
        except InvalidSignature:
            continue
        break
    else:
        raise IntegrityError(
            f"the signature does not verify with trusted key {candidates[0]}: {SIGNATURE} was "
            "altered or forged.", path=SIGNATURE)
    if record["digest"] != digest:
        changed = _changed_since_signing(record, manifest)
        raise IntegrityError(
            f"the manifest changed after it was signed by key {who} ("
            + (f"the entries of {', '.join(changed[:3])} differ from the signed ones; "
               if changed else "")
            + f"signed digest {record['digest'][:12]}..., now {digest[:12]}...): the artifact is "
            "not what was signed.", path=changed[0] if changed else SIGNATURE)
    return k.fingerprint


def _changed_since_signing(record: dict[str, Any], manifest: dict[str, Any] | None) -> list[str]:
    signed = record.get("files")
    if manifest is None or not isinstance(signed, dict):
        return []
    now = {rel: e.get("sha256") for rel, e in manifest["files"].items()}
    return sorted(str(rel)[:120] for rel in set(signed) | set(now) if signed.get(rel) != now.get(rel))


def public_pem(private_or_public: Any) -> bytes:
    """The PEM of a key's public half (for handing a signer's key to a child process)."""
    serialization, ed25519 = _crypto()
    key = private_or_public
    if isinstance(key, ed25519.Ed25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
