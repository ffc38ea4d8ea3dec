"""``SET 'table.exec.state.ttl'`` on a real broker: an unbounded SQL GROUP BY job counts a key's
first burst of records, and a second burst sent once the key has been idle for longer than the
ttl counts from 1 again (Flink's idle state retention, in processing time).

No sleep decides the outcome: the test waits for the first burst's last count in the sink (the
job stamped the key before it wrote that count), then until its own clock is past that moment
plus the ttl, so when the job reads the second burst the key's state is expired whatever the
sweep's timing; every wait is bounded by a timeout.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from clikit import LoggedRun, unique
from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

pytestmark = pytest.mark.integration

TTL_S = 2
WAIT_S = 120
JOB = """SET 'pipeline.name' = '{name}';
SET 'table.exec.state.ttl' = '{ttl} s';
SET 'execution.checkpointing.interval' = '500 ms';
CREATE TABLE events (k STRING, at_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(at_ms, 3), WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'kafka', 'topic' = '{source}', 'format' = 'json',
        'scan.startup.mode' = 'earliest-offset');
CREATE TABLE counts (k STRING, n BIGINT, PRIMARY KEY (k) NOT ENFORCED)
WITH ('connector' = 'upsert-kafka', 'topic' = '{sink}', 'key.format' = 'json',
      'value.format' = 'json');
INSERT INTO counts SELECT k, COUNT(*) FROM events GROUP BY k;
"""


def send(broker: str, topic: str, keys: list[str]) -> None:
    producer = Producer({"bootstrap.servers": broker})
    for i, k in enumerate(keys):
        producer.produce(topic, orjson.dumps({"k": k, "at_ms": 1_000 + i}), key=k.encode())
    assert producer.flush(30) == 0


class Sink:
    """The sink's committed records, read as they come."""

    def __init__(self, broker: str, topic: str) -> None:
        self.consumer = Consumer({
            "bootstrap.servers": broker, "group.id": unique("ttl-reader"),
            "isolation.level": "read_committed", "enable.auto.commit": False,
        })  # fmt: skip
        self.topic = topic
        self.values: list[dict[str, Any]] = []
        self.assigned = False

    def wait_for(self, count: int, timeout_s: float = WAIT_S) -> list[dict[str, Any]]:
        """Read until ``count`` values arrived or ``timeout_s`` passed; returns them all."""
        deadline = time.monotonic() + timeout_s
        while len(self.values) < count and time.monotonic() < deadline:
            if not self.assigned:  # the job creates the sink topic
                meta = self.consumer.list_topics(self.topic, timeout=5).topics[self.topic]
                if meta.error or not meta.partitions:
                    time.sleep(0.2)
                    continue
                parts = [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in meta.partitions]
                self.consumer.assign(parts)
                self.assigned = True
            for msg in self.consumer.consume(100, 0.5):
                if msg.error() is None and msg.value():
                    self.values.append(orjson.loads(msg.value()))
        return self.values

    def close(self) -> None:
        self.consumer.close()


def test_a_key_idle_longer_than_the_ttl_counts_from_one_again(broker: str, tmp_path: Path) -> None:
    source, sink_topic, name = unique("ttl-events"), unique("ttl-counts"), unique("ttl-job")
    admin = AdminClient({"bootstrap.servers": broker})
    for future in admin.create_topics([NewTopic(source, num_partitions=1)]).values():
        future.result(30)
    job_path = tmp_path / "job.sql"
    job_path.write_text(JOB.format(name=name, ttl=TTL_S, source=source, sink=sink_topic))
    send(broker, source, ["a", "a", "a"])
    job = LoggedRun(
        tmp_path / "job.log", str(job_path), "--state-dir", str(tmp_path / "state"),
        "--bootstrap-servers", broker,
    )  # fmt: skip
    sink = Sink(broker, sink_topic)
    try:
        first = sink.wait_for(3)
        assert [v["n"] for v in first] == [1, 2, 3], job.text()[-3000:]
        seen = time.time()  # the job stamped "a" before it wrote n = 3
        while time.time() < seen + TTL_S + 0.1:  # the key is idle for longer than the ttl
            time.sleep(0.05)
        send(broker, source, ["a", "a"])
        both = sink.wait_for(5)
        assert [v["n"] for v in both] == [1, 2, 3, 1, 2], job.text()[-3000:]
        assert job.proc.poll() is None, job.text()[-3000:]
    finally:
        sink.close()
        job.kill()
