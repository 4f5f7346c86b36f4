"""Hidden staging directories beside final paths, and outputs published together at the end.

A staging directory is ``.PREFIX.XXXXXXXX.nbprod-tmp`` in the directory of the final path (so
the final move is a rename on one file system). It holds a marker file,
:data:`nbprod.core.manifest.STAGING_MARKER`, that its owner keeps locked (``flock``) for as long as it
lives. The lock goes when the owner dies, even by ``kill -9``, so :func:`remove_stale` can tell
a directory whose owner is gone from one still in use and remove only the first kind. The
marker also makes verification refuse a staging directory as an artifact.

:class:`StagedOutputs` is how a scoring run writes: every output goes to ``out/NAME`` in a
staging directory beside its final path, and :meth:`StagedOutputs.publish` renames them all
into place once the run succeeded. ``nbprod score`` hands the staged paths to the scoring
kernel in the environment variable :data:`ENV`, so the kernel (which may outlive a killed
``nbprod score`` by a second) never writes a final path itself.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from .manifest import MANIFEST, STAGING_MARKER

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: owners are never presumed gone
    fcntl = None  # type: ignore[assignment]

SUFFIX = ".nbprod-tmp"
ENV = "NBPROD_STAGED_OUTPUTS"  # JSON {final path: staged path}, set by `nbprod score` for its kernel
UNBORN_MARKER = STAGING_MARKER + ".new"  # the marker while it is being locked
UNMARKED_STALE_S = 60  # an unmarked staging directory this old lost its owner at birth


class StagingDir:
    """A directory marked as staging and owned by this process (see the module docs).

    ``StagingDir(existing)`` marks an existing directory (it then stops being an artifact);
    :meth:`create` makes a new hidden one beside a final path.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        # the marker is locked before it gets its name: another process that finds the marker
        # must find it locked, or it would take this live directory for a stale one
        unborn = self.path / UNBORN_MARKER
        self._fd: int | None = os.open(unborn, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(self._fd, f"{os.getpid()}\n".encode())
            if fcntl is not None:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            try:
                os.link(unborn, self.marker)  # FileExistsError: another process stages here
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links
                if self.marker.exists():
                    raise FileExistsError(f"{self.marker} exists: another process stages here") from None
                os.rename(unborn, self.marker)
        except BaseException:
            self._release()
            raise
        finally:
            unborn.unlink(missing_ok=True)

    @classmethod
    def create(cls, parent: Path, prefix: str) -> StagingDir:
        path = Path(tempfile.mkdtemp(prefix=f".{prefix}.", suffix=SUFFIX, dir=parent))
        try:
            return cls(path)
        except BaseException:
            path.rmdir()
            raise

    @property
    def marker(self) -> Path:
        return self.path / STAGING_MARKER

    def moved(self, to: Path) -> None:
        """Record that the directory was renamed to ``to`` (the lock stays held)."""
        self.path = Path(to)

    def unmark(self) -> None:
        """Remove the marker (the directory stops being a staging directory), then the lock."""
        self.marker.unlink(missing_ok=True)
        self._release()

    def remove(self) -> None:
        remove_tree(self.path)
        self._release()

    def _release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None


def remove_tree(path: Path) -> None:
    """Remove a staging directory; its manifest goes first, so that a removal killed half way
    never leaves a directory that verifies (without the marker, with every listed file)."""
    (Path(path) / MANIFEST).unlink(missing_ok=True)
    shutil.rmtree(path, ignore_errors=True)


def owner_gone(directory: Path) -> bool:
    """Whether the staging ``directory`` was left by a process that no longer runs."""
    marker = directory / STAGING_MARKER
    try:
        fd = os.open(marker, os.O_RDWR)
    except FileNotFoundError:  # never marked (owner died at birth) or being published
        try:
            return time.time() - directory.stat().st_mtime > UNMARKED_STALE_S and all(
                p.name == UNBORN_MARKER for p in directory.iterdir())
        except OSError:
            return False
    except OSError:
        return False
    try:
        if fcntl is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: its owner is alive
            return False
        try:  # the lock is ours: the owner is gone, if the marker is still the one we opened
            return os.stat(marker).st_ino == os.fstat(fd).st_ino
        except OSError:
            return False
    finally:
        os.close(fd)


def remove_stale(parent: Path) -> list[Path]:
    """Remove the staging directories in ``parent`` whose owner is gone; return them."""
    removed = []
    try:
        candidates = [p for p in Path(parent).iterdir() if p.name.startswith(".")
                      and p.name.endswith(SUFFIX)]
    except OSError:
        return removed
    for p in candidates:
        if p.is_dir() and not p.is_symlink() and owner_gone(p):
            remove_tree(p)
            removed.append(p)
    return removed


class StagedOutputs:
    """The outputs of one run, staged beside their final paths and published together.

    ``finals`` maps a name (the flag) to a final path. An output that ``nbprod score`` already
    staged for this process (:data:`ENV`) is written where it says and left to it to publish;
    the others get a staging directory of their own (stale ones in that directory are removed
    first). Use as a context manager: leaving it removes everything not published.
    """

    def __init__(self, finals: Mapping[str, str | os.PathLike[str] | None], *,
                 inherit: bool = False) -> None:
        handed = json.loads(os.environ.get(ENV) or "{}") if inherit else {}
        self.finals: dict[str, Path] = {}
        self.paths: dict[str, Path] = {}
        self._own: list[str] = []
        self._dirs: dict[Path, StagingDir] = {}
        try:
            for name, value in finals.items():
                if value is None:
                    continue
                final = Path(os.path.abspath(value))
                self.finals[name] = final
                if str(final) in handed:
                    self.paths[name] = Path(handed[str(final)])
                else:
                    self.paths[name] = self._directory(final.parent) / "out" / final.name
                    self._own.append(name)
        except BaseException:
            self.close()
            raise

    def _directory(self, parent: Path) -> Path:
        if parent not in self._dirs:
            remove_stale(parent)
            d = StagingDir.create(parent, "nbprod-run")
            (d.path / "out").mkdir()
            self._dirs[parent] = d
        return self._dirs[parent].path

    def path(self, name: str) -> Path:
        """Where to write the output ``name``."""
        return self.paths[name]

    def work_dir(self) -> Path:
        """A scratch directory inside the first staging directory (removed with it)."""
        first = next(iter(self._dirs.values()))
        work = first.path / "work"
        work.mkdir(exist_ok=True)
        return work

    def handed_to_kernel(self) -> dict[str, str]:
        """The environment that makes a scoring kernel write these outputs where they are staged."""
        return {ENV: json.dumps({str(self.finals[n]): str(self.paths[n]) for n in self._own})}

    def publish(self, order: Iterable[str] | None = None) -> None:
        """Rename this run's own staged outputs into place, in ``order`` (default: as given).

        Each is one rename; if one fails, those already renamed are removed again.
        """
        names = [n for n in (order or self._own) if n in self._own]
        done: list[Path] = []
        try:
            for name in names:
                os.replace(self.paths[name], self.finals[name])
                done.append(self.finals[name])
        except BaseException:
            for final in done:
                final.unlink(missing_ok=True)
            raise
        self._own = [n for n in self._own if n not in names]

    def close(self) -> None:
        for d in self._dirs.values():
            d.remove()
        self._dirs.clear()

    def __enter__(self) -> StagedOutputs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
