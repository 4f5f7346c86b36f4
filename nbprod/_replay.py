"""Parity replay worker: ``python -m nbprod._replay ARTIFACT SAMPLE.pkl OUT.pkl [PUB.pem]``.

Runs in a fresh process so that nothing from the notebook's memory can leak into the result.
The sample file is written by the packaging process itself into a private temporary directory.
"""

from __future__ import annotations

import pickle
import sys


def main(argv: list[str]) -> int:
    root, src, dst, *keys = argv  # keys: the signer's public key when packaging signs
    art = load_staging(root, keys)
    with open(src, "rb") as fh:
        sample = pickle.load(fh)
    scored = art.scorer.score_detailed(sample, apply_policy=False).parity_frame()
    with open(dst, "wb") as fh:
        pickle.dump(scored, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


def load_staging(root: str, keys: list[str]):
    """Load the artifact that packaging is assembling at ``root``, as ``nbprod.load`` would,
    except that its staging marker is allowed: ``nbprod.manifest.staging_problem`` makes
    every other loader refuse it until this replay has passed. ``keys``: the signer's public
    key when packaging signs."""
    from pathlib import Path

    from .core import manifest as mf
    from .core import trust
    from .core.artifact import Artifact

    path = Path(root)
    if mf.staging_problem(path) is None:
        raise mf.IntegrityError(f"{root} is not a packaging staging directory.")
    check = trust.verify(path, trusted_keys=keys or None, staging=True)
    check.raise_for_problems()
    assert check.manifest is not None
    art = Artifact(path, check.manifest, check)
    art.scorer  # noqa: B018 - deserialize now, after verification, as nbprod.load does
    return art


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as exc:  # one line for the packaging process to quote
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
