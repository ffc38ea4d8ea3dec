"""Keyed state of a process function: the declared value, list and map states of every key,
held as JSON, with the change set a checkpoint writes (docs/process-functions.md).

The user gets handles (:class:`~kstream.api.ValueState`, ...) that address the backend's
current key; the backend keeps, per declared state name, a dict from record key to the key's
state as JSON bytes (value: the value's JSON; list: one JSON per element; map: map key ->
value JSON), so reads return copies and a value is checked to be JSON-serialisable when it is
stored. Keeping state behind handles lets a later backend keep it in RocksDB instead.

Store entries (the node's default store ``op.<node-id>``), one per (key, state name):

- key: the JSON array ``[record key, state name]`` (savepoint re-sharding hashes the first
  element's JSON, as the repartition producer hashed the record key);
- value: the value's JSON; a list's JSON array; a map's JSON array of ``[key, value]`` pairs.
  An emptied state is a deletion.

A state declared with a ``ttl`` (:mod:`kstream.operators.process_ttl`) adds one entry per
(key, state name): key ``[record key, state name, "ttl"]``, value ``[stamp ms, time]``
(``time``: ``event`` or ``processing``; a map: ``[[[map key, stamp ms], ...], time]``).
Expired entries are never returned (checked on read) and are removed by
:meth:`KeyedStateBackend.sweep`, so they leave the checkpointed state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from kstream.api import ListState, MapState, ValueState
from kstream.errors import RecordError, StateError, UsageError
from kstream.keys import hashable
from kstream.operators.process_ttl import (
    WHOLE,
    Stamp,
    StateTtl,
    TtlDeclared,
    pop_entry,
    restored_stamps,
)
from kstream.time.valve import MIN_WATERMARK

#: ``(state name, kind)`` pairs as declared in the pipeline file.
Declared = tuple[tuple[str, str], ...]
_SCALARS = (str, int, float, bool, type(None))


def _json(value: Any, what: str) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError: unsupported type, nested too deep
        raise RecordError(
            "serialize",
            f"{what}: {type(value).__name__} value is not JSON-serialisable ({exc})",
        ) from exc


class KeyedStateBackend:
    """The declared states of one process node in one task.

    Args:
        node_id: the node's id (names it in errors).
        declared: ``(name, kind)`` pairs, kind ``value``, ``list`` or ``map``.
        ttl: ``(name, ttl ms, time)`` of the states with a time-to-live.

    The node sets ``timestamp`` (the current record's or timer's time), ``watermark`` and
    ``clock`` (callables giving the watermark and the processing time, epoch ms).
    """

    def __init__(self, node_id: str, declared: Declared, ttl: TtlDeclared = ()) -> None:
        self.node_id = node_id
        self.kinds = dict(declared)
        #: state name -> record key -> bytes (value) | list[bytes] | dict[key, bytes] (map)
        self.tables: dict[str, dict[Any, Any]] = {name: {} for name in self.kinds}
        self.dirty: set[tuple[str, Any]] = set()
        self.persisted: set[tuple[str, Any]] = set()
        #: the key ``process``/``on_timer`` runs for (None outside them)
        self.current_key: Any = None
        self.active = False
        self._handles: dict[str, Any] = {}
        self.ttl = StateTtl(ttl, maps=(n for n, k in declared if k == "map"))
        self.timestamp = MIN_WATERMARK
        self.watermark: Callable[[], int] = lambda: MIN_WATERMARK
        self.clock: Callable[[], int] = lambda: 0
        self.persisted_stamps: set[tuple[str, Any]] = set()
        #: restored event-time entries (map entries) without a stamp: ``(name, key) -> map
        #: keys or [WHOLE]``, stamped by the first watermark
        self.unstamped: dict[tuple[str, Any], list[Any]] = {}

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
        cls = {"value": _Value, "list": _List, "map": _Map}[kind]
        found = self._handles[name] = cls(self, name)
        return found

    def table(self, name: str) -> dict[Any, Any]:
        """State ``name``'s table; fails outside ``process``/``on_timer``."""
        if not self.active:
            raise UsageError(
                f"process '{self.node_id}': state '{name}' is per key; use it in process() or "
                "on_timer(), not in open()"
            )
        return self.tables[name]

    def current(self, name: str) -> Any:
        """The current key's entry of state ``name`` (None when absent or expired: an expired
        entry is removed here)."""
        table, key = self.table(name), self.current_key
        raw = table.get(key)
        time = self.ttl.time_of(name)
        if raw is not None and time is not None:
            for mk in self.ttl.expired(name, key, self.now(time)):
                self._expire(name, key, mk)
            raw = table.get(key)
        return raw

    def _expire(self, name: str, key: Any, mk: Any) -> None:
        """Remove ``key``'s expired entry of ``name`` (map entry ``mk``) and its stamp."""
        table = self.tables[name]
        self.ttl.forget(name, key, mk)
        self.dirty.add((name, key))
        if pop_entry(table, key, mk) and mk is not WHOLE:
            self.ttl.forget(name, key)  # the key's last map entry: its map's stamps too

    def changed(self, name: str, written: Iterable[Any] = ()) -> None:
        """The current key's entry of ``name`` was written (a map: its entries ``written``):
        mark it, and (re)stamp what was written."""
        key = self.current_key
        self.dirty.add((name, key))
        time = self.ttl.time_of(name)
        if time is None:
            return
        left = self.unstamped.pop((name, key), [])  # restored map entries not stamped yet
        entry = self.tables[name].get(key)
        if entry is None:
            self.ttl.forget(name, key)
            return
        at = self.timestamp if time == "event" else self.clock()
        if name in self.ttl.maps:
            written = [*(mk for mk in left if mk in entry), *written]
        for mk in written if name in self.ttl.maps else (WHOLE,):
            self.ttl.stamp(name, key, at, mk)

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
                self.dirty.add((name, key))
            self.unstamped.clear()
        removed = 0
        for name, key, mk in self.ttl.due(time, now):
            self._expire(name, key, mk)
            removed += 1
        return removed

    # -- checkpoints ----------------------------------------------------------------------

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """Each (key, state) changed since the last call, once: ``(store key, JSON or None =
        deleted)`` (see the module docstring). Clears the change set."""
        out: list[tuple[bytes, bytes | None]] = []
        for name, key in self.dirty:
            raw = self.tables[name].get(key)
            store_key = orjson.dumps([key, name])
            if raw is None:
                if (name, key) in self.persisted:
                    self.persisted.discard((name, key))
                    out.append((store_key, None))
            else:
                out.append((store_key, self._encode(self.kinds[name], raw)))
                self.persisted.add((name, key))
            self._stamp_change(name, key, raw is not None, out)
        self.dirty.clear()
        return out

    def _stamp_change(
        self, name: str, key: Any, present: bool, out: list[tuple[bytes, bytes | None]]
    ) -> None:
        """Append the change of ``key``'s stamp entry of state ``name`` to ``out``."""
        stamp = self.ttl.encode(name, key) if present else None
        stamp_key = orjson.dumps([key, name, "ttl"])
        if stamp is not None:
            out.append((stamp_key, stamp))
            self.persisted_stamps.add((name, key))
        elif (name, key) in self.persisted_stamps:
            self.persisted_stamps.discard((name, key))
            out.append((stamp_key, None))

    @staticmethod
    def _encode(kind: str, raw: Any) -> bytes:
        if kind == "value":
            return bytes(raw)
        if kind == "list":
            return b"[" + b",".join(raw) + b"]"
        pairs = (b"[" + orjson.dumps(k) + b"," + v + b"]" for k, v in raw.items())
        return b"[" + b",".join(pairs) + b"]"

    def restore(self, entries: Iterable[tuple[bytes, bytes]]) -> None:
        """Replace every state by the stored ``entries``; entries of a state no longer declared
        are dropped.

        Raises:
            ValueError: an entry is not a process state entry.
            StateError: an entry was stored as another kind of state.
        """
        self.tables = {name: {} for name in self.kinds}
        self.dirty.clear()
        self.persisted = set()
        self.persisted_stamps = set()
        stamps: dict[tuple[str, Any], list[Any]] = {}
        for raw_key, raw_value in entries:
            key, name, *ttl = orjson.loads(raw_key)
            kind = self.kinds.get(name)
            if kind is None:
                continue
            key = hashable(key)
            if ttl:
                stamps[(name, key)] = orjson.loads(raw_value)
                self.persisted_stamps.add((name, key))
                continue
            self.tables[name][key] = self._decode(name, kind, raw_value)
            self.persisted.add((name, key))
        self._restore_stamps(stamps)

    def _restore_stamps(self, saved: dict[tuple[str, Any], list[Any]]) -> None:
        """Stamp the restored entries: with their saved stamp when their ttl's time is the
        saved one; else (ttl added or its time changed) with the current time of the domain
        (event time before any watermark: the first watermark). A saved stamp of a state that
        has no ttl any more is deleted at the next checkpoint."""
        stamps: list[Stamp] = []
        self.unstamped = {}
        for name, table in self.tables.items():
            time = self.ttl.time_of(name)
            for key, entry in table.items():
                if time is None:
                    if (name, key) in saved:
                        self.dirty.add((name, key))
                    continue
                kept, left = restored_stamps(self.ttl, name, key, entry, saved.get((name, key)))
                stamps.extend(kept)
                if not left:
                    continue
                if time == "event" and self.watermark() == MIN_WATERMARK:
                    self.unstamped[(name, key)] = left
                else:
                    stamps.extend((name, key, mk, self.now(time)) for mk in left)
                    self.dirty.add((name, key))
        self.ttl.reset(stamps)

    def _decode(self, name: str, kind: str, raw: bytes) -> Any:
        """A stored entry of state ``name`` back into its table's form.

        Raises:
            StateError: the entry was stored as another kind (the declaration changed).
        """
        if kind == "value":
            return bytes(raw)
        stored = orjson.loads(raw)
        pairs = kind == "map" and all(isinstance(p, list) and len(p) == 2 for p in stored or ())
        if not isinstance(stored, list) or (kind == "map" and not pairs):
            raise StateError(
                f"process '{self.node_id}': the stored state '{name}' is not a {kind}: its "
                "declaration changed since the state was written; start from a savepoint of "
                "the old pipeline (which checks it) or in a new group"
            )
        if kind == "list":
            return [orjson.dumps(v) for v in stored]
        return {hashable(k): orjson.dumps(v) for k, v in stored}

    def keys(self) -> int:
        """Number of distinct keys holding state (tests and tools)."""
        return len({k for table in self.tables.values() for k in table})


