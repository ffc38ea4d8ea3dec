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
(``time``: ``event`` or ``processing``; a map: ``[[[map key, stamp ms], ...], time]``), written
with the entry. Expired entries are never returned (checked on read against the stored stamp)
and are removed by :meth:`KeyedStateBackend.sweep`, which follows the expiry timers of the
node's ``ttl`` store, so they leave the checkpointed state.

Nothing is held in memory per key beyond the store's bounded cache and, of the expiry timers,
the earliest and those registered since the last checkpoint. A restore iterates the stored
entries once (counting them, checking their kind, deleting the stamps of states that lost
their ttl) and keeps nothing; only when the ttl
declarations changed since the state was written does it pass over them again to restamp and
re-index them.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from typing import Any

from kstream.errors import UsageError
from kstream.operators.process_codec import (
    STATE_CODEC,
    StoreKey,
    kind_error,
    looks_like,
    table_form,
)
from kstream.operators.process_handles import HANDLES
from kstream.operators.process_ttl import (
    PENDING,
    WHOLE,
    StateTtl,
    TtlDeclared,
    split_namespace,
)
from kstream.state.cache import Backend, KeyValueStore
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
        self.ttl = StateTtl(ttl, (n for n, k in declared if k == "map"), self.store)
        self.timestamp = MIN_WATERMARK
        self.watermark: Callable[[], int] = lambda: MIN_WATERMARK
        self.clock: Callable[[], int] = lambda: 0

    def bind(
        self,
        store: KeyValueStore[StoreKey, Any],
        ttl_backend: Backend | None = None,
        head: int | None = None,
    ) -> None:
        """Keep the state in ``store`` (the node's default store, codec
        :data:`~kstream.operators.process_codec.STATE_CODEC`) and the TTL expiry timers over
        ``ttl_backend`` (the node's ``ttl`` store; None: in memory), at most ``head`` of them
        per domain in memory (None: the default); before any restore."""
        self.store = store
        self.ttl.bind(store, ttl_backend, head)

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
            if expired:
                self._expire(name, key, expired)
                held = self.store.get((key, name))
        return self._form(name, held)

    def write(
        self, name: str, entry: Any, written: Iterable[Any] = (), removed: Iterable[Any] = ()
    ) -> None:
        """Set the current key's entry of ``name`` to ``entry`` (its handle form; None:
        delete) and (re)stamp what was written (a map: its entries ``written``; the stamps of
        its entries ``removed`` are dropped)."""
        self._check_active(name)
        key = self.current_key
        if entry is None:
            self.store.delete((key, name))
        else:
            self.store.put((key, name), entry)
        time = self.ttl.time_of(name)
        if time is not None:
            at = self.timestamp if time == "event" else self.clock()
            self.ttl.stamp(name, key, at, entry, written, removed)

    def _expire(
        self,
        name: str,
        key: Any,
        mks: Collection[Any],
        fired: bool = False,
        stamps: dict[Any, int] | None = None,
    ) -> None:
        """Remove ``key``'s expired entry of ``name`` (``mks``: ``[WHOLE]``, or map keys),
        its stamps and their timers (``fired``: the timer fired, gone already; ``stamps``: the
        entry's, when just read)."""
        if name not in self.ttl.maps:
            self.store.delete((key, name))
            self.ttl.unstamp(name, key, (WHOLE,), fired, stamps)
            return
        entry = self._form(name, self.store.get((key, name)))
        for mk in mks if entry is not None else ():
            entry.pop(mk, None)
        if entry:
            self.store.put((key, name), entry)
            self.ttl.unstamp(name, key, mks, fired, stamps)
        else:
            self.store.delete((key, name))
            self.ttl.unstamp(name, key, (*mks, WHOLE), fired, stamps)  # its map's other stamps

    def now(self, time: str) -> int:
        """The current time of TTL domain ``time``: the watermark or the processing time."""
        return self.watermark() if time == "event" else self.clock()

    def sweep(self, time: str) -> int:
        """Remove every entry of a ``time``-domain TTL state expired now (ms: the watermark or
        the processing time) by firing its due expiry timers; returns how many. Work is
        proportional to the expired entries (and timers left by rewrites before a checkpoint
        dropped them), not to the state's size."""
        now = self.now(time)
        rules, ttl = self.ttl.rules, self.ttl
        removed = 0

        def fire(expiry: int, key: Any, ns: Any) -> None:
            nonlocal removed
            name, mk = split_namespace(ns)
            rule = rules.get(name) if name is not None else None
            if name is None or rule is None or rule[1] != time:
                return  # left by an earlier declaration
            if expiry == PENDING:
                if self._holds(name, key, mk):
                    ttl.stamp_waiting(name, key, mk, now)
                return
            stamps = ttl.stamps_of(key, name)
            at = stamps.get(mk)
            if at is not None and at + rule[0] == expiry:
                self._expire(name, key, (mk,), True, stamps)
                removed += 1

        ttl.advance(time, now, fire)
        return removed

    def _holds(self, name: str, key: Any, mk: Any) -> bool:
        """Whether ``key``'s entry of ``name`` exists (a map: holds ``mk``)."""
        held = self.store.get((key, name))
        if held is None or mk is WHOLE:
            return held is not None
        return mk in (self._form(name, held) or {})

    # -- checkpoints ----------------------------------------------------------------------

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """Each store entry changed since the last call, once: ``(store key, JSON or None =
        deleted)`` (see the module docstring; stamps included). The ``ttl`` store's changes
        are :meth:`StateTtl.changes`."""
        return self.store.changes()

    def restore(
        self,
        entries: Iterable[tuple[bytes, bytes]],
        ttl_entries: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """Start from the stored ``entries`` and ``ttl`` store entries (a store backed by
        RocksDB reads them again on demand, an in-memory store keeps them): ``entries`` are
        iterated once, keeping nothing; entries of a state no longer declared are ignored,
        stamps of a state without a ttl deleted. When the ttl declarations differ from those
        the state was written under, :meth:`_rebuild_ttl` follows.

        Raises:
            ValueError: an entry is not a process state entry, or a ``ttl`` entry not a timer.
            StateError: an entry was stored as another kind of state.
        """
        ttl = self.ttl
        ttl.stamp_entries = 0
        for skey, held in self.store.restore(entries):
            _key, name, *mark = skey
            kind = self.kinds.get(name)
            if mark:
                ttl.stamp_entries += 1
                if kind is not None and name not in ttl.rules:
                    ttl.stamp_entries -= 1
                    self.store.delete(skey)
            elif kind is not None and not looks_like(kind, held):
                raise kind_error(self.node_id, name, kind)
        if not ttl.restore(ttl_entries) and ttl.rules:
            self._rebuild_ttl()

    def _rebuild_ttl(self) -> None:
        """Restamp and re-index every entry of a TTL state, one pass over the store that keeps
        nothing in memory (the new stamps and timers wait in the store's cache and the timer
        service until the next checkpoint): a saved stamp of the state's time domain is kept
        (a changed ttl applies from it); an entry without one (a ttl added, or its ``time``
        changed) is stamped at its domain's current time, in event time before any watermark
        at the first watermark; a stamp without its entry is deleted."""
        ttl = self.ttl
        now = {time: self.now(time) for time in ttl.times}
        for skey, held in self.store.items():
            key, name, *mark = skey
            time = ttl.time_of(name)
            if time is None:
                continue
            if not mark:
                mks = list(self._form(name, held)) if name in ttl.maps else [WHOLE]
                ttl.rebuild(name, key, mks, now[time])
            elif self.store.get((key, name)) is None:
                ttl.put_stamps(key, name, {})

    def keys(self) -> int:
        """Number of (record key, state name) entries in the store (with the entries of
        states no longer declared): for one state, the keys holding state (status, tests)."""
        return len(self.store) - self.ttl.stamp_entries

    @property
    def tables(self) -> dict[str, dict[Any, Any]]:
        """Every declared state as ``name -> record key -> handle form`` (a scan of the store,
        for tests and tools)."""
        out: dict[str, dict[Any, Any]] = {name: {} for name in self.kinds}
        for skey, held in self.store.items():
            if len(skey) == 2 and skey[1] in out:
                out[skey[1]][skey[0]] = self._form(skey[1], held)
        return out
