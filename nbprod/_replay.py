"""Parity replay worker: ``python -m nbprod._replay ARTIFACT SAMPLE.pkl OUT.pkl [PUB.pem]``.

Runs in a fresh process so that nothing from the notebook's memory can leak into the result.
The sample file is written by the packaging process itself into a private temporary directory.
"""

from __future__ import annotations

import pickle
import sys


def main(argv: list[str]) -> int:
    root, src, dst, *keys = argv  # keys: the signer's public key when packaging signs
    from nbprod.artifact import load

    art = load(root, trusted_keys=keys)
    with open(src, "rb") as fh:
        sample = pickle.load(fh)
    scored = art.scorer.score_detailed(sample, apply_policy=False).parity_frame()
    with open(dst, "wb") as fh:
        pickle.dump(scored, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except Exception as exc:  # one line for the packaging process to quote
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
