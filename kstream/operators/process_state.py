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
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from kstream.api import ListState, MapState, ValueState
from kstream.errors import RecordError, StateError, UsageError
from kstream.keys import hashable

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
    """

    def __init__(self, node_id: str, declared: Declared) -> None:
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

    def changed(self, name: str) -> None:
        self.dirty.add((name, self.current_key))

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
                continue
            out.append((store_key, self._encode(self.kinds[name], raw)))
            self.persisted.add((name, key))
        self.dirty.clear()
        return out

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
        for raw_key, raw_value in entries:
            key, name = orjson.loads(raw_key)
            kind = self.kinds.get(name)
            if kind is None:
                continue
            key = hashable(key)
            self.tables[name][key] = self._decode(name, kind, raw_value)
            self.persisted.add((name, key))

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
        return self.backend.table(self.name).get(self.backend.current_key)

    def _set(self, raw: Any) -> None:
        backend = self.backend
        table = backend.table(self.name)
        if raw is None:
            table.pop(backend.current_key, None)
        else:
            table[backend.current_key] = raw
        backend.changed(self.name)


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
            self._set(encoded)
        else:  # the backend's own dict: updated in place
            current.update(encoded)
            self.backend.changed(self.name)

    def remove(self, key: Any) -> None:
        current = self._get()
        if current and key in current:
            del current[key]
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
