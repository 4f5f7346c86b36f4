"""Ed25519 key pairs for the signing tests, generated at test time (never committed)."""

from __future__ import annotations

from pathlib import Path


def keypair(d: Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.pem`` (private, PKCS#8) and ``NAME.pub.pem`` into ``d``; return both paths."""
    from cryptography.hazmat.primitives import serialization as ser
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    priv, pub = d / f"{name}.pem", d / f"{name}.pub.pem"
    priv.write_bytes(key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                                       ser.NoEncryption()))
    pub.write_bytes(key.public_key().public_bytes(ser.Encoding.PEM,
                                                  ser.PublicFormat.SubjectPublicKeyInfo))
    return priv, pub
