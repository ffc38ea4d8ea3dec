"""kstream.tools.kafka_broker.KafkaBroker and ``kstream broker --engine kafka``: a single-node
Apache Kafka (KRaft) from Maven Central jars, formatted once per data dir, kept across restarts."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from kstream.io.kafka import Admin, TopicConfig
from kstream.tools.kafka_broker import KafkaBroker
from kstream.tools.process import free_port

pytestmark = [pytest.mark.integration, pytest.mark.kafka_only]


def _produce(bootstrap: str, topic: str, n: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for i in range(n):
        producer.produce(topic, str(i).encode())
    assert producer.flush(30) == 0


def _count(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "count"})
    try:
        _low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
        return int(high)
    finally:
        consumer.close()


def test_data_survives_sigkill_and_restart(tmp_path: Path) -> None:
    broker = KafkaBroker(log_path=tmp_path / "kafka.log", data_dir=tmp_path / "data").start()
    try:
        cluster = broker.cluster_id()
        assert cluster and len(cluster) == 22
        Admin(broker.bootstrap).ensure_topics([TopicConfig("kept", 1)])
        _produce(broker.bootstrap, "kept", 100)
        port = broker.port
        broker.kill()
        assert not broker.is_running()
        broker.restart()
        assert broker.port == port and broker.cluster_id() == cluster
        assert Admin(broker.bootstrap).partitions("kept") == 1
        assert _count(broker.bootstrap, "kept") == 100
    finally:
        broker.stop()
    assert (tmp_path / "data" / "kafka-logs" / "meta.properties").is_file()  # kept on stop


def test_temporary_data_dir_is_removed_on_stop(tmp_path: Path) -> None:
    broker = KafkaBroker(log_path=tmp_path / "kafka.log").start()
    data_dir = broker.data_dir
    assert data_dir is not None and data_dir.is_dir()
    broker.stop()
    assert not data_dir.exists()
    assert "Kafka Server started" in (tmp_path / "kafka.log").read_text()


def _cli(port: int, data_dir: Path) -> subprocess.Popen[str]:
    code = "from kstream_cli.broker_cmd import broker; broker()"
    argv = [sys.executable, "-c", code, "--engine", "kafka", "--port", str(port)]
    return subprocess.Popen(
        [*argv, "--data-dir", str(data_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_prints_the_address_and_stops_cleanly(sig: signal.Signals, tmp_path: Path) -> None:
    port = free_port()
    proc = _cli(port, tmp_path / "data")
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(f"kstream broker listening on 127.0.0.1:{port} (Apache Kafka "), (
            first
        )
        assert f"data in {tmp_path / 'data'}; Ctrl-C to stop)" in first
        assert (
            proc.stdout.readline().strip() == f"export KSTREAM_BOOTSTRAP_SERVERS=127.0.0.1:{port}"
        )
        Admin(f"127.0.0.1:{port}").ensure_topics([TopicConfig("again", 2)])
        started = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        assert time.monotonic() - started < 40
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    # the same data dir again: the topic is still there
    again = _cli(port, tmp_path / "data")
    try:
        assert again.stdout is not None
        assert "listening on" in again.stdout.readline()
        assert Admin(f"127.0.0.1:{port}").partitions("again") == 2
    finally:
        again.send_signal(signal.SIGTERM)
        again.communicate(timeout=60)


def test_cli_tansu_refuses_a_data_dir(tmp_path: Path) -> None:
    code = "from kstream_cli.broker_cmd import broker; broker()"
    proc = subprocess.run(
        [sys.executable, "-c", code, "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == "error: --data-dir needs --engine kafka (Tansu keeps its data in memory)"
    )
