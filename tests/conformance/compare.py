"""Read a result topic back and compare two engines' results row for row.

Rules (README.md, "Comparison"):

- an **append** sink's result is the multiset of its records' values (JSON objects; for an
  ``avro`` sink, the values decoded with the table's schema, each with its bytes);
- a **keyed** append sink's (``'key.fields'``) and an **upsert** sink's rows are ``{"key": the
  key's text, "value": the decoded value}``: keys as written, byte for byte (both engines must
  write the same key, which also places a record in the same partition); an upsert sink's
  result is its final table, the last value per record key (grouped by the key as decoded
  JSON), a tombstone (null value) deleting the key;
- rows compare as sorted lists: numbers by value (``2`` equals ``2.0``), and when either of
  two numbers is a float within a relative tolerance of :data:`REL_TOL`; strings, booleans and
  nulls exactly (timestamps are the strings as written).
"""

from __future__ import annotations

import json
import math
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from kstream.errors import RecordError
from kstream.io import avro

#: Relative tolerance of float comparisons.
REL_TOL = 1e-9
#: Seconds a topic may take to be read to its end offsets.
READ_TIMEOUT_S = 120.0
#: Rows shown per side in a diff.
DIFF_ROWS = 3

Row = Any  # a decoded JSON value: dict (a row), or anything a sink wrote


def read_topic(bootstrap: str, topic: str) -> list[tuple[bytes | None, bytes | None]] | None:
    """Every record (key, value) of ``topic`` from the beginning to the end offsets of when
    the read starts (``read_committed``), partition after partition in offset order;
    ``None`` when the topic does not exist.

    Raises:
        TimeoutError: not at the end after :data:`READ_TIMEOUT_S` seconds.
    """
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"conformance-read-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
        }
    )
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            return None
        parts = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in sorted(meta.partitions)]
        by_part: dict[int, list[tuple[bytes | None, bytes | None]]] = {
            p.partition: [] for p in parts
        }
        pending = {p.partition for p in parts if consumer.get_watermark_offsets(p)[1] > 0}
        consumer.assign(parts)
        deadline = time.monotonic() + READ_TIMEOUT_S
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: not read to its end in {READ_TIMEOUT_S:.0f} s")
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            error, part = msg.error(), msg.partition()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:
                pending.discard(part)
            elif error is None and part is not None:
                by_part[part].append((msg.key(), msg.value()))
        return [record for p in sorted(by_part) for record in by_part[p]]
    finally:
        consumer.close()


def _decode(raw: bytes | None) -> Row:
    """A record key or value as JSON; bytes that are not JSON as their text."""
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def avro_rows(records: list[tuple[bytes | None, bytes | None]], schema: Any) -> list[Row]:
    """An ``avro`` sink's rows: each value decoded with ``schema`` (the table's derived schema;
    logical types as their underlying values, bytes as hex), plus its bytes as hex under
    ``"avro bytes"``, so rows are equal only when the bytes are.

    Raises:
        ValueError: a value is not an Avro record of ``schema`` (``RecordError``'s message).
    """
    decode = avro.decoder(schema)
    rows: list[Row] = []
    for _key, value in records:
        if value is None:
            rows.append(None)
            continue
        try:
            fields = decode(value)
        except RecordError as exc:
            raise ValueError(f"a value that is not Avro of the table's schema: {exc}") from exc
        row = {k: v.hex() if isinstance(v, bytes) else v for k, v in fields.items()}
        rows.append({**row, "avro bytes": value.hex()})
    return rows


def append_rows(records: list[tuple[bytes | None, bytes | None]]) -> list[Row]:
    """An append sink's rows: every record's value, decoded."""
    return [_decode(value) for _key, value in records]


def _key_text(raw: bytes | None) -> str | None:
    """A record key as written: its text (bytes that are not UTF-8 with escapes), or None."""
    return None if raw is None else raw.decode("utf-8", "backslashreplace")


def keyed_rows(records: list[tuple[bytes | None, bytes | None]]) -> list[Row]:
    """A keyed append sink's rows: every record as ``{"key": its text, "value": decoded}``."""
    return [{"key": _key_text(key), "value": _decode(value)} for key, value in records]


