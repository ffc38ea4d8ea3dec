"""The benchmark's synthetic data set: page-view events, generated once with a fixed seed.

Each record: key ``user_id`` (10,000 users), value
``{"user_id": "u123", "page": "/p/7", "ts": <epoch ms>, "latency_ms": 123}``, Kafka timestamp =
``ts``. Record ``i`` is produced in order ``i`` with ``ts = T0 + i - d`` where ``d`` is uniform in
``[0, MAX_DISORDER_MS]``: timestamps advance ~1 ms per record and are out of order by up to 2 s.

The records are loaded with a plain confluent-kafka producer (idempotent, so each partition keeps
production order) and every delivery report is kept, so the harness knows where each record
landed: per-partition record counts, end offsets and the key -> partition map. Bounded baselines
stop on these end offsets (the local broker's reported high watermark can be too low).

W5's data set (:func:`w5_events`) is separate: ``keys`` distinct keys ``k0`` ... ``k<keys-1>``,
each produced exactly :data:`W5_PASSES` times, generated lazily (never held in memory).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterable, Iterator
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
#: W5: distinct keys (``BENCH_W5_KEYS``) and how often each key occurs.
W5_KEYS = 5_000_000
W5_PASSES = 2

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


def _stride(keys: int, rng: random.Random) -> int:
    """A multiplier coprime with ``keys`` near ``keys`` times the golden ratio's fraction, so
    that ``(stride * j + offset) % keys`` is a permutation that scatters neighbours."""
    stride = max(1, int(keys * 0.6180339887) + rng.randrange(max(1, keys // 1000)))
    while math.gcd(stride, keys) != 1:
        stride += 1
    return stride


def w5_events(keys: int, seed: int = DEFAULT_SEED) -> Iterator[Event]:
    """W5's records, lazily: :data:`W5_PASSES` passes over the ``keys`` keys, each pass in its
    own pseudo-random order (``key index = (stride * j + offset) % keys`` with a stride coprime
    with ``keys``), so every key occurs exactly once per pass and its repeat is on average
    ``keys`` records later. Record ``i`` has value ``{"n": <key index>, "pass": p}`` and
    timestamp ``T0_MS + i`` (ms). ``keys * W5_PASSES`` records in all."""
    rng = random.Random(seed)
    orders = [(_stride(keys, rng), rng.randrange(keys)) for _ in range(W5_PASSES)]
    i = 0
    for p, (stride, offset) in enumerate(orders):
        for j in range(keys):
            n = (stride * j + offset) % keys
            yield f"k{n}", {"n": n, "pass": p}, T0_MS + i
            i += 1


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


def load(
    bootstrap: str,
    topic: str,
    events: Iterable[Event],
    partitions: int = 4,
    track_keys: bool = True,
) -> Layout:
    """Create ``topic`` and produce ``events`` in order (a list or a generator); return their
    :class:`Layout`. ``track_keys=False`` leaves ``Layout.key_partition`` empty (W5: millions of
    keys that nothing needs to locate).

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
        if not track_keys:
            return
        key = msg.key().decode()
        if key_partition.setdefault(key, p) != p:
            errors.append(f"key {key} on partitions {key_partition[key]} and {p}")

    dumps, produce, poll = orjson.dumps, producer.produce, producer.poll
    n = 0
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
    if layout.total != n:
        raise RuntimeError(f"loading {topic}: {layout.total} of {n} delivered")
    return layout
