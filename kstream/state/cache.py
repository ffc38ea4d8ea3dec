"""State stores with a bounded write-back cache (DESIGN.md section 5).

A :class:`KeyValueStore` is what operators read and write: Python keys and values (decoded
objects, e.g. a window's accumulator), with RocksDB behind it as the state. Reads go to the
cache first and on a miss to the store's backend (the task's RocksDB column family, holding the
last committed checkpoint); writes stay in the cache as *dirty* entries until the next
checkpoint, when :meth:`KeyValueStore.changes` encodes each changed key once (the checkpoint
writes them to the changelog and to RocksDB). Clean entries are evicted, oldest first, when the
process's :class:`CacheBudget` is exhausted; dirty entries are never evicted (local RocksDB
holds committed state only): when they alone exceed the budget, the budget reports
:attr:`CacheBudget.pressure` and the runtime checkpoints early, which makes them clean (Kafka
Streams flushes its record cache on the same condition).

Without a backend (the broker-free driver, unit tests) a store is a plain in-memory map with
the same change tracking and no eviction.

Rules for operators:

- write back every value you change with :meth:`KeyValueStore.put` (an object mutated in place
  but not put back may have been evicted: its change would be lost);
- :meth:`KeyValueStore.items` scans every live entry (backend and cache); put/delete during a
  scan is allowed (the scan reads a snapshot of the cache-only keys).

Memory accounting is an estimate: each cached entry costs :attr:`KeyValueStore.entry_cost`
bytes, an average refreshed at every checkpoint from the encoded sizes (a decoded Python value
takes about three times its JSON size) plus a fixed per-entry overhead.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from kstream.errors import StateError

K = TypeVar("K")
V = TypeVar("V")

#: Bytes of Python overhead per cached entry (dict slots, the key object, the ordered set):
#: measured with tracemalloc (370 bytes for a short string key and a global count entry).
ENTRY_OVERHEAD = 300
#: Estimated decoded size of a value, per byte of its encoding.
DECODED_FACTOR = 3
#: The default process-wide cache: 64MB (``state: {cache: 64MB}``).
DEFAULT_CACHE_BYTES = 64_000_000
_DELETED: Any = object()
_MISSING: Any = object()


def compact(raw: bytes) -> bytes:
    """A copy of ``raw`` whose allocation fits its length: the bytes ``orjson.dumps`` returns
    keep a buffer of 4 KB or more, so a change set of 100,000 of them would take 400 MB."""
    return bytes(memoryview(raw))


class Backend(Protocol):
    """The durable side of a store: a task's RocksDB column family (committed state only)."""

    def get(self, key: bytes) -> bytes | None:
        """The committed value of ``key``, or None."""

    def items(self, *, from_key: bytes | None = None) -> Iterator[tuple[bytes, bytes]]:
        """Every committed entry in key order (from ``from_key`` on, inclusive)."""


@dataclass(frozen=True)
class Codec(Generic[K, V]):
    """How a store's keys and values become bytes (changelog, RocksDB, savepoints).

    ``encode_key`` must be injective and, for stores scanned in order, order-preserving
    (big-endian times first: :func:`kstream.operators.window.base.encode_window_key`)."""

    encode_key: Callable[[K], bytes]
    decode_key: Callable[[bytes], K]
    encode_value: Callable[[V], bytes]
    decode_value: Callable[[bytes], V]


class CacheBudget:
    """The state cache of one process, shared by every store of every task in it.

    Args:
        limit: bytes (estimated, see the module docstring); ``state: {cache: ...}``.

    Attributes:
        used: estimated bytes held by every cached entry now.
        pressure: True when a store could not get under the limit by evicting clean entries
            (its dirty entries fill the cache): the runtime should checkpoint now. Cleared by
            :meth:`relieved`.
    """

    def __init__(self, limit: int = DEFAULT_CACHE_BYTES) -> None:
        if limit <= 0:
            raise ValueError(f"state cache must be positive, got {limit} bytes")
        self.limit = limit
        self.used = 0
        self.pressure = False

    def relieved(self) -> None:
        """A checkpoint made the dirty entries clean (evictable)."""
        self.pressure = self.used > self.limit


