"""A pseudo-terminal for the tests of what nbprod shows a person at a terminal (progress bars)."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import termios
import threading
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def pseudo_terminal(columns: int = 120) -> Iterator[tuple[int, bytearray]]:
    """A pseudo-terminal ``columns`` wide: yields the terminal side's file descriptor (give it to
    a process as its stderr, or ``open(os.dup(fd))``; this closes it when the block ends) and
    the bytes written to it, complete once the block ends and every copy is closed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    got = bytearray()

    def pump() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every writer has closed the terminal
                return
            if not chunk:
                return
            got.extend(chunk)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        yield slave, got
    finally:
        os.close(slave)
        reader.join(timeout=30)
        os.close(master)
