"""Helpers of the bad-input integration tests: the CLI, raw topic reads, and a stream of sensor
readings with every kind of poison mixed in, plus its ground truth computed in plain Python.

The readings are ``{"sensor", "ts", "reading", "scale", "note", "copies"}``: event time ``ts``
(epoch ms, out of order by up to 3 s), an integer ``reading``, ``scale`` 1..4, ``note`` "ok" and
``copies`` 1. The pipeline (:func:`pipeline_yaml`) computes ``value = reading / scale`` and
``label = note * copies``, re-keys by sensor and aggregates per sensor and minute.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from kstream.io import kafka
from kstream.tools import loader

MINUTE = 60_000
T0 = 1_700_000_000_000
BOM = b"\xef\xbb\xbf"

Window = tuple[str, int]


def kstream_argv() -> list[str]:
    script = Path(sys.executable).with_name("kstream")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from kstream_cli.main import main; main()"]


def kstream(
    *args: str, timeout: float = 180, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """``kstream ARGS`` in a subprocess; with ``check`` it must exit 0."""
    proc = subprocess.run(
        [*kstream_argv(), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check:
        assert proc.returncode == 0, (
            f"kstream {' '.join(args)} exited {proc.returncode}\n"
            f"stdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-4000:]}"
        )
    return proc


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def read_topic(broker: str, topic: str, idle_s: float = 1.5) -> list[Any]:
    """Every record of ``topic`` (all partitions, raw confluent-kafka messages), read until
    every partition reported its end and nothing new came for ``idle_s``."""
    partitions = kafka.Admin(broker).topics().get(topic)
    if partitions is None:
        return []
    consumer = kafka.new_consumer(kafka.consumer_config(broker, unique("read"), {}))
    consumer.assign(
        [kafka.topic_partition(topic, p, kafka.OFFSET_BEGINNING) for p in range(partitions)]
    )
    out: list[Any] = []
    ended: set[int] = set()
    last = time.monotonic()
    try:
        while len(ended) < partitions or time.monotonic() - last < idle_s:
            for msg in consumer.consume(10_000, 0.2):
                if kafka.is_partition_eof(msg):
                    ended.add(msg.partition())
                elif msg.error() is None:
                    out.append(msg)
                    last = time.monotonic()
            assert time.monotonic() - last < 60, f"no end of {topic} in 60 s"
    finally:
        consumer.close()
    return out


def produce_raw(
    broker: str,
    topic: str,
    records: list[tuple[bytes | None, bytes | None, int]],
    partitions: int = 1,
    settings: dict[str, Any] | None = None,
) -> None:
    """Produce raw records (poison included) with the loader's producer."""
    loader.produce_records(broker, topic, records, partitions, settings)  # type: ignore[arg-type]


def records_in(stderr: str) -> int:
    """The input count of ``kstream run``'s final line."""
    match = re.search(r"finished: ([\d,]+) records in", stderr)
    assert match, stderr[-2000:]
    return int(match.group(1).replace(",", ""))


def good_reading(rng: random.Random, i: int) -> dict[str, Any]:
    return {
        "sensor": f"s{rng.randrange(20):02d}",
        "ts": T0 + i * 50 + rng.randrange(3_000),
        "reading": rng.randrange(-50, 1_000),
        "scale": rng.randrange(1, 5),
        "note": "ok",
        "copies": 1,
    }


def _nested(base: dict[str, Any], levels: int) -> bytes:
    body = orjson.dumps(base)[:-1]
    return body + b', "deep": ' + b"[" * levels + b"]" * levels + b"}"