class _Handle:
    def __init__(self, backend: KeyedStateBackend, name: str) -> None:
        self.backend, self.name = backend, name
        self.what = f"state '{name}' of process '{backend.node_id}'"

    def _get(self) -> Any:
        return self.backend.current(self.name)

    def _set(self, raw: Any, written: Iterable[Any] = ()) -> None:
        backend = self.backend
        table = backend.table(self.name)
        if raw is None:
            table.pop(backend.current_key, None)
        else:
            table[backend.current_key] = raw
        backend.changed(self.name, written)


class _Value(_Handle, ValueState):
    def value(self, default: Any = None) -> Any:
        raw = self._get()
        return default if raw is None else orjson.loads(raw)

    def update(self, value: Any) -> None:
        self._set(None if value is None else _json(value, self.what))

    def clear(self) -> None:
        self._set(None)


class _List(_Handle, ListState):
    def get(self) -> list[Any]:
        return [orjson.loads(v) for v in self._get() or ()]

    def add(self, value: Any) -> None:
        self.add_all((value,))

    def add_all(self, values: Iterable[Any]) -> None:
        added = [_json(v, self.what) for v in values]
        if not added:
            return
        current = self._get()
        if current is None:
            self._set(added)
        else:  # the backend's own list: extended in place
            current.extend(added)
            self.backend.changed(self.name)

    def update(self, values: Iterable[Any]) -> None:
        self._set([_json(v, self.what) for v in values] or None)

    def clear(self) -> None:
        self._set(None)

    def __len__(self) -> int:
        return len(self._get() or ())


