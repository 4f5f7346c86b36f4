"""Whole-artifact verification: integrity, authenticity and the trusted-types policy.

:func:`verify` is what ``nbprod.load``, ``nbprod score``, ``nbprod verify``, ``nbprod register``
and ``nbprod retrain`` run before any of an artifact's code or notebook runs:

1. :func:`nbprod.core.manifest.verify`: every file listed, hashed and confined (no symlink, no path
   outside, no unlisted file).
2. A registry pin, when the artifact came from ``models:/NAME/N``: the manifest's digest must
   equal the ``nbprod.digest`` tag recorded by ``nbprod register``.
3. A signature, when trusted keys are configured (``trusted_keys=``, ``--trusted-key``,
   ``NBPROD_TRUSTED_KEYS``): ``nbprod.sig`` must sign the manifest's digest with one of them.
4. The trusted-types policy: an unauthenticated manifest may only ask skops to trust types in
   :func:`nbprod.core.model_store.allowed_unsigned`.

The manifest is *authentic* when a trusted key signed it or the registry pinned it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..exceptions import IntegrityError
from . import manifest as mf

# Set by `nbprod score` for its own notebook kernel: "<digest> <what authenticated it>". The
# kernel's nbprod.load then counts a manifest with exactly that digest as authentic (the
# parent already checked the registry pin). Keys travel in NBPROD_TRUSTED_KEYS.
AUTHENTIC_ENV = "_NBPROD_AUTHENTIC_DIGEST"


def verify(root: str | Path, *, trusted_keys: Any = None, pin: tuple[str, str] | None = None,
           check_types: bool = True, staging: bool = False) -> mf.Verification:
    """Verify the whole artifact at ``root``; problems are collected, not raised.

    ``trusted_keys``: PEM paths (or key objects) whose signature is required, together with
    ``NBPROD_TRUSTED_KEYS``. ``pin``: ``(uri, digest)`` registered for this artifact.
    ``check_types=False`` skips the trusted-types policy: for ``nbprod register``, which (like
    ``nbprod sign``) vouches for the artifact rather than loading it. ``staging=True`` accepts a
    directory that packaging is still assembling: for the parity replay alone.
    """
    from . import signing

    result = mf.verify(Path(root), staging=staging)
    keys = signing.trusted_keys(trusted_keys)  # a bad key path is a usage error, always
    if result.read_error is not None:
        return result
    assert result.digest is not None and result.manifest is not None
    if pin is not None:
        uri, expected = pin
        if result.digest != expected:
            result.problems.append((mf.MANIFEST, (
                f"the artifact's digest {result.digest[:12]}... differs from the digest "
                f"`nbprod register` recorded for {uri} ({str(expected)[:12]}...): the "
                "registered copy was changed after it was registered")))
        else:
            result.authentic = f"pinned by the registry ({uri})"
    if keys and result.ok:
        try:
            result.signed_by = signing.check(result.root, result.digest, keys, result.manifest)
        except IntegrityError as exc:
            result.problems.append((exc.path or signing.SIGNATURE, str(exc)))
        else:
            result.authentic = f"signed by trusted key {result.signed_by}"
    if result.authentic is None:
        claimed = os.environ.get(AUTHENTIC_ENV, "").split(" ", 1)
        if len(claimed) == 2 and claimed[0] == result.digest:
            result.authentic = claimed[1]
    if check_types:
        _check_trusted_types(result)
    return result


def _check_trusted_types(result: mf.Verification) -> None:
    from .model_store import unsigned_refusal

    assert result.manifest is not None
    model = result.manifest["model"]
    types = model.get("trusted_types", [])
    if not (isinstance(types, list) and all(isinstance(t, str) for t in types)):
        result.problems.append((mf.MANIFEST, "model.trusted_types is not a list of type names; "
                                             "the manifest is damaged"))
        return
    if result.authentic is None:
        refusal = unsigned_refusal(types)
        if refusal:
            result.problems.append((mf.MANIFEST, refusal))


@contextmanager
def child_environment(result: mf.Verification, trusted_keys: Any = None) -> Iterator[None]:
    """Hand what was verified to a child process (the scoring kernel) through the environment:
    the trusted keys (absolute paths, with ``NBPROD_TRUSTED_KEYS``) and, for a registry-pinned
    artifact, its authentic digest. Restores the environment afterwards."""
    from . import signing

    env: dict[str, str] = {}
    paths = [str(Path(k).absolute()) for k in (
        [trusted_keys] if isinstance(trusted_keys, str | Path) else trusted_keys or [])
        if isinstance(k, str | Path)]
    if paths:
        inherited = [p for p in os.environ.get(signing.ENV, "").split(os.pathsep) if p.strip()]
        env[signing.ENV] = os.pathsep.join(inherited + paths)
    if result.authentic and result.signed_by is None and result.digest:
        env[AUTHENTIC_ENV] = f"{result.digest} {result.authentic}"
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
