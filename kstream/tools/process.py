"""The life cycle of a local broker child process, shared by Tansu and Apache Kafka.

A :class:`BrokerProcess` starts a broker as a child process in its own session on
``127.0.0.1`` (so a terminal's Ctrl-C reaches only the Python parent, which then stops it),
waits until the broker answers a metadata request, and stops it by PID. Subclasses say how to
launch the process (:meth:`BrokerProcess._command`) and how it is stopped gently. The fault
operations (:meth:`kill`, :meth:`pause`, :meth:`resume`, :meth:`restart`) serve the fault and
chaos tests.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from kstream.errors import BrokerError
from kstream.io.kafka import Admin

HOST = "127.0.0.1"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that is free right now (the OS picks it; racy by nature)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = HOST) -> bool:
    """True when a listening socket could bind ``host:port`` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


class BrokerProcess:
    """A broker child process on ``127.0.0.1``; subclasses give the command line.

    Use as a context manager (``with Broker().start() as broker: ...``) or call :meth:`start`
    and :meth:`stop`.

    Args:
        log_path: file that receives the broker's stdout and stderr (appended). ``None`` keeps
            the output in an anonymous temporary file, used only to explain a failed start.
    """

    #: Human-readable engine name, e.g. ``"Apache Kafka 4.1.1"``.
    engine = "broker"
    #: How long :meth:`start` waits for the first metadata answer (seconds).
    start_timeout_s = 15.0
    #: How long :meth:`stop` waits after the stop signal before sending SIGKILL (seconds).
    stop_grace_s = 5.0
    #: The signal :meth:`stop` sends first.
    stop_signal = signal.SIGINT

    def __init__(self, log_path: str | os.PathLike[str] | None = None) -> None:
        self.log_path = Path(log_path) if log_path is not None else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None

    # -- what subclasses provide ------------------------------------------------------------

    def _command(self, port: int) -> tuple[list[str], dict[str, str]]:
        """The command line and environment that start the broker on ``port``."""
        raise NotImplementedError

    def describe(self) -> str:
        """One phrase for humans: engine, version and where the data lives."""
        return self.engine

    # -- properties ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """TCP port the broker listens on. Raises :class:`BrokerError` before :meth:`start`."""
        if self._port is None:
            raise BrokerError("local broker not started")
        return self._port

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers string ``"127.0.0.1:PORT"``."""
        return f"{HOST}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the broker process, ``None`` when not started or stopped."""
        return self._proc.pid if self._proc is not None else None

    def returncode(self) -> int | None:
        """Exit status once the process has ended, ``None`` while it runs (or if never started)."""
        return self._proc.poll() if self._proc is not None else None

    def is_running(self) -> bool:
        """True while the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    # -- life cycle ---------------------------------------------------------------------------

    def start(self, port: int | None = None) -> BrokerProcess:
        """Launch the broker and wait until it answers a metadata request.

        Args:
            port: TCP port on 127.0.0.1; ``None`` picks a free one.

        Returns:
            ``self``, for chaining.

        Raises:
            BrokerError: already started, the port is taken, the program is missing, the
                process exited during start-up, or it did not answer within
                :attr:`start_timeout_s` seconds.
        """
        if self._proc is not None:
            raise BrokerError(f"local broker already started (pid {self._proc.pid})")
        port = free_port() if port is None else port
        if not port_is_free(port):
            raise BrokerError(f"port {port} on {HOST} is already in use")
        self._port = port
        self._launch(port)
        try:
            self._wait_ready(self.start_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, port: int) -> None:
        cmd, env = self._command(port)
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "a+b")  # noqa: SIM115 - closed in stop()
        else:
            self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        try:
            self._proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        except OSError as exc:
            self._close_log()
            raise BrokerError(f"cannot start {cmd[0]}: {exc}") from exc

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self._raise_if_exited("during start-up")
            try:
                Admin(self.bootstrap, timeout_s=1.0).topics()
            except BrokerError:
                if time.monotonic() >= deadline:
                    raise BrokerError(
                        f"local broker on {self.bootstrap} did not answer within {timeout_s:.0f} s"
                    ) from None
                time.sleep(0.1)
                continue
            # Another process might have answered on the port; make sure ours is still alive.
            self._raise_if_exited("during start-up")
            return

    def _raise_if_exited(self, when: str) -> None:
        code = self.returncode()
        if code is None:
            return
        if code < 0:
            try:
                how = f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with status {code}"
        cause = self.log_tail(errors_only=True)
        detail = f": {cause}" if cause else ""
        raise BrokerError(f"broker process {how} {when}{detail}")

    def log_tail(self, max_chars: int = 300, errors_only: bool = False) -> str:
        """The most telling line of the broker's recent output, or ``""``.

        That is the last ``ERROR`` line when there is one (both brokers log the cause of a
        failed start there), else the last line (``""`` with ``errors_only``); ANSI colours
        removed, at most ``max_chars`` characters.
        """
        if self._log is None or self._log.closed:
            return ""
        try:
            self._log.flush()
            size = self._log.seek(0, os.SEEK_END)
            self._log.seek(max(0, size - 8192))
            text = self._log.read().decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [_ANSI.sub("", line).strip() for line in text.splitlines()]
        lines = [line for line in lines if line]
        errors = [line for line in lines if " ERROR " in f" {line} " or "panicked" in line]
        if errors:
            return errors[-1][-max_chars:]
        return "" if errors_only or not lines else lines[-1][-max_chars:]

    def check_alive(self) -> None:
        """Raise :class:`BrokerError` (with the last log line) if the broker process has died."""
        self._raise_if_exited("unexpectedly")

    def stop(self, grace_s: float | None = None) -> None:
        """Stop the broker: :attr:`stop_signal`, then SIGKILL after ``grace_s`` seconds
        (default :attr:`stop_grace_s`). Idempotent."""
        grace_s = self.stop_grace_s if grace_s is None else grace_s
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGCONT)  # a paused broker cannot handle the signal
                proc.send_signal(self.stop_signal)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        elif proc is not None:
            proc.wait()
        self._close_log()

    # -- faults (tests) -----------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL the broker and reap it; the port and, for Kafka, the data dir are kept, so
        :meth:`restart` brings the same broker back. Raises :class:`BrokerError` when not
        running."""
        if self._proc is None or self._proc.poll() is not None:
            raise BrokerError("local broker is not running")
        self._proc.kill()
        self._proc.wait()
        self._proc = None
        self._close_log()

    def restart(self) -> BrokerProcess:
        """Start the broker again on the same port after :meth:`kill` or :meth:`stop`.

        Raises:
            BrokerError: never started, still running, or the start fails (see :meth:`start`).
        """
        if self._port is None:
            raise BrokerError("local broker never started")
        if self.is_running():
            raise BrokerError(f"local broker still running (pid {self.pid})")
        port = self._port
        deadline = time.monotonic() + 10.0
        while not port_is_free(port) and time.monotonic() < deadline:
            time.sleep(0.1)  # the old process's listening socket may linger a moment
        return self.start(port)

    def pause(self) -> None:
        """SIGSTOP the broker: it keeps its connections but answers nothing until
        :meth:`resume`."""
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT a paused broker."""
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGCONT)

    # -- plumbing -----------------------------------------------------------------------------

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def __enter__(self) -> BrokerProcess:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = f"pid={self.pid}" if self.is_running() else "stopped"
        return f"{type(self).__name__}(port={self._port}, {state})"

    def __del__(self) -> None:
        # Last resort so an abandoned broker does not outlive the interpreter's objects.
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(Exception):
                proc.kill()
