"""Keyed state of a process function: the declared value, list and map states of every key,
kept in the node's default state store (docs/process-functions.md, "State").

The user gets handles (:class:`~kstream.api.ValueState`, ...) that address the backend's
current key; each (record key, state name) is one entry of the node's store ``op.<node-id>``
(:mod:`kstream.state.cache`: RocksDB behind the process's bounded cache when the task has
local state, else an in-memory map), so a task's state need not fit in memory. Values are held
as JSON (:mod:`kstream.operators.process_codec`), so reads return copies and a value is checked
to be JSON-serialisable when it is stored; every change is written back with
``store.put``/``store.delete``, and a checkpoint takes ``store.changes()``.

Store entries, one per (key, state name):

- key: the JSON array ``[record key, state name]`` (savepoint re-sharding hashes the first
  element's JSON, as the repartition producer hashed the record key);
- value: the value's JSON; a list's JSON array; a map's JSON array of ``[key, value]`` pairs.
  An emptied state is a deletion.

A state declared with a ``ttl`` (:mod:`kstream.operators.process_ttl`) adds one entry per
(key, state name): key ``[record key, state name, "ttl"]``, value ``[stamp ms, time]``
(``time``: ``event`` or ``processing``; a map: ``[[[map key, stamp ms], ...], time]``).
Expired entries are never returned (checked on read) and are removed by
:meth:`KeyedStateBackend.sweep`, so they leave the checkpointed state.

Held in memory whatever the store: the TTL index (:class:`~kstream.operators.process_ttl.
StateTtl`: the stamps of the TTL states' entries and their expiry heaps, used by reads and the
sweep; written to the store at each checkpoint), and the stamps of the (name, key) pairs
changed since the last checkpoint. A restore iterates the stored entries once, keeping only
what rebuilds that index.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from kstream.errors import UsageError
from kstream.operators.process_codec import (
    STATE_CODEC,
    TTL_MARK,
    StoreKey,
    kind_error,
    looks_like,
    table_form,
)
from kstream.operators.process_handles import HANDLES
from kstream.operators.process_ttl import (
    WHOLE,
    Stamp,
    StateTtl,
    TtlDeclared,
    restored_stamps,
)
from kstream.state.cache import KeyValueStore
from kstream.time.valve import MIN_WATERMARK

#: ``(state name, kind)`` pairs as declared in the pipeline file.
Declared = tuple[tuple[str, str], ...]


class KeyedStateBackend:
    """The declared states of one process node in one task.

    Args:
        node_id: the node's id (names it in errors).
        declared: ``(name, kind)`` pairs, kind ``value``, ``list`` or ``map``.
        ttl: ``(name, ttl ms, time)`` of the states with a time-to-live.

    The node sets ``timestamp`` (the current record's or timer's time), ``watermark`` and
    ``clock`` (callables giving the watermark and the processing time, epoch ms), and binds the
    node's store (:meth:`bind`; until then an in-memory store).
    """

    def __init__(self, node_id: str, declared: Declared, ttl: TtlDeclared = ()) -> None:
        self.node_id = node_id
        self.kinds = dict(declared)
        self.store: KeyValueStore[StoreKey, Any] = KeyValueStore(STATE_CODEC)
        #: the key ``process``/``on_timer`` runs for (None outside them)
        self.current_key: Any = None
        self.active = False
        self._handles: dict[str, Any] = {}
        self.ttl = StateTtl(ttl, maps=(n for n, k in declared if k == "map"))
        self.timestamp = MIN_WATERMARK
        self.watermark: Callable[[], int] = lambda: MIN_WATERMARK
        self.clock: Callable[[], int] = lambda: 0
        #: ``(name, key)`` whose stamp changed since the last checkpoint (written by
        #: :meth:`changes`)
        self.restamped: set[tuple[str, Any]] = set()
        #: stamp entries in the store (for :meth:`keys`)
        self.stamp_entries = 0
        #: restored event-time entries (map entries) without a stamp: ``(name, key) -> map
        #: keys or [WHOLE]``, stamped by the first watermark
        self.unstamped: dict[tuple[str, Any], list[Any]] = {}

    def bind(self, store: KeyValueStore[StoreKey, Any]) -> None:
        """Keep the state in ``store`` (the node's default store, codec
        :data:`~kstream.operators.process_codec.STATE_CODEC`), before any restore."""
        self.store = store

    def handle(self, name: str) -> Any:
        """The handle of state ``name`` (one per name).

        Raises:
            UsageError: ``name`` is not declared.
        """
        found = self._handles.get(name)
        if found is not None:
            return found
        kind = self.kinds.get(name)
        if kind is None:
            known = ", ".join(self.kinds) or "none"
            raise UsageError(
                f"process '{self.node_id}' has no state '{name}' (declared: {known}); declare "
                f"it in the pipeline: process: {{state: {{{name}: value}}}}"
            )
        cls = HANDLES[kind]
        found = self._handles[name] = cls(self, name)
        return found

    def _check_active(self, name: str) -> None:
        """Fail outside ``process``/``on_timer`` (state is per key)."""
        if not self.active:
            raise UsageError(
                f"process '{self.node_id}': state '{name}' is per key; use it in process() or "
                "on_timer(), not in open()"
            )

    def _form(self, name: str, held: Any) -> Any:
        return table_form(self.node_id, name, self.kinds[name], held)

    def current(self, name: str) -> Any:
        """The current key's entry of state ``name`` in its handle form (bytes, list of bytes,
        dict of bytes; the store's own object or a new one: write it back after a change);
        None when absent or expired (an expired entry is removed here)."""
        self._check_active(name)
        key = self.current_key
        held = self.store.get((key, name))
        time = self.ttl.time_of(name)
        if held is not None and time is not None:
            expired = self.ttl.expired(name, key, self.now(time))
            for mk in expired:
                self._expire(name, key, mk)
            if expired:
                held = self.store.get((key, name))
        return self._form(name, held)

    def write(self, name: str, entry: Any, written: Iterable[Any] = ()) -> None:
        """Set the current key's entry of ``name`` to ``entry`` (its handle form; None:
        delete) and (re)stamp what was written (a map: its entries ``written``)."""
        self._check_active(name)
        key = self.current_key
        if entry is None:
            self.store.delete((key, name))
        else:
            self.store.put((key, name), entry)
        time = self.ttl.time_of(name)
        if time is None:
            return
        self.restamped.add((name, key))
        left = self.unstamped.pop((name, key), [])  # restored map entries not stamped yet
        if entry is None:
            self.ttl.forget(name, key)
            return
        at = self.timestamp if time == "event" else self.clock()
        if name in self.ttl.maps:
            written = [*(mk for mk in left if mk in entry), *written]
        for mk in written if name in self.ttl.maps else (WHOLE,):
            self.ttl.stamp(name, key, at, mk)

    def _expire(self, name: str, key: Any, mk: Any) -> None:
        """Remove ``key``'s expired entry of ``name`` (map entry ``mk``) and its stamp."""
        self.ttl.forget(name, key, mk)
        self.restamped.add((name, key))
        if mk is WHOLE:
            self.store.delete((key, name))
            return
        entry = self._form(name, self.store.get((key, name)))
        if entry is not None:
            entry.pop(mk, None)
            if entry:
                self.store.put((key, name), entry)
                return
            self.store.delete((key, name))
        self.ttl.forget(name, key)  # the key's last map entry: its map's stamps too

    def now(self, time: str) -> int:
        """The current time of TTL domain ``time``: the watermark or the processing time."""
        return self.watermark() if time == "event" else self.clock()

    def sweep(self, time: str) -> int:
        """Remove every entry of a ``time``-domain TTL state expired now (ms: the watermark or
        the processing time); returns how many. Work is proportional to the expired entries
        (plus stale heap entries), not to the state's size."""
        now = self.now(time)
        if time == "event" and self.unstamped and now > MIN_WATERMARK:
            for (name, key), mks in self.unstamped.items():
                for mk in mks:
                    self.ttl.stamp(name, key, now, mk)
                self.restamped.add((name, key))
            self.unstamped.clear()
        removed = 0
        for name, key, mk in self.ttl.due(time, now):
            self._expire(name, key, mk)
            removed += 1
        return removed

    # -- checkpoints ----------------------------------------------------------------------

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """Each store entry changed since the last call, once: ``(store key, JSON or None =
        deleted)`` (see the module docstring); the changed stamps are written first."""
        for name, key in self.restamped:
            stamp = self.ttl.encode(name, key)
            if stamp is None:
                self._delete_stamp((key, name, TTL_MARK))
            else:
                self._put_stamp((key, name, TTL_MARK), stamp)
        self.restamped.clear()
        return self.store.changes()

    def _put_stamp(self, skey: StoreKey, stamp: bytes) -> None:
        before = len(self.store)
        self.store.put(skey, stamp)
        self.stamp_entries += len(self.store) - before

    def _delete_stamp(self, skey: StoreKey) -> None:
        before = len(self.store)
        self.store.delete(skey)
        self.stamp_entries += len(self.store) - before

    def restore(self, entries: Iterable[tuple[bytes, bytes]]) -> None:
        """Start from the stored ``entries`` (iterated once: a store backed by RocksDB reads
        them again on demand, an in-memory store keeps them); entries of a state no longer
        declared are ignored, stamps of a state without a ttl deleted.

        Raises:
            ValueError: an entry is not a process state entry.
            StateError: an entry was stored as another kind of state.
        """
        self.restamped.clear()
        self.stamp_entries = 0
        saved: dict[tuple[str, Any], Any] = {}
        ttl_entries: list[tuple[str, Any, Any]] = []
        stale: list[StoreKey] = []
        for skey, held in self.store.restore(entries):
            key, name, *ttl = skey
            kind = self.kinds.get(name)
            if ttl:
                self.stamp_entries += 1
            if kind is None:
                continue
            time = self.ttl.time_of(name)
            if ttl:
                if time is None:
                    stale.append(skey)
                else:
                    saved[(name, key)] = orjson.loads(held)
            elif not looks_like(kind, held):
                raise kind_error(self.node_id, name, kind)
            elif time is not None:
                mks = list(self._form(name, held)) if name in self.ttl.maps else ()
                ttl_entries.append((name, key, mks))
        for skey in stale:
            self._delete_stamp(skey)
        self._restore_stamps(saved, ttl_entries)

    def _restore_stamps(
        self, saved: dict[tuple[str, Any], Any], entries: list[tuple[str, Any, Any]]
    ) -> None:
        """Stamp the restored ``entries`` of TTL states (``(name, key, map keys)``): with their
        saved stamp when their ttl's time is the saved one; else (ttl added or its time changed)
        with the current time of the domain (event time before any watermark: the first
        watermark). A saved stamp without its entry is deleted at the next checkpoint."""
        stamps: list[Stamp] = []
        self.unstamped = {}
        for name, key, mks in entries:
            time = self.ttl.time_of(name)
            kept, left = restored_stamps(self.ttl, name, key, mks, saved.pop((name, key), None))
            stamps.extend(kept)
            if not left:
                continue
            if time == "event" and self.watermark() == MIN_WATERMARK:
                self.unstamped[(name, key)] = left
            else:
                stamps.extend((name, key, mk, self.now(time or "event")) for mk in left)
                self.restamped.add((name, key))
        self.restamped.update(saved)  # orphans: no stamp now, so deleted
        self.ttl.reset(stamps)

    def keys(self) -> int:
        """Number of (record key, state name) entries in the store (with the entries of
        states no longer declared): for one state, the keys holding state (status, tests)."""
        return len(self.store) - self.stamp_entries

    @property
    def tables(self) -> dict[str, dict[Any, Any]]:
        """Every declared state as ``name -> record key -> handle form`` (a scan of the store,
        for tests and tools)."""
        out: dict[str, dict[Any, Any]] = {name: {} for name in self.kinds}
        for skey, held in self.store.items():
            if len(skey) == 2 and skey[1] in out:
                out[skey[1]][skey[0]] = self._form(skey[1], held)
        return out
