"""Record time extraction: event time from a field (epoch ms, epoch s, ISO-8601) or the Kafka
record timestamp; processing time from the wall clock. All results are epoch milliseconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kstream.errors import RecordError
from kstream.expr.sql_functions import timestamp_text_ms
from kstream.pipeline.spec import TimeSpec

#: ``(value, kafka_timestamp_ms) -> event time ms``; raises RecordError(stage="timestamp").
Extractor = Callable[[Any, int], int]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


#: Header carrying a record's exact time (epoch ms, decimal) when its Kafka timestamp cannot.
H_TIME = "kstream.ts"
#: How far ahead of the wall clock a Kafka timestamp may be. Kafka 4 rejects a record whose
#: timestamp is more than ``log.message.timestamp.after.max.ms`` (default 1 h) in the future,
#: and every broker rejects negative ones; kstream stays 10 minutes inside that bound.
MAX_FUTURE_TS_MS = 50 * 60 * 1000


def record_time_ms(headers: list[tuple[str, bytes]], kafka_ts: int) -> int:
    """A record's exact time as kstream wrote it: the ``kstream.ts`` header when present (a time
    Kafka cannot store as a timestamp, see ``kstream.io.kafka.TaskProducer``), else its Kafka
    timestamp ``kafka_ts`` (epoch ms)."""
    for name, value in headers:
        if name == H_TIME:
            return int(value)
    return kafka_ts


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds."""
    return time.time_ns() // 1_000_000


def format_watermark(ms: int) -> str:
    """A watermark (epoch ms) for people: ``-inf`` before any, ``+inf`` at the end of input,
    else the UTC date-time to the second, e.g. ``2013-01-05 09:59:59``."""
    if ms <= -(2**62):
        return "-inf"
    if ms >= 2**62:
        return "+inf"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000))


def parse_iso_ms(text: str) -> int:
    """Epoch ms of an ISO-8601 timestamp with a timezone (``Z`` or ``+hh:mm``).

    Raises:
        ValueError: when unparsable or without a timezone (naive times are ambiguous).
    """
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"ISO-8601 time {text!r} has no timezone (add Z or +00:00)")
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _bad(field: str, value: Any, expected: str) -> RecordError:
    shown = repr(value)[:80]
    return RecordError("timestamp", f"event-time field '{field}' is {shown}, expected {expected}")


def _read(value: Any, field: str) -> Any:
    try:
        return value[field]
    except (KeyError, TypeError, IndexError):
        raise RecordError("timestamp", f"event-time field '{field}' is missing") from None


def _field_extractor(field: str, unit: str) -> Extractor:
    def ms(value: Any, kafka_ts: int) -> int:
        v = _read(value, field)
        if type(v) is int:
            return v
        if isinstance(v, float) and v == v and abs(v) < 9.2e18:
            return int(v)
        raise _bad(field, v, "epoch milliseconds (an integer)")

    def seconds(value: Any, kafka_ts: int) -> int:
        v = _read(value, field)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) < 9.2e15:
            return round(v * 1000)
        raise _bad(field, v, "epoch seconds (a number)")

    def text(parse: Callable[[str], int], expected: str) -> Extractor:
        def read(value: Any, kafka_ts: int) -> int:
            v = _read(value, field)
            if not isinstance(v, str):
                raise _bad(field, v, expected)
            try:
                return parse(v)
            except ValueError as exc:
                raise RecordError("timestamp", f"event-time field '{field}': {exc}") from None

        return read

    if unit == "iso":
        return text(parse_iso_ms, "an ISO-8601 string")
    if unit == "sql":  # Flink SQL's text: 2013-01-01 05:00:00[.fff][Z] (or T), UTC
        return text(lambda v: timestamp_text_ms(v)[0], "a SQL timestamp string")
    return {"ms": ms, "s": seconds}[unit]


def _record_timestamp(value: Any, kafka_ts: int) -> int:
    if kafka_ts is None or kafka_ts < 0:
        raise RecordError("timestamp", "the Kafka record has no timestamp")
    return kafka_ts


def _processing_time(value: Any, kafka_ts: int) -> int:
    return now_ms()


def extractor(spec: TimeSpec) -> Extractor:
    """The time extractor for a source's :class:`TimeSpec`."""
    if spec.kind == "processing":
        return _processing_time
    if spec.kind == "ingestion" or spec.field is None:
        return _record_timestamp
    return _field_extractor(spec.field, spec.unit)
