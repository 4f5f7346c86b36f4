"""Artifacts named by MLflow URIs: ``models:/NAME@ALIAS``, ``models:/NAME/N``, a logged model
``models:/<model_id>`` and ``runs:/...``.

The core loads artifacts from local paths (:func:`nbprod.core.artifact.load`); this module makes
the local copy first. A ``models:/`` version is pinned: its digest must equal the one
``nbprod register`` recorded, and a pinned artifact counts as authentic. :func:`load` is
``nbprod.load``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

URI_SCHEMES = ("models:/", "runs:/")
# a logged model, models:/<model_id>, as packaging logs it (not a registered NAME/VERSION)
LOGGED_MODEL = re.compile(r"^models:/m-[0-9a-f]{32}/?$")


def local_copy(target: str | Path, *, dst: str | Path | None = None
               ) -> tuple[Path, tuple[str, str] | None]:
    """Where the artifact ``target`` names is on this machine, and its registry pin.

    A path is returned as it is (pin None); a ``models:/`` URI is downloaded (into ``dst`` when
    given) and pinned to the digest ``nbprod register`` recorded; a logged model,
    ``models:/<model_id>``, is downloaded and pinned to the digest its packaging recorded; a
    ``runs:/`` URI is downloaded without a pin."""
    text = str(target)
    if LOGGED_MODEL.match(text):
        from .registry import download_logged

        return download_logged(text, dst=dst)
    if text.startswith("models:/"):
        from .registry import download_pinned

        return download_pinned(text, dst=dst)
    if text.startswith("runs:/"):
        from .registry import download

        return download(text, dst=dst), None
    return Path(target), None


def load(target: str | Path, *, trusted_keys: Any = None):
    """Verify and load the artifact at ``target``.

    Parameters
    ----------
    target : str or Path
        A path, or a registry URI (``models:/NAME@champion``, ``models:/NAME/3``), whose version
        is downloaded from MLflow and must have the digest ``nbprod register`` recorded (a
        pinned artifact counts as authentic).
    trusted_keys : PEM path, key, or list of them, optional
        Ed25519 public keys of which one must have signed the artifact; the keys in
        ``NBPROD_TRUSTED_KEYS`` count too. With none, no signature is required.

    Returns
    -------
    Artifact
        The loaded artifact, ready to score.

    Raises
    ------
    IntegrityError
        Naming the bad file when the artifact is damaged, incomplete or unsigned.

    Examples
    --------
    >>> art = nbprod.load(ARTIFACT)
    >>> art.name
    'churn-v1-fixture'
    """
    from ..core.artifact import load as load_path

    path, pin = local_copy(target)
    return load_path(path, trusted_keys=trusted_keys, pin=pin)
