"""nbprod itself as a wheel inside the artifact, so MLflow can restore a scoring environment from
public packages alone.

An artifact's ``requirements.txt`` names ``./wheels/<sha16>/nbprod-<version>-py3-none-any.whl``
instead of ``nbprod==<version>``: the nbprod that packaged the artifact, whether it came from a
package index, a source tree or an editable install, travels with it. The wheel is written here,
in-process, from the *importable* package (the directory ``nbprod`` is imported from: its
``.py`` files and ``py.typed``, never ``__pycache__`` nor the JupyterLab extension, which scoring
does not need), with the ``.dist-info`` a wheel must have (``METADATA``, ``WHEEL``,
``entry_points.txt``, ``RECORD``). No build backend, compiler or Node.js is needed, so a user who
installed nbprod from a package index can package too.

The bytes are deterministic: files in sorted order, fixed timestamps and permissions. The same
code gives the same wheel, the same SHA-256 in ``nbprod.json``, and the same directory. The
directory is named by the wheel's hash because MLflow names the environments it restores by the
*text* of the requirements: a wheel at an unchanging path with new code inside would be served
from a stale environment.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from functools import lru_cache
from pathlib import Path

from .._version import __version__

WHEELS_DIR = "wheels"
# what loading and scoring an artifact import (MLflow's scoring server adds mlflow itself);
# the notebook front ends (papermill, IPython, widgets, plotting) never run in a restored
# environment, so the wheel does not ask for them
RUNTIME_DEPENDENCIES = ("cryptography", "fastjsonschema", "jsonschema", "numpy", "pandas", "pyarrow",
                        "scikit-learn", "scipy", "skops")
_SKIPPED_DIRS = {"__pycache__", "labextension"}
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip file can hold: no build date inside


def package_dir() -> Path:
    """The directory the running ``nbprod`` is imported from."""
    return Path(__file__).resolve().parents[1]


def wheel_name() -> str:
    return f"nbprod-{__version__}-py3-none-any.whl"


@lru_cache(maxsize=4)
def _build(source: Path, fingerprint: tuple[tuple[str, int, int], ...]) -> bytes:
    del fingerprint  # part of the cache key only: a changed file builds a new wheel
    dist_info = f"nbprod-{__version__}.dist-info"
    entries = [(f"nbprod/{p.relative_to(source).as_posix()}", p.read_bytes())
               for p in _package_files(source)]
    metadata = ["Metadata-Version: 2.1", "Name: nbprod", f"Version: {__version__}",
                "Summary: nbprod's scoring runtime, shipped inside an nbprod artifact",
                "Requires-Python: >=3.11",
                *(f"Requires-Dist: {d}" for d in RUNTIME_DEPENDENCIES)]
    entries.append((f"{dist_info}/METADATA", ("\n".join(metadata) + "\n").encode()))
    entries.append((f"{dist_info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: nbprod\n"
                                          b"Root-Is-Purelib: true\nTag: py3-none-any\n"))
    entries.append((f"{dist_info}/entry_points.txt",
                    b"[console_scripts]\nnbprod = nbprod.cli:main\n"))
    record = "".join(f"{path},sha256={_urlsafe_sha256(data)},{len(data)}\n"
                     for path, data in entries) + f"{dist_info}/RECORD,,\n"
    entries.append((f"{dist_info}/RECORD", record.encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, data in entries:
            info = zipfile.ZipInfo(path, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buffer.getvalue()


def build() -> bytes:
    """The wheel of the running nbprod, as bytes (built once per process and code state)."""
    source = package_dir()
    files = _package_files(source)
    fingerprint = tuple((p.as_posix(), p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    return _build(source, fingerprint)


def relative_path(data: bytes | None = None) -> str:
    """Where the wheel ``data`` (default: the running nbprod's) goes inside an artifact:
    ``wheels/<first 16 hex digits of its SHA-256>/nbprod-<version>-py3-none-any.whl``."""
    data = build() if data is None else data
    return f"{WHEELS_DIR}/{hashlib.sha256(data).hexdigest()[:16]}/{wheel_name()}"


def write(root: Path) -> str:
    """Write the running nbprod's wheel into the artifact at ``root``; its relative path."""
    data = build()
    rel = relative_path(data)
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return rel


def _package_files(source: Path) -> list[Path]:
    out = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if any(part in _SKIPPED_DIRS for part in rel.parts) or not path.is_file():
            continue
        if path.suffix in (".py", ".json") or path.name == "py.typed":  # code and its data
            out.append(path)
    return out


def _urlsafe_sha256(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
