"""The peer engines' own virtualenvs and jars, created on first use and then reused.

kstream's venv holds kstream only: the peers' pins must not move its packages (Quix Streams 3.28
pins ``confluent-kafka<2.13``; PyFlink brings apache-beam, pyarrow and pandas). Each peer gets a
virtualenv of its own under ``~/.cache/kstream/bench-venvs/`` (the cache root of
:mod:`kstream.tools.kafka_jars`, outside the repository; ``$BENCH_VENVS`` moves it), made with
``python -m venv`` from the interpreter kstream runs on and filled with ``pip install`` of the
pinned requirements. A venv is ready once its stamp file (``.bench-peer``) holds exactly those
requirements; a venv without it (an interrupted install, or other pins) is removed and made
again. The peer's job module (``bench/quix_jobs.py``, ``bench/flink_jobs.py``) is then run by
path with that venv's python, so it cannot import kstream.

Flink reads Kafka through the Flink SQL Kafka connector, a single shaded jar resolved from Maven
Central with ``mvn dependency:copy`` into ``~/.cache/kstream/flink-connector/``; the conformance
suite adds Flink's Avro format jar (``flink-sql-avro``) the same way (:func:`flink_jar`).

``python -m bench.peers [quix|flink ...]`` prepares them ahead of a benchmark.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from kstream.tools.kafka_jars import cache_root

QUIX_VERSION = "3.28.1"
FLINK_VERSION = "2.2.1"
#: The connector release built for FLINK_VERSION's minor line (Kafka clients 4.2 shaded inside).
FLINK_CONNECTOR = "org.apache.flink:flink-sql-connector-kafka:5.0.0-2.2"
#: Flink's Avro format ('format' = 'avro'), Avro shaded inside. Maven Central has no 2.2.x
#: release of it (its versions go from 2.1.0 to 2.3.0): the 2.1.0 jar runs on FLINK_VERSION.
FLINK_AVRO = "org.apache.flink:flink-sql-avro:2.1.0"
#: Seconds one ``pip install`` or ``mvn`` resolution may take.
INSTALL_TIMEOUT_S = 1800
STAMP = ".bench-peer"


class PeerError(RuntimeError):
    """A peer's venv or jar could not be prepared (the message says which command failed)."""


@dataclass(frozen=True)
class Peer:
    """A peer engine: its venv folder name and its pinned pip requirements."""

    name: str
    requirements: tuple[str, ...]


PEERS = {
    "quix": Peer("quix", (f"quixstreams=={QUIX_VERSION}",)),
    "flink": Peer("flink", (f"apache-flink=={FLINK_VERSION}",)),
}


def venvs_root() -> Path:
    """``$BENCH_VENVS``, else ``bench-venvs`` in kstream's cache (``~/.cache/kstream``)."""
    explicit = os.environ.get("BENCH_VENVS")
    return Path(explicit) if explicit else cache_root() / "bench-venvs"


def _run(cmd: list[str], log: Path, what: str) -> None:
    """Run ``cmd`` with its output appended to ``log``.

    Raises:
        PeerError: it failed, or ran past :data:`INSTALL_TIMEOUT_S`.
    """
    with open(log, "ab") as handle:
        try:
            code = subprocess.call(
                cmd, stdout=handle, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PeerError(f"{what}: {exc} (log {log})") from exc
    if code != 0:
        tail = " | ".join(log.read_text(errors="replace").strip().splitlines()[-4:])
        raise PeerError(f"{what} failed (exit {code}, log {log}): {tail}")


def peer_python(name: str, say: Callable[[str], None] | None = print) -> Path:
    """The python of peer ``name``'s venv, creating and filling the venv first if needed
    (a few seconds for Quix, 1-3 minutes for Flink on first use).

    Raises:
        KeyError: unknown peer.
        PeerError: ``venv`` or ``pip install`` failed.
    """
    peer = PEERS[name]
    folder = venvs_root() / peer.name
    python = folder / "bin" / "python"
    wanted = "\n".join(peer.requirements) + "\n"
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{peer.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = folder / STAMP
        if stamp.is_file() and stamp.read_text() == wanted and python.exists():
            return python
        if say is not None:
            say(f"creating {folder} ({', '.join(peer.requirements)})")
        shutil.rmtree(folder, ignore_errors=True)
        log = folder.parent / f"{peer.name}-install.log"
        log.write_text("")
        _run([sys.executable, "-m", "venv", str(folder)], log, f"python -m venv {folder}")
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        _run([*pip, *peer.requirements], log, f"pip install {' '.join(peer.requirements)}")
        stamp.write_text(wanted)
    return python


def flink_connector_jar(say: Callable[[str], None] | None = print) -> Path:
    """The Flink SQL Kafka connector jar (:data:`FLINK_CONNECTOR`), as :func:`flink_jar`.

    Raises:
        PeerError: as :func:`flink_jar`.
    """
    return flink_jar(FLINK_CONNECTOR, say)


def flink_jar(artifact: str, say: Callable[[str], None] | None = print) -> Path:
    """The jar of Maven ``artifact`` (``group:name:version``, e.g. :data:`FLINK_CONNECTOR`,
    :data:`FLINK_AVRO`), resolved from Maven Central once and cached in
    ``~/.cache/kstream/flink-connector/``.

    Raises:
        PeerError: ``mvn`` is missing or could not resolve the artifact.
    """
    _group, name, version = artifact.split(":")
    folder = cache_root() / "flink-connector"
    jar = folder / f"{name}-{version}.jar"
    if jar.is_file():
        return jar
    mvn = shutil.which("mvn")
    if mvn is None:
        raise PeerError(f"Flink's jar {artifact} is resolved with Maven, but `mvn` is not on PATH")
    if say is not None:
        say(f"resolving {artifact} into {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".jar-", dir=folder))
    try:
        cmd = [
            mvn, "-q", "-B", "dependency:copy", f"-Dartifact={artifact}",
            f"-DoutputDirectory={staging}",
        ]  # fmt: skip
        _run(cmd, folder / "mvn.log", f"mvn dependency:copy {artifact}")
        (staging / jar.name).rename(jar)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return jar


def peer_versions() -> dict[str, str]:
    """The pinned version of every peer package and jar (for results.json)."""
    return {
        "quixstreams": QUIX_VERSION,
        "apache-flink": FLINK_VERSION,
        "flink-sql-connector-kafka": FLINK_CONNECTOR.rsplit(":", 1)[1],
        "flink-sql-avro": FLINK_AVRO.rsplit(":", 1)[1],
    }


def main(argv: list[str]) -> int:
    """Prepare the named peers (default: all); print where they are."""
    names = argv or list(PEERS)
    try:
        for name in names:
            print(f"{name}: {peer_python(name)}")
        if "flink" in names:
            print(f"flink connector: {flink_connector_jar()}")
            print(f"flink avro format: {flink_jar(FLINK_AVRO)}")
    except (KeyError, PeerError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
