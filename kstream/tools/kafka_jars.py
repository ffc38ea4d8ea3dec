"""Apache Kafka's jars from Maven Central, resolved once with Maven and cached.

The pom ``kafka-broker.pom.xml`` beside this module pins ``org.apache.kafka:kafka_2.13`` and a
log4j2 binding. :func:`kafka_classpath` returns the cached jars' folder, resolving it first
when needed (``mvn dependency:copy-dependencies``, about 10 s with a warm Maven repository).
The cache lives in ``$KSTREAM_CACHE_DIR`` (default ``~/.cache/kstream``), in a folder named
after the Kafka version and the pom's hash, written under a temporary name and renamed when
complete, so an interrupted resolution is never mistaken for a finished one.

``python -m kstream.tools.kafka_jars`` resolves and prints the folder (``make`` runs it).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from kstream.errors import BrokerError

POM = Path(__file__).with_name("kafka-broker.pom.xml")
#: How long one Maven resolution may take (seconds).
RESOLVE_TIMEOUT_S = 600


def kafka_version() -> str:
    """The pinned Kafka version, read from the pom (e.g. ``"4.1.1"``)."""
    match = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", POM.read_text())
    if match is None:
        raise BrokerError(f"{POM}: no <kafka.version> property")
    return match.group(1).strip()


def cache_root() -> Path:
    """``$KSTREAM_CACHE_DIR``, else ``$XDG_CACHE_HOME/kstream``, else ``~/.cache/kstream``."""
    explicit = os.environ.get("KSTREAM_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "kstream"


def libs_dir() -> Path:
    """Where the jars of the pinned pom live once resolved (may not exist yet)."""
    digest = hashlib.sha256(POM.read_bytes()).hexdigest()[:12]
    return cache_root() / f"kafka-{kafka_version()}-{digest}" / "libs"


def kafka_classpath() -> Path:
    """The folder holding every jar the broker needs, resolving it with Maven if not cached.

    ``$KSTREAM_KAFKA_LIBS`` names a ready folder of jars instead (no Maven needed).

    Raises:
        BrokerError: ``mvn`` is missing or the resolution fails (the message says why).
    """
    explicit = os.environ.get("KSTREAM_KAFKA_LIBS")
    if explicit:
        folder = Path(explicit)
        if not any(folder.glob("kafka_2.13-*.jar")):
            raise BrokerError(f"KSTREAM_KAFKA_LIBS={folder} holds no kafka_2.13-*.jar")
        return folder
    target = libs_dir()
    if target.is_dir():
        return target
    _resolve_into(target)
    return target


def _resolve_into(target: Path) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Apache Kafka's jars are resolved with Maven, but `mvn` is not on PATH; "
            "install it (e.g. apt-get install maven) or use --engine tansu"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".libs-", dir=target.parent))
    cmd = [
        mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={staging}", "-DincludeScope=runtime",
    ]  # fmt: skip
    try:
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=RESOLVE_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
            raise BrokerError(
                f"mvn could not resolve Apache Kafka {kafka_version()} from Maven Central "
                f"(exit {done.returncode}): {' | '.join(tail)}"
            )
        staging.rename(target)
    except subprocess.TimeoutExpired as exc:
        raise BrokerError(f"mvn did not resolve Apache Kafka within {RESOLVE_TIMEOUT_S} s") from exc
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":
    print(kafka_classpath())
