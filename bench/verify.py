"""Read a job's output topic back and compare it with the expected result (``bench.truth``).

Every check returns a :class:`Verdict`; a mismatch is a failed run, whatever its speed.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Consumer, KafkaError, TopicPartition

from bench.truth import WINDOW_MS, Windows, w1_row

#: Seconds a reader waits for the next record before it gives up.
READ_TIMEOUT_S = 120.0


@dataclass
class Verdict:
    ok: bool
    detail: str
    outputs: int

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "detail": self.detail, "outputs": self.outputs}


def iter_topic(bootstrap: str, topic: str, partitions: int) -> Iterator[tuple[bytes | None, bytes]]:
    """Every ``(key, value)`` of ``topic`` (committed data only, tombstones skipped), read to
    the end of each partition, lazily (W5's millions of results are never held at once).

    Raises:
        RuntimeError: nothing arrived for :data:`READ_TIMEOUT_S` seconds before every
            partition ended, or the consumer reported an error.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "bench-verify",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "fetch.queue.backoff.ms": 10,
            "log_level": 3,
        }
    )
    try:
        consumer.assign([TopicPartition(topic, p, -2) for p in range(partitions)])
        pending = set(range(partitions))
        deadline = time.monotonic() + READ_TIMEOUT_S
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"reading {topic}: partitions {sorted(pending)} never ended")
            msgs = consumer.consume(10_000, 0.5)
            if msgs:
                deadline = time.monotonic() + READ_TIMEOUT_S
            for msg in msgs:
                err = msg.error()
                if err is None:
                    value = msg.value()
                    if value is not None:
                        yield msg.key(), value
                elif err.code() == KafkaError._PARTITION_EOF:
                    pending.discard(msg.partition())
                else:
                    raise RuntimeError(f"reading {topic}: {err.str()}")
    finally:
        consumer.close()


def read_topic(bootstrap: str, topic: str, partitions: int) -> list[tuple[bytes | None, bytes]]:
    """Every ``(key, value)`` of ``topic`` as a list (see :func:`iter_topic`)."""
    return list(iter_topic(bootstrap, topic, partitions))


def _diff_windows(got: Windows, want: Windows, duplicates: int, bad: int) -> str:
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    wrong = [k for k in want if k in got and got[k] != want[k]]
    parts = []
    if duplicates:
        parts.append(f"{duplicates} duplicate windows")
    if bad:
        parts.append(f"{bad} malformed outputs")
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[0]})")
    if extra:
        parts.append(f"{len(extra)} unexpected (e.g. {extra[0]})")
    if wrong:
        k = wrong[0]
        parts.append(f"{len(wrong)} wrong (e.g. {k}: got {got[k]}, want {want[k]})")
    return "; ".join(parts)


def check_windows(
    records: list[tuple[bytes | None, bytes]], want: Windows, style: str = "kstream"
) -> Verdict:
    """Window results: kstream's ``{"key", "window_start", "window_end", "count", "sum"}``
    (record key = window key) or Quix's ``{"start", "end", "count", "sum"}`` (``style="quix"``,
    window key in the record key)."""
    got: Windows = {}
    duplicates = bad = 0
    for raw_key, raw in records:
        value = orjson.loads(raw)
        key = raw_key.decode() if raw_key is not None else None
        if style == "quix":
            start, end = value["start"], value["end"]
        else:
            start, end = value["window_start"], value["window_end"]
            if value["key"] != key:
                bad += 1
        if end - start != WINDOW_MS or key is None:
            bad += 1
            continue
        wid = (key, start)
        if wid in got:
            duplicates += 1
        got[wid] = (value["count"], value["sum"])
    problems = _diff_windows(got, want, duplicates, bad)
    if problems:
        return Verdict(False, problems, len(records))
    return Verdict(True, f"{len(got):,} windows match", len(records))


def check_w1(records: list[tuple[bytes | None, bytes]], want: Counter[tuple[Any, ...]]) -> Verdict:
    """W1: the multiset of (key, fields) equals the expected one."""
    got: Counter[tuple[Any, ...]] = Counter()
    for raw_key, raw in records:
        key = raw_key.decode() if raw_key is not None else ""
        try:
            got[w1_row(key, orjson.loads(raw))] += 1
        except KeyError:
            got[("malformed", raw)] += 1
    if got == want:
        return Verdict(True, f"{len(records):,} records match", len(records))
    missing = want - got
    extra = got - want
    detail = f"{sum(missing.values())} missing, {sum(extra.values())} unexpected"
    if extra:
        detail += f" (e.g. {next(iter(extra))})"
    elif missing:
        detail += f" (e.g. {next(iter(missing))})"
    return Verdict(False, detail, len(records))


