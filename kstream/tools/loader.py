"""Loading records into a topic: read JSON Lines or CSV files (or a built-in data set), keep the
rows a ``where`` predicate accepts, derive each record's key and timestamp, and produce them with a
plain (non-transactional) producer.

A loaded record is ``(key, value, timestamp_ms)``: ``key`` is UTF-8 bytes or ``None``, ``value``
is the JSON encoding (orjson) of the row, ``timestamp_ms`` is epoch milliseconds.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from kstream.errors import BrokerError, RecordError, UsageError
from kstream.io import kafka
from kstream.tools.datasets import DATASETS, DatasetRecord
from kstream.tools.rows import RowPredicate, filter_rows

#: ``(key bytes or None, value bytes, timestamp epoch ms)``
LoadedRecord = tuple[bytes | None, bytes, int]
#: Encodes a row into a record value (default: JSON with orjson); raises RecordError.
ValueEncoder = Callable[[Any], bytes | None]
#: Called with the number of records delivered so far.
ProgressCallback = Callable[[int], None]


FORMATS = ("jsonl", "csv")
_EXTENSIONS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?")
_MISSING = {"", "NA"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Seconds the admin client waits for the broker (topic lookup and creation).
ADMIN_TIMEOUT_S = 10.0
#: Records produced between two ``poll`` calls (delivery callbacks, progress).
POLL_EVERY = 1_000
#: Seconds without any delivery progress before producing gives up with :class:`BrokerError`.
STALL_TIMEOUT_S = 30.0


def detect_format(path: str | os.PathLike[str], fmt: str | None = None) -> str:
    """The file format: ``fmt`` when given, else from the extension (.jsonl/.ndjson/.json ->
    ``jsonl``, .csv -> ``csv``).

    Raises:
        UsageError: unknown ``fmt`` or an extension that does not tell.
    """
    if fmt is not None:
        if fmt not in FORMATS:
            raise UsageError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
        return fmt
    suffix = Path(path).suffix.lower()
    if suffix not in _EXTENSIONS:
        known = ", ".join(_EXTENSIONS)
        raise UsageError(
            f"cannot tell the input format of {path} from its extension (known: {known}); "
            f"pass --input-format {' or --input-format '.join(FORMATS)}"
        )
    return _EXTENSIONS[suffix]


def iter_jsonl(path: str | os.PathLike[str]) -> Iterator[Any]:
    """Each non-blank line of a JSON Lines file, decoded.

    Raises:
        UsageError: the file cannot be opened. RecordError: a line is not valid JSON.
    """
    with _open(path, "rb") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise RecordError("deserialize", f"{path}:{lineno}: invalid JSON: {exc}") from exc


def iter_csv(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Each row of a CSV file with a header line, as a dict; values converted by
    :func:`convert_csv_value`.

    Raises:
        UsageError: the file cannot be opened. RecordError: a malformed row.
    """
    with _open(path, "r") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            return
        for row in reader:
            if not row:
                continue
            if len(row) != len(header):
                raise RecordError(
                    "deserialize",
                    f"{path}:{reader.line_num}: {len(row)} fields, header has {len(header)}",
                )
            yield {name: convert_csv_value(text) for name, text in zip(header, row, strict=True)}


def _open(path: str | os.PathLike[str], mode: str) -> Any:
    try:
        if "b" in mode:
            return open(path, mode)
        return open(path, mode, encoding="utf-8", newline="")
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from exc


def convert_csv_value(text: str) -> int | float | str | None:
    """A CSV cell: ``""``/``NA`` -> ``None``, integer text -> ``int``, decimal text -> ``float``,
    anything else unchanged (``nan``, ``inf`` and ``1_000`` stay strings)."""
    if text in _MISSING:
        return None
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def timestamp_ms(value: Any, field: str) -> int:
    """The record timestamp from ``value[field]``: epoch milliseconds (int, or float truncated)
    or an ISO-8601 string with a timezone.

    Raises:
        RecordError: missing field, naive or unparsable time, or another type.
    """
    raw = value.get(field) if isinstance(value, dict) else None
    if isinstance(raw, bool) or raw is None:
        raise RecordError("timestamp", f"timestamp field {field!r} is missing or not a time")
    if isinstance(raw, int | float):
        return int(raw)
    if isinstance(raw, str):
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError as exc:
            raise RecordError("timestamp", f"{field}={raw!r} is not ISO-8601") from exc
        if parsed.tzinfo is None:
            raise RecordError("timestamp", f"{field}={raw!r} has no timezone (add Z or +00:00)")
        return (parsed - _EPOCH) // timedelta(milliseconds=1)
    raise RecordError("timestamp", f"{field}={raw!r} is neither epoch ms nor ISO-8601")


