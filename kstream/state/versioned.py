"""A versioned key-value store: each key's values by event time, for lookups *as of* a time
(lookups *as of* a time, ``FOR SYSTEM_TIME AS OF``).

Semantics follow Kafka Streams' ``VersionedKeyValueStore`` (KIP-889):

- ``put(key, value, ts)`` adds the version of ``key`` valid from ``ts`` (epoch ms) until the
  next version's timestamp; a put at a timestamp that has a version replaces it; ``value`` None
  is a tombstone (the key has no value from ``ts`` on).
- ``get(key, as_of)`` returns the version valid at ``as_of``: the one with the largest
  timestamp ``<= as_of`` (None when that is a tombstone or there is none). ``get(key)`` is the
  latest version.
- **History retention** ``history_ms``: the store's *observed stream time* is the largest
  timestamp put so far. Versions no longer valid at ``observed - history_ms`` are dropped
  (the one valid then is kept), a put older than that horizon is refused, and ``get`` as of a
  time before it returns None, so results never depend on when pruning ran.

Each key's versions are one entry of a :class:`~kstream.state.cache.KeyValueStore` (a list of
``[ts, value]`` sorted by time): cached, evicted, checkpointed, written to the changelog, and
restored like any other entry. A key's retained history should therefore stay moderate (a few
thousand versions); the number of keys is bounded by disk, not memory. The observed stream
time is the owner's to checkpoint and restore (:attr:`VersionedStore.observed`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import orjson

from kstream.state.cache import Codec, KeyValueStore

K = TypeVar("K")
#: ``[[ts, value or None], ...]`` sorted by ts: a key's versions, as stored.
Versions = list[list[Any]]
MIN_TIME = -(2**63)


@dataclass(frozen=True)
class VersionedRecord:
    """A version: ``value`` valid from ``valid_from`` (ms) until ``valid_to`` (ms, exclusive;
    None: still current)."""

    value: Any
    valid_from: int
    valid_to: int | None


def versions_codec(
    encode_key: Callable[[K], bytes], decode_key: Callable[[bytes], K]
) -> Codec[K, Versions]:
    """The codec of a versioned store whose values are JSON-serialisable (values decode as
    JSON, e.g. tuples come back as lists)."""
    return Codec(encode_key, decode_key, orjson.dumps, orjson.loads)


class VersionedStore(Generic[K]):
    """Versions of each key's value by event time over a key-value store (see the module
    docstring).

    Args:
        store: the key-value store holding each key's versions (its codec from
            :func:`versions_codec` or equivalent).
        history_ms: history retention in ms (>= 0).

    Attributes:
        observed: observed stream time (ms): the largest timestamp put; set it when restoring.

    Raises:
        ValueError: ``history_ms`` is negative.
    """

    def __init__(self, store: KeyValueStore[K, Versions], history_ms: int) -> None:
        if history_ms < 0:
            raise ValueError(f"history retention must be >= 0 ms, got {history_ms}")
        self.store = store
        self.history_ms = history_ms
        self.observed = MIN_TIME

    @property
    def horizon(self) -> int:
        """The earliest time (ms) a lookup can be answered for: ``observed - history_ms``."""
        return self.observed - self.history_ms if self.observed > MIN_TIME else MIN_TIME

    def put(self, key: K, value: Any, ts: int) -> bool:
        """Add the version of ``key`` valid from ``ts`` (ms; ``value`` None: a tombstone).
        Returns False, storing nothing, when ``ts`` is before :attr:`horizon`."""
        if ts > self.observed:
            self.observed = ts
        horizon = self.horizon
        if ts < horizon:
            return False
        versions = self.store.get(key) or []
        at = bisect_right(versions, ts, key=_time)
        if at and versions[at - 1][0] == ts:
            versions[at - 1] = [ts, value]
        else:
            versions.insert(at, [ts, value])
        versions = _pruned(versions, horizon)
        if len(versions) == 1 and versions[0][1] is None:
            self.store.delete(key)  # a lone tombstone: nothing to answer but "no value"
        else:
            self.store.put(key, versions)
        return True

    def delete(self, key: K, ts: int) -> bool:
        """A tombstone at ``ts``: ``put(key, None, ts)``."""
        return self.put(key, None, ts)

    def get(self, key: K, as_of: int | None = None) -> VersionedRecord | None:
        """The version of ``key`` valid at ``as_of`` (ms; None: the latest), or None (no value
        then, a tombstone, or ``as_of`` before :attr:`horizon`)."""
        if as_of is not None and as_of < self.horizon:
            return None
        versions = self.store.get(key)
        if not versions:
            return None
        at = len(versions) if as_of is None else bisect_right(versions, as_of, key=_time)
        if at == 0:
            return None
        ts, value = versions[at - 1]
        if value is None:
            return None
        valid_to = versions[at][0] if at < len(versions) else None
        return VersionedRecord(value, ts, valid_to)


def _pruned(versions: Versions, horizon: int) -> Versions:
    """``versions`` without those no longer valid at ``horizon`` (the one valid then stays)."""
    keep_from = bisect_right(versions, horizon, key=_time) - 1
    return versions[keep_from:] if keep_from > 0 else versions


def _time(version: list[Any]) -> int:
    ts: int = version[0]
    return ts
