"""The benchmark's synthetic data set: page-view events, generated once with a fixed seed.

Each record: key ``user_id`` (10,000 users), value
``{"user_id": "u123", "page": "/p/7", "ts": <epoch ms>, "latency_ms": 123}``, Kafka timestamp =
``ts``. Record ``i`` is produced in order ``i`` with ``ts = T0 + i - d`` where ``d`` is uniform in
``[0, MAX_DISORDER_MS]``: timestamps advance ~1 ms per record and are out of order by up to 2 s.

The records are loaded with a plain confluent-kafka producer (idempotent, so each partition keeps
production order) and every delivery report is kept, so the harness knows where each record
landed: per-partition record counts, end offsets and the key -> partition map. Bounded baselines
stop on these end offsets (the local broker's reported high watermark can be too low).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from confluent_kafka import Producer

from kstream.io import kafka

#: First event time (epoch ms, a multiple of the 10 s window size).
T0_MS = 1_700_000_000_000
MAX_DISORDER_MS = 2_000
USERS = 10_000
PAGES = 100
MAX_LATENCY_MS = 500
DEFAULT_SEED = 7

#: One generated event: (key, value dict, timestamp ms).
Event = tuple[str, dict[str, Any], int]


def generate(count: int, seed: int = DEFAULT_SEED) -> list[Event]:
    """``count`` events in production order (deterministic for a given ``seed``)."""
    rng = random.Random(seed)
    randrange, randint = rng.randrange, rng.randint
    users = [f"u{n}" for n in range(USERS)]
    pages = [f"/p/{n}" for n in range(PAGES)]
    out: list[Event] = []
    append = out.append
    for i in range(count):
        user = users[randrange(USERS)]
        ts = T0_MS + i - randint(0, MAX_DISORDER_MS)
        value = {
            "user_id": user,
            "page": pages[randrange(PAGES)],
            "ts": ts,
            "latency_ms": randint(1, MAX_LATENCY_MS),
        }
        append((user, value, ts))
    return out


@dataclass
class Layout:
    """Where the loaded records landed.

    Attributes:
        topic: the topic.
        partitions: its partition count.
        counts: records per partition.
        end_offsets: per partition, the offset after its last record (what a bounded reader
            must reach).
        key_partition: partition of every key.
        seconds: time the load took.
    """

    topic: str
    partitions: int
    counts: dict[int, int] = field(default_factory=dict)
    end_offsets: dict[int, int] = field(default_factory=dict)
    key_partition: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partitions": self.partitions,
            "records": self.total,
            "counts": {str(p): n for p, n in sorted(self.counts.items())},
            "end_offsets": {str(p): n for p, n in sorted(self.end_offsets.items())},
            "load_seconds": round(self.seconds, 2),
        }


def load(bootstrap: str, topic: str, events: list[Event], partitions: int = 4) -> Layout:
    """Create ``topic`` and produce ``events`` in order; return their :class:`Layout`.

    Raises:
        RuntimeError: a delivery failed or a key landed on two partitions.
    """
    started = time.monotonic()
    kafka.Admin(bootstrap).ensure_topics([kafka.TopicConfig(topic, partitions)])
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": "murmur2_random",  # Kafka's (Java client's) key partitioning
            "enable.idempotence": True,
            "linger.ms": 20,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "log_level": 3,
        }
    )
    layout = Layout(topic, partitions)
    errors: list[str] = []
    key_partition = layout.key_partition
    counts: dict[int, int] = dict.fromkeys(range(partitions), 0)
    last: dict[int, int] = {}

    def delivered(err: Any, msg: Any) -> None:
        if err is not None:
            errors.append(str(err))
            return
        p = msg.partition()
        counts[p] += 1
        offset = msg.offset()
        if offset >= last.get(p, -1):
            last[p] = offset
        key = msg.key().decode()
        if key_partition.setdefault(key, p) != p:
            errors.append(f"key {key} on partitions {key_partition[key]} and {p}")

    dumps, produce, poll = orjson.dumps, producer.produce, producer.poll
    for n, (key, value, ts) in enumerate(events, start=1):
        while True:
            try:
                produce(topic, dumps(value), key.encode(), timestamp=ts, on_delivery=delivered)
                break
            except BufferError:
                poll(0.1)
        if n % 10_000 == 0:
            poll(0)
    while producer.flush(1.0):
        pass
    if errors:
        raise RuntimeError(f"loading {topic}: {len(errors)} errors, first: {errors[0]}")
    layout.counts = counts
    layout.end_offsets = {p: last[p] + 1 if p in last else 0 for p in range(partitions)}
    layout.seconds = time.monotonic() - started
    if layout.total != len(events):
        raise RuntimeError(f"loading {topic}: {layout.total} of {len(events)} delivered")
    return layout
