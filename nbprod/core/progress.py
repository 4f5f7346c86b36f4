"""Progress of long work on a terminal: rows, rows per second and time left, through tqdm.

A bar is shown only when asked, or, by default, when standard error is a terminal: nothing goes
to logs, pipes or a papermill kernel. :func:`bar` returns an object with ``update(n)``,
``close()`` and the ``total``; when no bar is shown it does nothing. A :class:`Reporter` also
hands the count to another process through a file (the scoring kernel of ``nbprod score``
writes it, the command draws the bar: :func:`follow`).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path
from typing import Any


def wanted(enabled: bool | None = None) -> bool:
    """Whether to draw: ``enabled`` when given, else whether stderr is a terminal."""
    if enabled is not None:
        return bool(enabled)
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class _Quiet:
    total: int | None = None

    def update(self, n: int = 1) -> None:
        pass

    def set_total(self, total: int | None) -> None:
        self.total = total

    def note(self, text: str) -> None:
        """Show ``text`` after the count (e.g. the step under way)."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Bar(_Quiet):
    def __init__(self, total: int | None, desc: str, unit: str) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "rows",
                         file=sys.stderr, dynamic_ncols=True, leave=False, mininterval=0.2)
        self.total = total

    def update(self, n: int = 1) -> None:
        self._bar.update(n)

    def set_total(self, total: int | None) -> None:
        self.total = total
        self._bar.total = total
        self._bar.refresh()

    def note(self, text: str) -> None:
        self._bar.set_postfix_str(text)

    def close(self) -> None:
        self._bar.close()


def bar(total: int | None = None, *, desc: str, unit: str = "rows",
        enabled: bool | None = None) -> Any:
    """A progress bar when :func:`wanted`, else a silent stand-in with the same methods."""
    if not wanted(enabled):
        return _Quiet()
    try:
        return _Bar(total, desc, unit)
    except ImportError:  # tqdm is a dependency; a broken install must not cost the run
        return _Quiet()


def steps(names: list[str], *, desc: str, enabled: bool | None = None) -> Any:
    """A bar over named steps (``update`` after each), e.g. the steps of packaging; ``note``
    names the step under way."""
    b = bar(len(names), desc=desc, unit="step", enabled=enabled)
    return b


class Reporter:
    """Counts rows, drawing a bar here and/or writing ``done total`` lines to ``path``."""

    def __init__(self, total: int | None, *, desc: str, enabled: bool | None = None,
                 path: str | os.PathLike[str] | None = None) -> None:
        self.done = 0
        self.total = total
        self._bar = bar(total, desc=desc, enabled=enabled)
        self._path = Path(path) if path else None
        self._write()

    def update(self, n: int) -> None:
        self.done += n
        if self.total is not None and self.done > self.total:
            self.total = None  # an estimate ran short: show the count alone
            self._bar.set_total(None)
        self._bar.update(n)
        self._write()

    def _write(self) -> None:
        if self._path is None:
            return
        try:
            with open(self._path, "a", encoding="utf-8") as fh:
                fh.write(f"{self.done} {'' if self.total is None else self.total}\n")
        except OSError:
            self._path = None  # progress is never worth failing a run

    def close(self) -> None:
        self._bar.close()

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def follow(path: Path, *, desc: str, enabled: bool | None = None) -> Any:
    """Draw the counts another process writes to ``path`` (see :class:`Reporter`) until the
    returned handle's ``stop()``."""
    return _Follower(path, desc, enabled)


class _Follower:
    def __init__(self, path: Path, desc: str, enabled: bool | None) -> None:
        self._path = path
        self._desc = desc
        self._stop = threading.Event()
        self._thread = None
        if wanted(enabled):
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        shown = None
        done = 0
        offset = 0
        while True:
            stopping = self._stop.wait(0.2)
            try:
                with open(self._path, encoding="utf-8") as fh:
                    fh.seek(offset)
                    text = fh.read()
                    offset = fh.tell()
            except OSError:
                text = ""
            for line in text.splitlines():
                parts = line.split(" ")
                try:
                    now = int(parts[0])
                    total = int(parts[1]) if len(parts) > 1 and parts[1] else None
                except ValueError:
                    continue
                if shown is None:
                    shown = bar(total, desc=self._desc, enabled=True)
                elif total != shown.total:
                    shown.set_total(total)
                shown.update(now - done)
                done = now
            if stopping:
                break
        if shown is not None:
            shown.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
