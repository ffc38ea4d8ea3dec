"""Running a command in a real pseudo-terminal (its stdout, stderr and stdin a pty of a chosen
size, as in a terminal window), for the screens that draw differently on a terminal
(``kstream top``)."""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from dataclasses import dataclass

#: ANSI escape sequences (colours, cursor moves) and the carriage returns of a redraw.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>]|\r")


def plain(text: str) -> str:
    """``text`` without ANSI escape sequences and carriage returns."""
    return _ESCAPES.sub("", text)


@dataclass
class PtyRun:
    """What a command wrote to its terminal (``raw``, escapes kept) and its exit code."""

    raw: str
    returncode: int

    @property
    def text(self) -> str:
        """The output without escape sequences (:func:`plain`)."""
        return plain(self.raw)


def run_in_pty(
    argv: list[str],
    *,
    cols: int = 220,
    rows: int = 200,
    timeout_s: float = 120.0,
    interrupt_when: Callable[[str], bool] | None = None,
    env: dict[str, str] | None = None,
) -> PtyRun:
    """Run ``argv`` with a ``cols`` x ``rows`` pseudo-terminal as stdin, stdout and stderr
    (``TERM=xterm-256color``) until it exits; with ``interrupt_when``, send it SIGINT (what
    Ctrl-C does) once that predicate holds for its output so far (escapes removed).

    Raises:
        AssertionError: it did not exit within ``timeout_s`` seconds (it is killed).
    """
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    full_env = {**os.environ, **(env or {}), "TERM": "xterm-256color"}
    full_env.update(COLUMNS=str(cols), LINES=str(rows))
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=full_env)
    os.close(slave)
    chunks: list[bytes] = []
    deadline, interrupted = time.monotonic() + timeout_s, False
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            data = _read(master) if ready else b""
            if ready and not data:
                break  # every writer closed the terminal: the command ended
            chunks.append(data)
            if interrupt_when and not interrupted:
                interrupted = interrupt_when(plain(b"".join(chunks).decode(errors="replace")))
                if interrupted:
                    proc.send_signal(signal.SIGINT)
        else:
            proc.kill()
            raise AssertionError(f"{argv} still running after {timeout_s} s")
        return PtyRun(b"".join(chunks).decode(errors="replace"), proc.wait(30))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


def _read(fd: int) -> bytes:
    """What the terminal holds; empty once every writer closed it (EIO on Linux)."""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""
