"""The parity replay: the packaged artifact, loaded in a fresh Python process, must score the
snapshot sample exactly as the notebook does.

:func:`replay` (the packaging side) writes the sample into a staging directory beside the
artifact and runs ``python -m nbprod.capture.replay ARTIFACT SAMPLE.pkl OUT.pkl [PUB.pem]``;
:func:`main` (the fresh process) loads the artifact as ``nbprod.load`` would and scores the
sample there, so nothing from the notebook's memory can leak into the result.

Starting that process and importing pandas, scikit-learn and skops there takes seconds, so
packaging starts it early (:class:`Warm`, ``python -m nbprod.capture.replay --wait``): it
imports those libraries while the artifact is written, and is told the paths on its standard
input when the replay starts. It is as fresh as before: it never saw the notebook, only the
library imports happen earlier.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.staging import StagingDir
from ..exceptions import ParityError

REPLAY_TIMEOUT_S = 600
WAIT = "--wait"


def _environment() -> dict[str, str]:
    """The replay's environment: this one, less the trusted keys (it trusts the signer only)."""
    from ..core.signing import ENV
    from ..core.trust import AUTHENTIC_ENV

    return {k: v for k, v in os.environ.items() if k not in (ENV, AUTHENTIC_ENV)}


class Warm:
    """The replay's fresh process, started before it is needed (a context manager: on the way
    out a process never told what to replay is ended)."""

    def __init__(self) -> None:
        import tempfile

        self._stderr = tempfile.TemporaryFile(  # noqa: SIM115 - closed by close()
            "w+", prefix="nbprod-replay-", suffix=".log")
        self.proc: subprocess.Popen | None = subprocess.Popen(
            [sys.executable, "-m", "nbprod.capture.replay", WAIT], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=self._stderr, text=True, env=_environment())

    def run(self, argv: list[str]) -> tuple[int, str]:
        """Replay with ``argv`` (as :func:`main` takes it): the exit code and standard error."""
        proc, self.proc = self.proc, None
        assert proc is not None, "a warm replay process runs once"
        try:
            proc.communicate(json.dumps(argv) + "\n", timeout=REPLAY_TIMEOUT_S)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        self._stderr.seek(0)
        return proc.returncode, self._stderr.read()

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        self._stderr.close()

    def __enter__(self) -> Warm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def replay(root: Path, sample: pd.DataFrame, signer: Any = None,
           warm: Warm | None = None) -> pd.DataFrame:
    """Load the artifact at ``root`` in a fresh Python process (``warm``, started earlier, or a
    new one) and score ``sample`` there.

    The replay trusts exactly the signer's public key (none when unsigned), whatever
    ``NBPROD_TRUSTED_KEYS`` says: it checks parity, and the signature it just made.
    """
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
            from ..core.signing import public_pem

            keys = [str(Path(tmp) / "signer.pub.pem")]
            Path(keys[0]).write_bytes(public_pem(signer))
        argv = [str(root), str(src), str(dst), *keys]
        if warm is not None and warm.proc is not None and warm.proc.poll() is None:
            returncode, stderr = warm.run(argv)
        else:
            proc = subprocess.run(
                [sys.executable, "-m", "nbprod.capture.replay", *argv],
                capture_output=True, text=True, timeout=REPLAY_TIMEOUT_S, env=_environment(),
            )
            returncode, stderr = proc.returncode, proc.stderr
        if returncode != 0:
            lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
            last = lines[-1] if lines else f"exit code {returncode}"
            raise ParityError(
                "Parity replay failed: the artifact could not score its snapshot sample in a "
                f"fresh process: {last}"
            )
        with open(dst, "rb") as fh:
            return pickle.load(fh)
    finally:
        scratch.remove()


def main(argv: list[str]) -> int:
    if argv == [WAIT]:  # started early (Warm): import now, then wait for the paths
        _preload()
        line = sys.stdin.readline()
        if not line.strip():
            return 0  # packaging stopped before its replay
        argv = json.loads(line)
    root, src, dst, *keys = argv  # keys: the signer's public key when packaging signs
    art = load_staging(root, keys)
    with open(src, "rb") as fh:
        sample = pickle.load(fh)
    scored = art.scorer.score_detailed(sample, apply_policy=False).parity_frame()
    with open(dst, "wb") as fh:
        pickle.dump(scored, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return 0


def _preload() -> None:
    """What loading and scoring an artifact imports (libraries only: no artifact exists yet)."""
    from contextlib import suppress

    from ..core import artifact, scoring, trust  # noqa: F401

    with suppress(ImportError):  # else the replay says what is missing
        import skops.io  # noqa: F401 - the model store, and the scikit-learn it imports


def load_staging(root: str, keys: list[str]):
    """Load the artifact that packaging is assembling at ``root``, as ``nbprod.load`` would,
    except that its staging marker is allowed: ``nbprod.core.manifest.staging_problem`` makes
    every other loader refuse it until this replay has passed. ``keys``: the signer's public
    key when packaging signs."""
    from pathlib import Path

    from ..core import manifest as mf
    from ..core import trust
    from ..core.artifact import Artifact

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