def key_bytes(value: Any, field: str) -> bytes | None:
    """The record key from ``value[field]`` as UTF-8 (``None`` when missing or null; strings
    as is, other values as their JSON text)."""
    raw = value.get(field) if isinstance(value, dict) else None
    if raw is None:
        return None
    if isinstance(raw, str):
        return raw.encode("utf-8")
    return orjson.dumps(raw)


def encode_records(
    values: Iterable[Any],
    key_field: str | None = None,
    timestamp_field: str | None = None,
    now: Callable[[], int] | None = None,
    encode: ValueEncoder | None = None,
) -> Iterator[LoadedRecord]:
    """Turn decoded rows into records: key from ``key_field`` (else ``None``), timestamp from
    ``timestamp_field`` (else ``now()``, default the wall clock in ms), value as JSON bytes
    (or as ``encode`` makes it, e.g. :func:`kstream.io.codecs.avro_encoder`).

    Raises:
        RecordError: see :func:`timestamp_ms`; a row that cannot be encoded.
    """
    clock = now or (lambda: time.time_ns() // 1_000_000)
    for value in values:
        key = key_bytes(value, key_field) if key_field else None
        ts = timestamp_ms(value, timestamp_field) if timestamp_field else clock()
        yield key, _encode(value, encode), ts


def _encode(value: Any, encode: ValueEncoder | None) -> bytes:
    if encode is not None:
        try:
            return encode(value) or b""
        except RecordError as exc:
            raise RecordError("serialize", f"cannot encode {value!r:.80}: {exc.reason}") from exc
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise RecordError("serialize", f"cannot encode {value!r:.80}: {exc}") from exc


def read_file(
    path: str | os.PathLike[str],
    fmt: str | None = None,
    key_field: str | None = None,
    timestamp_field: str | None = None,
    encode: ValueEncoder | None = None,
    where: RowPredicate | None = None,
) -> Iterator[LoadedRecord]:
    """Records of a JSON Lines or CSV file (lazily; see :func:`encode_records`).

    Args:
        where: when given, only the rows (decoded, before encoding) for which it returns a
            truthy value become records (see :func:`filter_rows`).

    Raises:
        UsageError: unknown format or unreadable file. RecordError: a bad line or field, or
            ``where`` raised on a row.
    """
    kind = detect_format(path, fmt)
    rows = iter_jsonl(path) if kind == "jsonl" else iter_csv(path)
    if where is not None:
        rows = filter_rows(rows, where, str(path))
    return encode_records(rows, key_field, timestamp_field, encode=encode)


def dataset_records(
    name: str,
    key_field: str | None = None,
    timestamp_field: str | None = None,
    encode: ValueEncoder | None = None,
    where: RowPredicate | None = None,
) -> Iterator[LoadedRecord]:
    """Records of a built-in data set (:data:`kstream.tools.datasets.DATASETS`). The data set's own
    key and timestamp are used unless ``key_field`` / ``timestamp_field`` override them.

    Args:
        where: when given, only the rows (value dicts, before encoding) for which it returns a
            truthy value become records (see :func:`filter_rows`; rows are numbered in replay
            order).

    Raises:
        UsageError: unknown data set. RecordError: see :func:`encode_records`, or ``where``
            raised on a row.
    """
    if name not in DATASETS:
        raise UsageError(f"unknown data set {name!r}; available: {', '.join(sorted(DATASETS))}")
    return _dataset_records(name, key_field, timestamp_field, encode, where)


def _dataset_records(
    name: str,
    key_field: str | None,
    timestamp_field: str | None,
    encode: ValueEncoder | None,
    where: RowPredicate | None,
) -> Iterator[LoadedRecord]:
    replayed: Iterator[DatasetRecord] = DATASETS[name]()
    if where is not None:
        replayed = filter_rows(replayed, where, name, row_of=itemgetter(1))
    for own_key, value, own_ts in replayed:
        key = key_bytes(value, key_field) if key_field else own_key
        ts = timestamp_ms(value, timestamp_field) if timestamp_field else own_ts
        yield key, _encode(value, encode), ts


def ensure_topic(
    bootstrap: str,
    topic: str,
    partitions: int | None,
    settings: Mapping[str, Any] | None = None,
) -> int:
    """Create ``topic`` with ``partitions`` (default 1) when missing; return its partition count
    (an existing topic is kept as is).

    Raises:
        BrokerError: broker unreachable within :data:`ADMIN_TIMEOUT_S` or creation refused.
        UsageError: ``partitions`` < 1.
    """
    if partitions is not None and partitions < 1:
        raise UsageError(f"partitions must be at least 1, got {partitions}")
    admin = kafka.Admin(bootstrap, settings, timeout_s=ADMIN_TIMEOUT_S)
    # Not Admin.partitions(): a metadata request naming a missing topic makes Tansu (and Kafka
    # with auto.create.topics.enable) create it with the broker's default partition count.
    count = admin.topics().get(topic)
    if count is None:
        admin.ensure_topics([kafka.TopicConfig(topic, partitions or 1)])
        count = admin.topics().get(topic)
    if count is None:
        raise BrokerError(f"topic {topic} is not visible after creating it")
    return count


def produce_records(
    bootstrap: str,
    topic: str,
    records: Iterable[LoadedRecord],
    partitions: int | None = None,
    settings: Mapping[str, Any] | None = None,
    progress_callback: ProgressCallback | None = None,
) -> int:
    """Produce ``records`` to ``topic`` (created with ``partitions`` if missing) and wait until
    every one is acknowledged. Kafka's default partitioner places records by key.

    Args:
        settings: librdkafka settings layered over kstream's producer defaults.
        progress_callback: called with the count of delivered records every
            :data:`POLL_EVERY` records and at the end.

    Returns:
        The number of records produced.

    Raises:
        BrokerError: broker unreachable, a delivery failed, or no progress for
            :data:`STALL_TIMEOUT_S` seconds. UsageError, RecordError: from ``records``.
    """
    ensure_topic(bootstrap, topic, partitions, settings)
    # murmur2 like the Java client, so keyed records land where Kafka Streams / Flink put them.
    conf = kafka.producer_config(bootstrap, {"partitioner": "murmur2_random", **(settings or {})})
    producer = kafka.new_producer(conf)
    tracker = _DeliveryTracker(progress_callback)
    count = 0
    for batch in _batched(records, POLL_EVERY):
        for key, value, ts in batch:
            _produce_one(producer, tracker, topic, key, value, ts)
        count += len(batch)
        producer.poll(0)
        tracker.check()
    _flush(producer, tracker, count)
    return count


def _batched(records: Iterable[LoadedRecord], size: int) -> Iterator[list[LoadedRecord]]:
    iterator = iter(records)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


class _DeliveryTracker:
    """Counts delivery reports, keeps the first error, reports progress, detects stalls."""

    def __init__(self, progress_callback: ProgressCallback | None) -> None:
        self.delivered = 0
        self.failed = 0
        self.first_error: str | None = None
        self._progress = progress_callback
        self._last_progress = time.monotonic()

    def on_delivery(self, err: Any, msg: Any) -> None:
        if err is not None:
            self.failed += 1
            if self.first_error is None:
                self.first_error = err.str() if hasattr(err, "str") else str(err)
            return
        self.delivered += 1
        self._last_progress = time.monotonic()

    def check(self) -> None:
        """Report progress; raise :class:`BrokerError` on a failed delivery or a stall."""
        if self.first_error is not None:
            raise BrokerError(f"{self.failed} record(s) not delivered: {self.first_error}")
        if time.monotonic() - self._last_progress > STALL_TIMEOUT_S:
            raise BrokerError(
                f"no delivery progress for {STALL_TIMEOUT_S:.0f} s; is the broker up?"
            )
        if self._progress is not None:
            self._progress(self.delivered)


def _produce_one(
    producer: Any, tracker: _DeliveryTracker, topic: str, key: bytes | None, value: bytes, ts: int
) -> None:
    while True:
        try:
            producer.produce(
                topic, value=value, key=key, timestamp=ts, on_delivery=tracker.on_delivery
            )
            return
        except BufferError:
            producer.poll(0.1)  # local queue full: serve delivery reports, then retry
            tracker.check()
        except kafka.KafkaLibraryError as exc:
            raise kafka.translate(exc, f"cannot produce to {topic}") from exc


def _flush(producer: Any, tracker: _DeliveryTracker, count: int) -> None:
    while tracker.delivered + tracker.failed < count:
        producer.flush(0.5)
        tracker.check()
    tracker.check()