def check_floor(
    records: list[tuple[bytes | None, bytes]], want_count: int, want_latency_sum: int
) -> Verdict:
    """The floor copies every record: same count and same sum of latency_ms."""
    total = sum(orjson.loads(raw)["latency_ms"] for _key, raw in records)
    if len(records) == want_count and total == want_latency_sum:
        return Verdict(True, f"{len(records):,} records copied", len(records))
    return Verdict(
        False,
        f"{len(records)} records (want {want_count}), latency sum {total} "
        f"(want {want_latency_sum})",
        len(records),
    )


def check_flights_weather(
    records: list[tuple[bytes | None, bytes]], want: dict[tuple[str, str, int], tuple[int, float]]
) -> Verdict:
    """examples/flights-weather.yaml outputs against :func:`bench.truth.flights_weather_truth`:
    every (origin, visibility, day) once, with its flights and average delay."""
    got: dict[Any, tuple[Any, ...]] = {}
    duplicates = 0
    for _raw_key, raw in records:
        v = orjson.loads(raw)
        wid = (v["key"][0], v["key"][1], v["window_start"])
        duplicates += wid in got
        got[wid] = (v["flights"], v["avg_dep_delay"])
    return _compare(got, duplicates, want, len(records), "daily groups")


def check_flights(
    records: list[tuple[bytes | None, bytes]], want: dict[tuple[str, int], tuple[int, float, int]]
) -> Verdict:
    """examples/flights-hourly.yaml outputs against :func:`bench.truth.flights_hourly_truth`."""
    got: dict[Any, tuple[Any, ...]] = {}
    duplicates = 0
    for _raw_key, raw in records:
        v = orjson.loads(raw)
        wid = (v["key"], v["window_start"])
        duplicates += wid in got
        got[wid] = (v["flights"], v["avg_dep_delay"], v["max_dep_delay"])
    return _compare(got, duplicates, want, len(records), "windows")


def _compare(
    got: dict[Any, tuple[Any, ...]],
    duplicates: int,
    want: Mapping[Any, tuple[Any, ...]],
    records: int,
    unit: str,
) -> Verdict:
    """``got`` against ``want``, result by result: counts exactly, an average (a float) within
    a relative 1e-9 (the order of a sum's terms differs)."""
    wrong = [k for k, w in want.items() if k in got and not _same(got[k], w)]
    missing = [k for k in want if k not in got]
    extra = [k for k in got if k not in want]
    if duplicates or wrong or missing or extra:
        detail = (
            f"{duplicates} duplicates, {len(missing)} missing, {len(extra)} unexpected, "
            f"{len(wrong)} wrong"
        )
        if wrong:
            detail += f" (e.g. {wrong[0]}: got {got[wrong[0]]}, want {want[wrong[0]]})"
        return Verdict(False, detail, records)
    return Verdict(True, f"{len(got):,} {unit} match", records)


def _same(got: tuple[Any, ...], want: tuple[Any, ...]) -> bool:
    return len(got) == len(want) and all(
        math.isclose(g, w, rel_tol=1e-9) if isinstance(w, float) else g == w
        for g, w in zip(got, want, strict=True)
    )


def _w5_index(raw_key: bytes | None, keys: int) -> int | None:
    """The index ``n`` of a W5 key ``b"k<n>"`` (0 <= n < keys), ``None`` if it is not one."""
    if raw_key is None or not raw_key.startswith(b"k") or not raw_key[1:].isdigit():
        return None
    n = int(raw_key[1:])
    return n if n < keys and raw_key == b"k%d" % n else None


def check_w5(records: Iterable[tuple[bytes | None, bytes]], keys: int, passes: int) -> Verdict:
    """W5 (``emit: update``): per key ``k0`` ... ``k<keys-1>`` exactly ``passes`` results, the
    i-th one ``{"key": "k<n>", "count": i}`` (the running count after each of its records, in
    order; a key lives in one partition), with record key = the value's key. Streams
    ``records``, keeping one byte per key."""
    seen = bytearray(keys)
    outputs = bad = wrong = extra = 0
    example = ""
    for raw_key, raw in records:
        outputs += 1
        n = _w5_index(raw_key, keys)
        try:
            value = orjson.loads(raw)
            same = n is not None and value["key"] == f"k{n}"
            count = value["count"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            same, count = False, None
        if n is None or not same:
            bad += 1
            example = example or f"malformed {raw_key!r}: {raw[:80]!r}"
            continue
        if seen[n] >= passes:
            extra += 1
            continue
        seen[n] += 1
        if count != seen[n]:
            wrong += 1
            example = example or f"k{n}: result {seen[n]} has count {count}"
    missing = sum(passes - c for c in seen)
    if outputs == keys * passes and not (bad or wrong or extra or missing):
        return Verdict(True, f"{keys:,} key counts match ({outputs:,} updates)", outputs)
    detail = (
        f"{outputs:,} results for {keys:,} keys x {passes}: {missing} missing, {extra} extra, "
        f"{wrong} wrong, {bad} malformed"
    )
    return Verdict(False, detail + (f" (e.g. {example})" if example else ""), outputs)
