"""The buffered records of one side of a join, per key, in the join's state store.

A key's records of one side are one *index* entry and one entry per record (Flink keeps a
``MapState<timestamp, list>`` per key the same way, so a buffer is never read whole):

- index: store key ``[record key, side]``, value ``[next n, [[ts, n, joined], ...]]``: every
  buffered record's time (ms), its number ``n`` (unique within the key and side; tells apart
  records of one timestamp) and whether it joined, sorted by ``(ts, n)``;
- record: store key ``[record key, side, ts, n]``, value the record's value.

Store keys are JSON arrays whose first element is the record key (savepoints re-shard them by
it). A key's index holds ~20 bytes per buffered record: a key should not buffer more than some
ten thousands of records per side at once.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from kstream.keys import hashable
from kstream.state.cache import Codec, KeyValueStore

#: ``[ts, n, joined]``: one buffered record in a key's index.
Row = list[Any]
#: ``[next n, rows]``: a key's index.
Index = list[Any]
#: The store key of an index (2 elements) or of a record (4 elements).
BufferKey = tuple[Any, ...]


def _decode_key(raw: bytes) -> BufferKey:
    key, *rest = orjson.loads(raw)
    return (hashable(key), *rest)


#: The codec of a join's store: JSON array keys (tuples), JSON values.
JOIN_CODEC: Codec[BufferKey, Any] = Codec(orjson.dumps, _decode_key, orjson.dumps, orjson.loads)


class JoinBuffer:
    """The records of ``side`` (``left``/``right``) of a join, per key, in ``store``."""

    def __init__(self, store: KeyValueStore[BufferKey, Any], side: str) -> None:
        self.store, self.side = store, side

    def index(self, key: Any) -> Index:
        """``key``'s index ``[next n, rows]`` (empty when it has none); the rows
        ``[ts, n, joined]`` are in ``(ts, n)`` order. Hand it back to :meth:`mark_joined`
        after changing rows (it may no longer be the cached object by then)."""
        index: Index | None = self.store.get((key, self.side))
        return [0, []] if index is None else index

    @staticmethod
    def between(index: Index, lo: int, hi: int) -> list[Row]:
        """The rows of ``index`` with ``lo <= ts <= hi`` (ms), in time order."""
        rows = index[1]
        return rows[bisect_left(rows, lo, key=_ts) : bisect_right(rows, hi, key=_ts)]

    def value(self, key: Any, row: Row) -> Any:
        """The value of buffered record ``row`` of ``key``."""
        return self.store.get((key, self.side, row[0], row[1]))

    def add(self, key: Any, value: Any, ts: int, joined: bool = False) -> None:
        """Buffer ``value`` at ``ts`` (ms) for ``key``."""
        index = self.index(key)
        n = index[0]
        insort(index[1], [ts, n, joined])
        index[0] = n + 1
        self.store.put((key, self.side), index)
        self.store.put((key, self.side, ts, n), value)

    def mark_joined(self, key: Any, index: Index, rows: list[Row]) -> None:
        """Mark ``rows`` of ``key``'s ``index`` (from :meth:`index`) joined."""
        if rows and not all(row[2] for row in rows):
            for row in rows:
                row[2] = True
            self.store.put((key, self.side), index)

    def pop(self, key: Any, leaving: Callable[[Row], bool]) -> Iterator[tuple[Row, Any]]:
        """Remove ``key``'s records for which ``leaving(row)`` holds; yields each with its value
        (in time order) before it goes. Consume it fully."""
        index: Index | None = self.store.get((key, self.side))
        if index is None:
            return
        kept: list[Row] = []
        for row in index[1]:
            if not leaving(row):
                kept.append(row)
                continue
            record_key = (key, self.side, row[0], row[1])
            yield row, self.store.get(record_key)
            self.store.delete(record_key)
        if kept:
            index[1] = kept
            self.store.put((key, self.side), index)
        else:
            self.store.delete((key, self.side))


def _ts(row: Row) -> int:
    ts: int = row[0]
    return ts
