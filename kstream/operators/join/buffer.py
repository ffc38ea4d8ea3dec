"""The buffered records of one side of a join, per key, in the join's state store.

A key's records of one side are kept by time bucket (Flink keeps a ``MapState<timestamp, list>``
per key; RocksDB's order is not needed here): per bucket of ``bucket_ms`` one *index* entry and
one entry per record, so neither a lookup nor a checkpoint ever reads or writes a key's whole
buffer:

- index: store key ``[record key, side, bucket start]``, value ``[next n, [[ts, n, joined],
  ...]]``: each buffered record's time (ms), its number ``n`` (unique within the bucket; tells
  apart records of one timestamp) and whether it joined, sorted by ``(ts, n)``; under a
  ``state_ttl`` a fourth element, the processing time (ms) it was buffered at;
- record: store key ``[record key, side, ts, n]``, value the record's value.

A lookup of ``[lo, hi]`` reads the index of every bucket the range touches: the owner picks
``bucket_ms`` near the width of its lookups (an interval join: ``hi - lo``), so a lookup reads one
or two indexes. Store keys are JSON arrays whose first element is the record key (savepoints
re-shard them by it); an index holds ~20 bytes per record of its bucket.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterator
from typing import Any

import orjson

from kstream.keys import hashable
from kstream.state.cache import Codec, KeyValueStore

#: ``[ts, n, joined]``: one buffered record in a bucket's index.
Row = list[Any]
#: ``[next n, rows]``: a bucket's index.
Index = list[Any]
#: The store key of an index (3 elements) or of a record (4 elements).
BufferKey = tuple[Any, ...]
#: The buckets a lookup found: ``(bucket start, its index, its rows in range)``.
Found = list[tuple[int, Index, list[Row]]]


def _decode_key(raw: bytes) -> BufferKey:
    key, *rest = orjson.loads(raw)
    return (hashable(key), *rest)


#: The codec of a join's store: JSON array keys (tuples), JSON values.
JOIN_CODEC: Codec[BufferKey, Any] = Codec(orjson.dumps, _decode_key, orjson.dumps, orjson.loads)


class JoinBuffer:
    """The records of ``side`` (``left``/``right``) of a join, per key and ``bucket_ms`` (>= 1)
    of time, in ``store``."""

    def __init__(self, store: KeyValueStore[BufferKey, Any], side: str, bucket_ms: int) -> None:
        self.store, self.side, self.bucket_ms = store, side, max(1, bucket_ms)

    def _bucket(self, ts: int) -> int:
        return ts - ts % self.bucket_ms

    def _index(self, key: Any, bucket: int) -> Index | None:
        index: Index | None = self.store.get((key, self.side, bucket))
        return index

    def between(self, key: Any, lo: int, hi: int) -> Found:
        """``key``'s records with ``lo <= ts <= hi`` (ms), by bucket in time order. Hand the
        result to :meth:`mark_joined` to mark them."""
        found: Found = []
        for bucket in range(self._bucket(lo), hi + 1, self.bucket_ms):
            index = self._index(key, bucket)
            if index is not None:
                rows = index[1]
                rows = rows[bisect_left(rows, lo, key=_ts) : bisect_right(rows, hi, key=_ts)]
                if rows:
                    found.append((bucket, index, rows))
        return found

    def values(self, key: Any, lo: int, hi: int) -> list[Any]:
        """The values of ``key``'s records with ``lo <= ts <= hi`` (ms), in time and arrival
        order."""
        return [self.value(key, row) for _, _, rows in self.between(key, lo, hi) for row in rows]

    def value(self, key: Any, row: Row) -> Any:
        """The value of buffered record ``row`` of ``key``."""
        return self.store.get((key, self.side, row[0], row[1]))

    def add(
        self, key: Any, value: Any, ts: int, joined: bool = False, stamp: int | None = None
    ) -> int:
        """Buffer ``value`` at ``ts`` (ms) for ``key`` (``stamp``: the processing time, ms,
        under a ``state_ttl``); returns its number ``n``."""
        bucket = self._bucket(ts)
        index = self._index(key, bucket) or [0, []]
        n = index[0]
        insort(index[1], [ts, n, joined] if stamp is None else [ts, n, joined, stamp])
        index[0] = n + 1
        self.store.put((key, self.side, bucket), index)
        self.store.put((key, self.side, ts, n), value)
        return int(n)

    def row(self, key: Any, ts: int, n: int) -> Row | None:
        """``key``'s buffered record ``n`` at ``ts`` (its index row), None when gone."""
        index = self._index(key, self._bucket(ts))
        rows = index[1] if index is not None else []
        i = bisect_left(rows, [ts, n])
        return rows[i] if i < len(rows) and rows[i][:2] == [ts, n] else None

    def remove(self, key: Any, ts: int, n: int) -> None:
        """Remove ``key``'s buffered record ``n`` at ``ts`` (it exists: :meth:`row`)."""
        bucket = self._bucket(ts)
        index = self._index(key, bucket)
        assert index is not None
        rows = index[1]
        del rows[bisect_left(rows, [ts, n])]
        self.store.delete((key, self.side, ts, n))
        if rows:
            self.store.put((key, self.side, bucket), index)
        else:
            self.store.delete((key, self.side, bucket))

    def mark_joined(self, key: Any, found: Found) -> None:
        """Mark the rows :meth:`between` found joined."""
        for bucket, index, rows in found:
            if not all(row[2] for row in rows):
                for row in rows:
                    row[2] = True
                self.store.put((key, self.side, bucket), index)

    def pop(self, key: Any, ts: int, last: int | None = None) -> Iterator[tuple[Row, Any]]:
        """Remove ``key``'s records at ``ts`` (ms; through ``last`` when given); yields each
        with its value, in time and arrival order, before it goes. Consume it fully."""
        last = ts if last is None else last
        for bucket in range(self._bucket(ts), last + 1, self.bucket_ms):
            yield from self._pop_bucket(key, bucket, ts, last)

    def _pop_bucket(self, key: Any, bucket: int, lo: int, hi: int) -> Iterator[tuple[Row, Any]]:
        index = self._index(key, bucket)
        if index is None:
            return
        rows = index[1]
        first, end = bisect_left(rows, lo, key=_ts), bisect_right(rows, hi, key=_ts)
        for row in rows[first:end]:
            record_key = (key, self.side, row[0], row[1])
            yield row, self.store.get(record_key)
            self.store.delete(record_key)
        del rows[first:end]
        if rows:
            self.store.put((key, self.side, bucket), index)
        else:
            self.store.delete((key, self.side, bucket))


def _ts(row: Row) -> int:
    ts: int = row[0]
    return ts