def upsert_rows(records: list[tuple[bytes | None, bytes | None]]) -> list[Row]:
    """An upsert sink's final table: the last record per key (keys grouped as canonical JSON)
    as ``{"key": its text, "value": decoded}``, keys whose last record is a tombstone left
    out."""
    table: dict[str, Row] = {}
    for key, value in records:
        canonical = json.dumps(_decode(key), sort_keys=True)
        if value is None:
            table.pop(canonical, None)
        else:
            table[canonical] = {"key": _key_text(key), "value": _decode(value)}
    return list(table.values())


def _skeleton(row: Row, numbers: list[float]) -> Row:
    """``row`` with every number replaced by ``"#"`` (appended to ``numbers`` in order)."""
    if isinstance(row, dict):
        return {k: _skeleton(row[k], numbers) for k in sorted(row)}
    if isinstance(row, list):
        return [_skeleton(v, numbers) for v in row]
    if isinstance(row, int | float) and not isinstance(row, bool):
        numbers.append(float(row))
        return "#"
    return row


def sort_key(row: Row) -> tuple[str, tuple[float, ...]]:
    """The order rows are compared in: their JSON with numbers blanked, then the numbers."""
    numbers: list[float] = []
    text = json.dumps(_skeleton(row, numbers), sort_keys=True)
    return text, tuple(-math.inf if math.isnan(n) else n for n in numbers)


def values_equal(a: Row, b: Row) -> bool:
    """Two decoded JSON values are equal under the rules of this module."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    numeric = (int, float)
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, numeric):
        return type(a) is type(b) and a == b
    if not isinstance(b, numeric):
        return False
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=0.0)


@dataclass(frozen=True)
class Diff:
    """How two results differ: the rows only the reference has (``missing``) and only the
    other has (``extra``), at most :data:`DIFF_ROWS` each, and the row counts."""

    reference_count: int
    other_count: int
    missing: list[Row]
    extra: list[Row]

    def describe(self, reference: str = "flink", other: str = "kstream") -> str:
        """One line per part: the counts, then the first missing and extra rows."""
        lines = [f"{reference} {self.reference_count} rows, {other} {self.other_count} rows"]
        for label, rows in (("missing", self.missing), ("extra", self.extra)):
            for row in rows:
                lines.append(f"{label}: {json.dumps(row, sort_keys=True)}")
        return "\n".join(lines)


def compare_rows(reference: list[Row], other: list[Row]) -> Diff | None:
    """``None`` when the two multisets of rows are equal, else their :class:`Diff`."""
    ref_sorted = sorted(reference, key=sort_key)
    other_sorted = sorted(other, key=sort_key)
    if len(ref_sorted) == len(other_sorted) and all(
        values_equal(a, b) for a, b in zip(ref_sorted, other_sorted, strict=True)
    ):
        return None
    ref_count = Counter(_approx(r) for r in ref_sorted)
    other_count = Counter(_approx(r) for r in other_sorted)
    missing = _first(ref_sorted, ref_count - other_count)
    extra = _first(other_sorted, other_count - ref_count)
    if not missing and not extra:  # equal at 9 digits but not within REL_TOL: the first pair
        pairs = zip(ref_sorted, other_sorted, strict=False)
        missing, extra = next(([a], [b]) for a, b in pairs if not values_equal(a, b))
    return Diff(len(reference), len(other), missing, extra)


def _approx(row: Row) -> str:
    """A row's JSON with floats at 9 significant digits (only to pick the rows of a diff)."""
    numbers: list[float] = []
    text = json.dumps(_skeleton(row, numbers), sort_keys=True)
    return text + json.dumps([float(f"{n:.9g}") for n in numbers])


def _first(rows: list[Row], wanted: Counter[str]) -> list[Row]:
    """The first :data:`DIFF_ROWS` rows (in sorted order) counted in ``wanted``."""
    out: list[Row] = []
    for row in rows:
        key = _approx(row)
        if wanted[key] > 0 and len(out) < DIFF_ROWS:
            wanted[key] -= 1
            out.append(row)
    return out