class _Map(_Handle, MapState):
    def _key(self, key: Any) -> Any:
        if not isinstance(key, _SCALARS):
            raise RecordError(
                "serialize",
                f"{self.what}: a map key must be a string, number, boolean or None, got "
                f"{type(key).__name__}",
            )
        return key

    def get(self, key: Any, default: Any = None) -> Any:
        raw = (self._get() or {}).get(key)
        return default if raw is None else orjson.loads(raw)

    def put(self, key: Any, value: Any) -> None:
        self.put_all({key: value})

    def put_all(self, entries: dict[Any, Any]) -> None:
        encoded = {self._key(k): _json(v, self.what) for k, v in entries.items()}
        if not encoded:
            return
        current = self._get()
        if current is None:
            self._set(encoded, encoded)
        else:  # the backend's own dict: updated in place
            current.update(encoded)
            self.backend.changed(self.name, encoded)

    def remove(self, key: Any) -> None:
        current = self._get()
        if current and key in current:
            del current[key]
            if self.name in self.backend.ttl.maps:
                self.backend.ttl.forget(self.name, self.backend.current_key, key)
            self._set(current or None)

    def contains(self, key: Any) -> bool:
        return key in (self._get() or {})

    def keys(self) -> list[Any]:
        return list(self._get() or {})

    def values(self) -> list[Any]:
        return [orjson.loads(v) for v in (self._get() or {}).values()]

    def items(self) -> Iterator[tuple[Any, Any]]:
        for k, v in list((self._get() or {}).items()):
            yield k, orjson.loads(v)

    def is_empty(self) -> bool:
        return not self._get()

    def clear(self) -> None:
        self._set(None)