#: poison kind -> (make raw value from a good reading, stage, error class, failing operator)
POISON: dict[str, tuple[Callable[[dict[str, Any]], bytes | None], str, str, str]] = {
    "truncated JSON": (lambda r: orjson.dumps(r)[:-9], "deserialize", "JSONDecodeError", "source"),
    "invalid UTF-8": (
        lambda r: orjson.dumps(r).replace(b'"ok"', b'"o\xff\xfek"'),
        "deserialize",
        "JSONDecodeError",
        "source",
    ),
    "non-object top level": (
        lambda r: orjson.dumps([r]) if r["reading"] % 2 else b"42",
        "deserialize",
        "RecordError",
        "source",
    ),
    "null value (tombstone)": (lambda r: None, "deserialize", "RecordError", "source"),
    "NaN": (
        lambda r: orjson.dumps(r).replace(b'"reading":', b'"reading":NaN,"x":'),
        "deserialize",
        "JSONDecodeError",
        "source",
    ),
    "Infinity": (
        lambda r: orjson.dumps(r).replace(b'"scale":', b'"scale":Infinity,"x":'),
        "deserialize",
        "JSONDecodeError",
        "source",
    ),
    "nested 150 deep": (lambda r: _nested(r, 150), "deserialize", "RecordError", "source"),
    "nested 3000 deep": (lambda r: _nested(r, 3000), "deserialize", "JSONDecodeError", "source"),
    "5,000-digit integer": (
        lambda r: orjson.dumps(r).replace(b'"reading":', b'"reading":' + b"8" * 5000 + b',"x":'),
        "deserialize",
        "JSONDecodeError",
        "source",
    ),
    "missing event time": (
        lambda r: orjson.dumps({k: v for k, v in r.items() if k != "ts"}),
        "timestamp",
        "RecordError",
        "source",
    ),
    "event time of the wrong type": (
        lambda r: orjson.dumps({**r, "ts": "2023-11-14T22:13:20Z"}),
        "timestamp",
        "RecordError",
        "source",
    ),
    "event time far in the future": (
        lambda r: orjson.dumps({**r, "ts": r["ts"] + 10 * 365 * 86_400_000}),
        "timestamp",
        "RecordError",
        "source",
    ),
    "wrong field type": (
        lambda r: orjson.dumps({**r, "reading": str(r["reading"])}),
        "expression",
        "TypeError",
        "enrich",
    ),
    "division by zero": (
        lambda r: orjson.dumps({**r, "scale": 0}),
        "expression",
        "ZeroDivisionError",
        "enrich",
    ),
    "output above message.max.bytes": (
        lambda r: orjson.dumps({**r, "note": "x" * 100, "copies": 2_000}),
        "produce",
        "KafkaException",
        "by-sensor",
    ),
}


def make_stream(
    total: int, poison: int, seed: int = 5
) -> tuple[list[tuple[bytes, bytes | None, int]], dict[int, str], list[dict[str, Any]]]:
    """``(records, poison kind by offset, good readings)``: ``total`` records of which
    ``poison`` are poison (every kind, round robin, at random offsets after the first) and
    every 200th good record carries a UTF-8 byte order mark (accepted)."""
    rng = random.Random(seed)
    offsets = sorted(rng.sample(range(1, total), poison))
    kinds = list(POISON)
    bad = {offset: kinds[i % len(kinds)] for i, offset in enumerate(offsets)}
    records: list[tuple[bytes, bytes | None, int]] = []
    goods: list[dict[str, Any]] = []
    for i in range(total):
        reading = good_reading(rng, i)
        key = reading["sensor"].encode()
        if i in bad:
            records.append((key, POISON[bad[i]][0](reading), T0 + i * 50))
            continue
        raw = orjson.dumps(reading)
        records.append((key, BOM + raw if i % 200 == 0 else raw, T0 + i * 50))
        goods.append(reading)
    return records, bad, goods


def truth(goods: list[dict[str, Any]]) -> dict[Window, dict[str, Any]]:
    """Per (sensor, minute): n, total and avg of ``reading``, max of ``reading / scale``."""
    acc: dict[Window, list[Any]] = {}
    for r in goods:
        window = (r["sensor"], r["ts"] - r["ts"] % MINUTE)
        a = acc.setdefault(window, [0, 0, None])
        value = r["reading"] / r["scale"]
        a[0] += 1
        a[1] += r["reading"]
        a[2] = value if a[2] is None or value > a[2] else a[2]
    return {
        w: {"n": n, "total": total, "avg_reading": total / n, "max_value": mx}
        for w, (n, total, mx) in acc.items()
    }


def results(messages: list[Any]) -> dict[Window, dict[str, Any]]:
    """Sink records as ``{(sensor, window_start): aggregates}``; a window twice fails."""
    out: dict[Window, dict[str, Any]] = {}
    for msg in messages:
        value = orjson.loads(msg.value())
        window = (value["key"], value["window_start"])
        assert window not in out, f"window {window} emitted twice"
        assert value["window_end"] == value["window_start"] + MINUTE
        out[window] = {k: value[k] for k in ("n", "total", "avg_reading", "max_value")}
    return out


def pipeline_yaml(name: str, source: str, sink: str, policy: str, interval: str = "1s") -> str:
    return f"""\
pipeline: {name}
kafka:
  message.max.bytes: 100000      # so that a 200 KB output is refused by the producer
checkpoint: {{interval: {interval}}}
sources:
  - topic: {source}
    event_time: {{field: ts, unit: ms}}
    watermark: {{max_out_of_orderness: 10s}}
    {policy}
operators:
  - id: enrich
    map: {{fields: {{value: "reading / scale", label: "note * copies"}}}}
  - id: by-sensor
    key_by: {{expr: sensor, partitions: 2}}
  - id: per-minute
    window:
      type: tumbling
      size: 1m
      aggregate:
        n: count
        total: {{sum: reading}}
        avg_reading: {{avg: reading}}
        max_value: {{max: value}}
sinks:
  - topic: {sink}
"""


def headers(msg: Any) -> dict[str, str]:
    return {k: v.decode() for k, v in kafka.message_headers(msg) if v is not None}
