"""The store codec of process-function state (:mod:`kstream.operators.process_state`): how a
(record key, state name) entry and its TTL stamp are keyed and encoded in the node's default
store ``op.<node-id>``.

Store keys (Python side: tuples; bytes: their JSON arrays, the format of checkpoints,
changelogs and savepoints):

- ``(record key, state name)``: the state's entry (the record key in its hashable form,
  :func:`kstream.keys.hashable`);
- ``(record key, state name, "ttl")``: its TTL stamp.

Store values are held as the handles need them, encoded at each checkpoint:

- a value state: its JSON (``bytes``);
- a list state: ``list[bytes]`` (one JSON per element), stored as the JSON array;
- a map state: ``dict[map key, bytes]``, stored as the JSON array of ``[key, value]`` pairs;
- a stamp (:mod:`kstream.operators.process_ttl`): ``(stamp ms, time)`` for a value or list,
  ``({map key: stamp ms}, time)`` for a map (``time``: ``event`` or ``processing``), stored as
  the JSON ``[stamp ms, time]`` or ``[[[map key, stamp ms], ...], time]``; read back as those
  bytes until :func:`decode_stamp` decodes them.

Values read back from the backend (or restored) stay ``bytes`` until a handle reads them:
:func:`table_form` turns a list's or map's JSON into its list or dict (a fresh object, so the
cached bytes are decoded again until the entry is written back).
"""

from __future__ import annotations

from typing import Any

import orjson

from kstream.errors import StateError
from kstream.keys import hashable
from kstream.state.cache import Codec

#: ``(record key, state name)`` or ``(record key, state name, "ttl")``.
StoreKey = tuple[Any, ...]
#: The marker ending the store key of a TTL stamp.
TTL_MARK = "ttl"
#: A TTL stamp as held: ``(stamp ms or {map key: stamp ms}, time)``.
Stamp = tuple[Any, str]


def encode_key(key: StoreKey) -> bytes:
    """The JSON array of a store key (orjson writes tuples as arrays)."""
    return orjson.dumps(key)


def decode_key(raw: bytes) -> StoreKey:
    """A stored key back into its tuple.

    Raises:
        ValueError: not the key of a process state entry.
    """
    parts = orjson.loads(raw)
    if not isinstance(parts, list) or len(parts) not in (2, 3) or not isinstance(parts[1], str):
        raise ValueError(f"not a process state key: {bytes(raw)!r}")
    return (hashable(parts[0]), *parts[1:])


def encode_value(value: Any) -> bytes:
    """A held value as stored: bytes as they are, a list's elements or a map's pairs as one
    JSON array."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, tuple):
        return encode_stamp(value)
    if isinstance(value, list):
        return b"[" + b",".join(value) + b"]"
    pairs = (b"[" + orjson.dumps(k) + b"," + v + b"]" for k, v in value.items())
    return b"[" + b",".join(pairs) + b"]"


def decode_value(raw: bytes) -> Any:
    """A stored value, held as its bytes (decoded by :func:`table_form` or
    :func:`decode_stamp` when read)."""
    return bytes(raw)


def encode_stamp(stamp: Stamp) -> bytes:
    """A held TTL stamp as stored (see the module docstring)."""
    at, time = stamp
    if isinstance(at, dict):
        return orjson.dumps([[[mk, ms] for mk, ms in at.items()], time])
    return orjson.dumps([at, time])


def decode_stamp(raw: bytes) -> Stamp | None:
    """A stored TTL stamp back into its held form (a map's keys hashable); None when it is
    not one (a foreign or damaged entry counts as no stamp)."""
    try:
        at, time = orjson.loads(raw)
        if isinstance(at, list):
            return {hashable(mk): int(ms) for mk, ms in at}, str(time)
    except (ValueError, TypeError):
        return None
    return (at, str(time)) if isinstance(at, int) else None


#: The codec of a process node's default store.
STATE_CODEC: Codec[StoreKey, Any] = Codec(encode_key, decode_key, encode_value, decode_value)


def kind_error(node_id: str, name: str, kind: str) -> StateError:
    """The error of a stored entry of state ``name`` that is not a ``kind``."""
    return StateError(
        f"process '{node_id}': the stored state '{name}' is not a {kind}: its "
        "declaration changed since the state was written; start from a savepoint of "
        "the old pipeline (which checks it) or in a new group"
    )


def looks_like(kind: str, raw: bytes) -> bool:
    """A cheap check that ``raw`` (a stored entry) was written as a ``kind`` (list and map
    entries are JSON arrays, a map's of arrays); :func:`table_form` checks fully."""
    if kind == "value":
        return True
    if kind == "list":
        return raw[:1] == b"["
    return raw == b"[]" or raw[:2] == b"[["


def table_form(node_id: str, name: str, kind: str, held: Any) -> Any:
    """A held entry of state ``name`` in the form the handles use (see the module docstring):
    bytes for a value; list and map bytes decoded into a new list or dict.

    Raises:
        StateError: the entry was stored as another kind (the declaration changed).
    """
    if held is None or kind == "value" or not isinstance(held, bytes):
        return held
    stored = orjson.loads(held)
    pairs = kind == "map" and all(isinstance(p, list) and len(p) == 2 for p in stored or ())
    if not isinstance(stored, list) or (kind == "map" and not pairs):
        raise kind_error(node_id, name, kind)
    if kind == "list":
        return [orjson.dumps(v) for v in stored]
    return {hashable(k): orjson.dumps(v) for k, v in stored}
