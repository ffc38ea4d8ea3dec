"""Apache Kafka 4.x as a local single-node KRaft broker, started from Maven Central jars.

This is the broker the integration, chaos and benchmark suites prove kstream against (DESIGN.md
section 9): it filters aborted records for ``read_committed``, keeps the last stable offset
moving, fences zombie producers by epoch and consumer generation, expires open transactions
after ``transaction.timeout.ms``, and keeps its data across a restart.

One process is both controller and broker (``process.roles=broker,controller``). The data dir
holds the log segments (``kafka-logs/``), the generated ``server.properties``, the log4j2
configuration and ``kstream-broker.properties`` (the controller port, kept so a restart finds
its quorum where it left it). The storage is formatted once per data dir with a cluster id
generated then; a restart on the same data dir reuses it.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path

from kstream.errors import BrokerError
from kstream.tools.kafka_jars import kafka_classpath, kafka_version
from kstream.tools.process import HOST, BrokerProcess, free_port, port_is_free

#: Broker settings fit for one node; every one of them differs from Kafka's default on purpose.
SINGLE_NODE_SETTINGS: dict[str, str] = {
    # internal topics on one broker: replication factor and min ISR 1
    "offsets.topic.replication.factor": "1",
    "transaction.state.log.replication.factor": "1",
    "transaction.state.log.min.isr": "1",
    "share.coordinator.state.topic.replication.factor": "1",
    "share.coordinator.state.topic.min.isr": "1",
    # fewer coordinator partitions: a first group join or transaction creates them (default 50)
    "offsets.topic.num.partitions": "8",
    "transaction.state.log.num.partitions": "8",
    # a restart after SIGKILL re-registers once the old incarnation's session expired (9 s)
    "broker.heartbeat.interval.ms": "500",
    "broker.session.timeout.ms": "3000",
    # a new group's first generation waits 100 ms for more members instead of 3 s: a single
    # member starts almost at once, and members started together (kstream run --processes)
    # share the first generation instead of one taking every partition until the next
    # heartbeat shows it the others' joins
    "group.initial.rebalance.delay.ms": "100",
    # transactions past their timeout are aborted within 1 s (default 10 s)
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": "1000",
    "num.partitions": "1",
}

#: JVM options: a modest heap (the machine runs the tests and kstream beside it).
JVM_OPTIONS = [
    "-Xms256m",
    "-Xmx1g",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-Djava.awt.headless=true",
]

_LOG4J2 = """\
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.state.name = state.change.logger
logger.state.level = warn
logger.cleaner.name = kafka.log.LogCleaner
logger.cleaner.level = warn
"""


def java_binary() -> str:
    """Path of ``java`` (``$JAVA_HOME/bin/java`` first, then PATH).

    Raises:
        BrokerError: no Java runtime is found.
    """
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    found = shutil.which("java")
    if found is None:
        raise BrokerError(
            "Apache Kafka needs Java 17 or newer, but `java` is not on PATH; install a JDK "
            "(e.g. apt-get install openjdk-17-jre-headless) or use --engine tansu"
        )
    return found


def new_cluster_id() -> str:
    """A random Kafka cluster id: 16 bytes, URL-safe base64 without padding (Kafka ``Uuid``),
    never starting with ``-`` (Kafka's ``Uuid.randomUuid`` rule too: ``kafka-storage format -t``
    would take such an id for an option; 1 id in 64 did)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


def _read_properties(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def _write_properties(path: Path, values: dict[str, str]) -> None:
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))


class KafkaBroker(BrokerProcess):
    """A single-node Apache Kafka broker (KRaft, combined controller and broker) on 127.0.0.1.

    Args:
        log_path: file that receives the broker's log (appended); ``None``: a temp file.
        data_dir: folder of its storage, formatted on first use and kept across :meth:`stop`,
            :meth:`kill` and :meth:`restart`. ``None``: a temporary folder, removed by
            :meth:`stop` (not by :meth:`kill`, so a killed broker can :meth:`restart`).
        settings: broker settings on top of :data:`SINGLE_NODE_SETTINGS`.

    Stopped with SIGTERM (Kafka's controlled shutdown, a few seconds), SIGKILL after 30 s.
    """

    engine = "Apache Kafka"
    start_timeout_s = 90.0
    stop_grace_s = 30.0
    stop_signal = signal.SIGTERM

    def __init__(
        self,
        log_path: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        super().__init__(log_path)
        self._temporary = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.settings = dict(settings or {})

    def describe(self) -> str:
        where = "temporary data" if self._temporary else f"data in {self.data_dir}"
        return f"Apache Kafka {kafka_version()}, KRaft single node, {where}"

    def _command(self, port: int) -> tuple[list[str], dict[str, str]]:
        java = java_binary()
        libs = kafka_classpath()
        data = self._data_dir()
        config = self._write_config(data, port)
        classpath = f"{libs}{os.sep}*"
        if not (data / "kafka-logs" / "meta.properties").is_file():
            self._format(java, classpath, config)
        cmd = [
            java,
            *JVM_OPTIONS,
            f"-Dlog4j2.configurationFile={data / 'log4j2.properties'}",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(config),
        ]
        env = dict(os.environ)
        env.pop("KAFKA_OPTS", None)
        return cmd, env

    def _data_dir(self) -> Path:
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix="kstream-kafka-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "log4j2.properties").write_text(_LOG4J2)
        return self.data_dir

    def _controller_port(self, data: Path) -> int:
        """The controller port used before in this data dir when still free, else a new one."""
        state_file = data / "kstream-broker.properties"
        state = _read_properties(state_file)
        previous = int(state.get("controller.port", "0"))
        if previous and port_is_free(previous):
            return previous
        port = free_port()
        _write_properties(state_file, {"controller.port": str(port)})
        return port

    def _write_config(self, data: Path, port: int) -> Path:
        controller = self._controller_port(data)
        values = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{controller}",
            "listeners": f"PLAINTEXT://{HOST}:{port},CONTROLLER://{HOST}:{controller}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(data / "kafka-logs"),
            **SINGLE_NODE_SETTINGS,
            **self.settings,
        }
        path = data / "server.properties"
        _write_properties(path, values)
        return path

    def _format(self, java: str, classpath: str, config: Path) -> None:
        """Format the KRaft storage once, with a new cluster id (``kafka-storage format``)."""
        cmd = [
            java, "-cp", classpath, "kafka.tools.StorageTool", "format",
            "-t", new_cluster_id(), "-c", str(config), "--ignore-formatted",
        ]  # fmt: skip
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            raise BrokerError(f"cannot format Kafka storage in {self.data_dir}: {exc}") from exc
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).strip().splitlines()[-1:]
            raise BrokerError(f"cannot format Kafka storage in {self.data_dir}: {' '.join(tail)}")

    def cluster_id(self) -> str | None:
        """The cluster id stored in the data dir, ``None`` before the first start."""
        if self.data_dir is None:
            return None
        return _read_properties(self.data_dir / "kafka-logs" / "meta.properties").get("cluster.id")

    def stop(self, grace_s: float | None = None) -> None:
        """Stop the broker (controlled shutdown) and remove a temporary data dir."""
        super().stop(grace_s)
        if self._temporary and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.data_dir = None
