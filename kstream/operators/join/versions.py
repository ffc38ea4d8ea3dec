"""The versions of a temporal join's table, per key, in the join's state store
(docs/joins.md, "Temporal join").

Each table record at ``ts`` is the version of its key's row valid from ``ts`` until the next
version's time (a null value: no row from ``ts`` on); a version at a time that has one replaces
it (KIP-889 semantics, as :class:`~kstream.state.versioned.VersionedStore`). A key's versions are
kept in time buckets of ``bucket_ms`` (the table's ``versioned``), so one entry never holds more
than a bucket's versions however far the watermark lags:

- bucket: store key ``[record key, "versions", bucket start]``, value ``[[ts, value], ...]``
  sorted by time;
- index: store key ``[record key, "versions"]``, value the key's bucket starts, sorted.

**History.** The owner (the join) moves the horizon, ``watermark - history``, as its watermark
rises: a version no longer valid at the horizon is dropped (the one valid then stays: Flink's
temporal join cleans its versions by the watermark the same way, so every left record still
waiting, whose time is after the watermark, finds its version). A put before the horizon is
refused; an answer is asked only for times at or after it.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from typing import Any

from kstream.state.cache import KeyValueStore
from kstream.time.watermarks import MIN_WATERMARK

#: The store key's second element of a key's versions.
VERSIONS = "versions"


class TableVersions:
    """A temporal join's table versions in ``store`` (see the module docstring); ``history_ms``
    (>= 0): the table's ``versioned``."""

    def __init__(self, store: KeyValueStore[tuple[Any, ...], Any], history_ms: int) -> None:
        self.store, self.history_ms = store, history_ms
        self.bucket_ms = max(history_ms, 60_000)
        #: the earliest time (ms) an answer is kept for
        self.horizon = MIN_WATERMARK

    def advance(self, watermark: int) -> None:
        """The join's watermark rose to ``watermark`` (ms): move the horizon."""
        if watermark > MIN_WATERMARK:
            self.horizon = max(self.horizon, watermark - self.history_ms)

    def put(self, key: Any, value: Any, ts: int) -> bool:
        """Add ``key``'s version valid from ``ts`` (ms; ``value`` None: no row from then on).
        Returns False, storing nothing, when ``ts`` is before the horizon."""
        if ts < self.horizon:
            return False
        bucket = ts - ts % self.bucket_ms
        index: list[int] = self.store.get((key, VERSIONS)) or []
        versions: list[list[Any]] = self.store.get((key, VERSIONS, bucket)) or []
        at = bisect_right(versions, ts, key=_time)
        if at and versions[at - 1][0] == ts:
            versions[at - 1] = [ts, value]
        else:
            versions.insert(at, [ts, value])
        self.store.put((key, VERSIONS, bucket), versions)
        if bucket not in index:
            insort(index, bucket)
        self._prune(key, index)
        return True

    def get(self, key: Any, as_of: int) -> Any:
        """``key``'s row valid at ``as_of`` (ms): the value of its version with the largest time
        ``<= as_of``, or None (no version then, or a null one)."""
        index: list[int] = self.store.get((key, VERSIONS)) or []
        for bucket in reversed(index[: bisect_right(index, as_of)]):
            versions: list[list[Any]] = self.store.get((key, VERSIONS, bucket)) or []
            at = bisect_right(versions, as_of, key=_time)
            if at:
                return versions[at - 1][1]
        return None

    def _prune(self, key: Any, index: list[int]) -> None:
        """Drop ``key``'s versions no longer valid at the horizon and write its index."""
        horizon = self.horizon
        keep = bisect_right(index, horizon)  # buckets after the horizon's
        for position in range(keep - 1, -1, -1):  # find the version valid at the horizon
            bucket = index[position]
            versions: list[list[Any]] = self.store.get((key, VERSIONS, bucket)) or []
            at = bisect_right(versions, horizon, key=_time)
            if at:
                if at > 1:
                    self.store.put((key, VERSIONS, bucket), versions[at - 1 :])
                for gone in index[:position]:
                    self.store.delete((key, VERSIONS, gone))
                del index[:position]
                break
        self.store.put((key, VERSIONS), index)


def _time(version: list[Any]) -> int:
    ts: int = version[0]
    return ts
