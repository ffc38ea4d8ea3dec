"""Event times Kafka cannot store as record timestamps survive the broker exactly.

Kafka rejects negative timestamps, Kafka 4 rejects timestamps more than
``log.message.timestamp.after.max.ms`` (1 h) ahead of its clock, and a client given 0 stamps the
record with the current time. kstream writes such a time as the produce time plus a
``kstream.ts`` header, and reads the header back across repartition topics, so windows before
1970, at the epoch and in the future come out exactly as on the broker-free driver.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from clikit import kstream, unique
from confluent_kafka import Consumer, TopicPartition

from kstream.io.kafka import TaskProducer, producer_config
from kstream.time.timestamps import record_time_ms

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000


def test_times_kafka_cannot_store_travel_in_a_header(broker: str, topic_name: str) -> None:
    future = int(time.time() * 1000) + DAY_MS
    times = [-5_000, 0, 1, 1_600_000_000_000, future]
    producer = TaskProducer(producer_config(broker, {}), None)
    for n, ts in enumerate(times):
        producer.emit(topic_name, str(n).encode(), b"{}", ts, [("x", b"1")], 0)
    producer.flush()
    consumer = Consumer({"bootstrap.servers": broker, "group.id": unique("times")})
    consumer.assign([TopicPartition(topic_name, 0, 0)])
    got: dict[int, tuple[int, int, list]] = {}
    deadline = time.monotonic() + 30
    while len(got) < len(times) and time.monotonic() < deadline:
        for m in consumer.consume(100, 0.5):
            if m.error() is None:
                headers = m.headers() or []
                kafka_ts = m.timestamp()[1]
                got[int(m.key())] = (kafka_ts, record_time_ms(headers, kafka_ts), headers)
    consumer.close()
    assert [got[n][1] for n in range(len(times))] == times
    # storable times are the Kafka timestamp itself, with no extra header
    assert got[2][0] == 1 and got[3][0] == 1_600_000_000_000
    assert got[2][2] == [("x", b"1")]
    # the others carry the produce time (now) and the exact time in kstream.ts
    for n in (0, 1, 4):
        assert abs(got[n][0] - time.time() * 1000) < 600_000, got[n]
        assert ("kstream.ts", str(times[n]).encode()) in got[n][2]


PIPELINE = """
pipeline: {name}
checkpoint: {{interval: 1s}}
sources:
  - topic: {source}
    event_time: ts
    watermark: {{max_out_of_orderness: 1s, max_future_skew: 36500d}}
operators:
  - id: by-k
    key_by: k
  - id: w
    window:
      type: tumbling
      size: 10s
      aggregate:
        n: count
sinks:
  - topic: {sink}
"""


def test_windows_before_1970_and_in_the_future_through_a_repartition(
    broker: str, tmp_path: Path
) -> None:
    future = (int(time.time() * 1000) + DAY_MS) // 10_000 * 10_000
    times = [-15_000, -5_000, -1, 0, 9_999, future + 5]
    source, name = unique("times-in"), unique("times")
    data = tmp_path / "in.jsonl"
    data.write_bytes(b"".join(orjson.dumps({"k": "a", "ts": t}) + b"\n" for t in times))
    kstream("produce", source, str(data), "--key", "k", "--bootstrap-servers", broker)
    path = tmp_path / "p.yaml"
    path.write_text(PIPELINE.format(name=name, source=source, sink=f"{name}-out"))
    kstream("run", str(path), "--bounded", "--state-dir", str(tmp_path / "s"),
            "--bootstrap-servers", broker)  # fmt: skip
    out = kstream(
        "tail", f"{name}-out", "--from-beginning", "--output", "jsonl", "--timeout", "3",
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    windows = sorted(
        (v["window_start"], v["window_end"], v["n"])
        for v in (orjson.loads(line)["value"] for line in out.splitlines() if line.strip())
    )
    assert windows == [
        (-20_000, -10_000, 1),
        (-10_000, 0, 2),
        (0, 10_000, 2),
        (future, future + 10_000, 1),
    ]