class KeyValueStore(Generic[K, V]):
    """One state store: a keyed map of decoded values with a bounded write-back cache.

    Args:
        codec: key and value encodings.
        backend: committed state (None: an in-memory store, nothing is evicted).
        budget: the process's cache budget (None: unbounded).

    Attributes:
        count: live entries (committed plus new minus deleted), maintained for keys read
            through :meth:`get` before they are written (operators always do).
    """

    def __init__(
        self,
        codec: Codec[K, V],
        backend: Backend | None = None,
        budget: CacheBudget | None = None,
    ) -> None:
        self.codec = codec
        self.backend = backend
        self.budget = budget if backend is not None else None
        self.count = 0
        self.entry_cost = ENTRY_OVERHEAD + 100 * DECODED_FACTOR
        self._values: dict[K, Any] = {}
        self._dirty: set[K] = set()
        #: cached keys with nothing to write, oldest first: the eviction order
        self._clean: OrderedDict[K, None] = OrderedDict()
        #: keys known to be absent from the backend (new since the last checkpoint)
        self._fresh: set[K] = set()

    # -- reads ------------------------------------------------------------------------------

    def get(self, key: K) -> V | None:
        """The value of ``key`` or None (from the cache, else the backend)."""
        value = self._values.get(key, _MISSING)
        if value is _MISSING:
            return self._load(key)
        return None if value is _DELETED else value

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None

    def _load(self, key: K) -> V | None:
        if self.backend is None:
            self._fresh.add(key)
            return None
        raw = self.backend.get(self.codec.encode_key(key))
        if raw is None:
            self._fresh.add(key)
            return None
        value = self.codec.decode_value(raw)
        self._charge()  # evicts before the new entry is in: it cannot be its own victim
        self._values[key] = value
        self._clean[key] = None
        return value

    def items(self) -> Iterator[tuple[K, V]]:
        """Every live entry: the backend's in key order (with cached values in place of the
        stored ones), then the entries created since the last checkpoint. Nothing but the
        cache is held in memory, so a scan of any size is safe."""
        values, codec = self._values, self.codec
        if self.backend is None:
            new = list(values)
        else:
            for raw_key, raw_value in self.backend.items():
                key = codec.decode_key(raw_key)
                value = values.get(key, _MISSING)
                if value is _MISSING:
                    yield key, codec.decode_value(raw_value)
                elif value is not _DELETED:
                    yield key, value
            new = list(self._fresh)  # absent from the backend when last looked up
        for key in new:
            value = values.get(key, _DELETED)
            if value is not _DELETED:
                yield key, value

    def __len__(self) -> int:
        return self.count

    def cache_only(self) -> list[K]:
        """The live keys the backend does not hold (created since the last checkpoint; every
        key of an in-memory store)."""
        values = self._values
        keys = values if self.backend is None else self._fresh
        return [k for k in keys if values.get(k, _DELETED) is not _DELETED]

    def current(self, key: K, raw_value: bytes) -> V | None:
        """The live value of ``key``, whose committed encoding is ``raw_value``: the cached
        value when the key changed since (None: deleted), else ``raw_value`` decoded."""
        value = self._values.get(key, _MISSING)
        if value is _MISSING:
            return self.codec.decode_value(raw_value)
        return None if value is _DELETED else value

    # -- writes -----------------------------------------------------------------------------

    def absent(self, key: K) -> None:
        """The caller knows ``key`` is in neither the cache nor the backend (e.g. a window
        without timers): the next :meth:`put` skips the backend lookup."""
        if key not in self._values:
            self._fresh.add(key)

    def get_cached(self, key: K) -> V | None:
        """The value of ``key`` if the cache holds it, else None (no backend read)."""
        value = self._values.get(key)
        return None if value is _DELETED else value

    def put(self, key: K, value: V) -> None:
        """Set ``key`` to ``value`` (write back every value changed in place)."""
        values = self._values
        if key in self._dirty:  # changed since the checkpoint already: the common case
            if values[key] is _DELETED:
                self.count += 1
            values[key] = value
            return
        old = values.get(key, _MISSING)
        if old is _MISSING:
            if key not in self._fresh and self._load(key) is not None:
                old = values[key]
            else:
                self._charge()
        if old is _MISSING or old is _DELETED:
            self.count += 1
        values[key] = value
        if key not in self._dirty:
            self._dirty.add(key)
            self._clean.pop(key, None)

    def delete(self, key: K) -> None:
        """Remove ``key`` (nothing is written when it never reached the backend: such a key
        leaves the cache at once, so entries created and deleted between two checkpoints, a
        join's buffered records, do not fill the cache)."""
        if self.get(key) is None:
            return
        self.count -= 1
        if key in self._fresh:
            del self._values[key]
            self._dirty.discard(key)
            if self.budget is not None:
                self.budget.used -= self.entry_cost
            return
        self._values[key] = _DELETED
        self._dirty.add(key)
        self._clean.pop(key, None)

    # -- checkpoints ------------------------------------------------------------------------

    @property
    def dirty(self) -> bool:
        """Whether anything changed since the last :meth:`changes`."""
        return bool(self._dirty)

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """Each key changed since the last call, once: ``(encoded key, encoded value or None
        = deleted)``; a key created and deleted in between is left out. The entries become
        clean (the checkpoint writes them to the backend before anything else runs)."""
        out: list[tuple[bytes, bytes | None]] = []
        encode_key, encode_value = self.codec.encode_key, self.codec.encode_value
        values, fresh, clean = self._values, self._fresh, self._clean
        size = 0
        for key in self._dirty:
            value = values[key]
            if value is _DELETED:
                del values[key]
                if key not in fresh:
                    out.append((compact(encode_key(key)), None))
                if self.budget is not None:
                    self.budget.used -= self.entry_cost
                continue
            raw = compact(encode_value(value))
            size += len(raw)
            out.append((compact(encode_key(key)), raw))
            clean[key] = None
        self._dirty.clear()
        fresh.clear()
        if out:
            self._reprice(size // len(out))
        return out

    def restore(self, entries: Iterable[tuple[bytes, bytes]]) -> Iterator[tuple[K, V]]:
        """Start from checkpointed ``entries`` (the backend's own, or a savepoint's for an
        in-memory store): yields each decoded entry (for operators to rebuild indexes) and
        counts them; an in-memory store keeps them, a backed store reads them again on demand.
        Consume it fully."""
        self.release()
        self.count = 0
        keep = self.backend is None
        codec = self.codec
        for raw_key, raw_value in entries:
            key, value = codec.decode_key(raw_key), codec.decode_value(raw_value)
            self.count += 1
            if keep:
                self._values[key] = value
            yield key, value

    # -- memory -----------------------------------------------------------------------------

    def _charge(self) -> None:
        budget = self.budget
        if budget is None:
            return
        budget.used += self.entry_cost
        if budget.used > budget.limit:
            self._evict(budget)

    def _evict(self, budget: CacheBudget) -> None:
        """Drop clean entries, oldest first, until the budget holds (at most a batch at a
        time, so one insert never stalls); none left: report pressure."""
        clean, values, cost = self._clean, self._values, self.entry_cost
        target = budget.limit - budget.limit // 16
        while budget.used > target and clean:
            key, _ = clean.popitem(last=False)
            del values[key]
            budget.used -= cost
        if budget.used > budget.limit:
            budget.pressure = True

    def trim(self) -> None:
        """After a checkpoint was applied: evict clean entries while the budget is exceeded."""
        budget = self.budget
        if budget is not None and budget.used > budget.limit:
            self._evict(budget)

    def _reprice(self, mean_value_bytes: int) -> None:
        """Refresh :attr:`entry_cost` from the mean encoded value size of a checkpoint."""
        cost = ENTRY_OVERHEAD + mean_value_bytes * DECODED_FACTOR
        if self.budget is not None:
            self.budget.used += (cost - self.entry_cost) * len(self._values)
        self.entry_cost = cost

    def cached(self) -> int:
        """Entries held in memory now (dirty, clean and deletions)."""
        return len(self._values)

    def release(self) -> None:
        """Give the cache's memory back to the budget (the task closes)."""
        if self.budget is not None:
            self.budget.used -= self.entry_cost * len(self._values)
        self._values.clear()
        self._clean.clear()
        self._dirty.clear()
        self._fresh.clear()


class TableLookup(Protocol):
    """A broadcast table as a lookup join reads it: the row of a key (None: no row)."""

    def get(self, key: Any) -> Any | None: ...


class StoreProvider:
    """Creates the stores of one task's operators over its backend.

    Args:
        backend_for: column family name -> its backend (None: in-memory stores).
        budget: the process's cache budget.
        tables: the process's broadcast tables by source id, shared by its tasks.
    """

    def __init__(
        self,
        backend_for: Callable[[str], Backend] | None = None,
        budget: CacheBudget | None = None,
        tables: Mapping[str, TableLookup] | None = None,
    ) -> None:
        self._backend_for = backend_for
        self.budget = budget
        self.tables: Mapping[str, TableLookup] = tables or {}
        self.stores: dict[str, KeyValueStore[Any, Any]] = {}

    def table(self, source_id: str) -> TableLookup:
        """The broadcast table of source ``source_id``.

        Raises:
            StateError: the process holds no such table.
        """
        table = self.tables.get(source_id)
        if table is None:
            raise StateError(f"broadcast table '{source_id}' is not loaded in this process")
        return table

    def store(self, name: str, codec: Codec[K, V]) -> KeyValueStore[K, V]:
        """The store of column family ``name`` (``op.<node-id>[.<store>]``)."""
        store: KeyValueStore[K, V] = KeyValueStore(codec, self.backend(name), self.budget)
        self.stores[name] = store
        return store

    def backend(self, name: str) -> Backend | None:
        """The raw committed entries of column family ``name`` (None: in-memory stores), for
        state kept outside a :class:`KeyValueStore` (the timers,
        :mod:`kstream.time.stored_timers`)."""
        return self._backend_for(name) if self._backend_for is not None else None

    @property
    def dirty(self) -> bool:
        """Whether any store has changes to checkpoint."""
        return any(s.dirty for s in self.stores.values())

    def checkpointed(self) -> None:
        """The changes were applied to the backend: bring the cache back under its budget."""
        for store in self.stores.values():
            store.trim()
        if self.budget is not None:
            self.budget.relieved()

    def release(self) -> None:
        """Release every store's cache (the task closes)."""
        for store in self.stores.values():
            store.release()
