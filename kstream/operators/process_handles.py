"""The handles a process function gets from ``ctx.state(name)``: value, list and map state
(:class:`~kstream.api.ValueState`, :class:`~kstream.api.ListState`,
:class:`~kstream.api.MapState`) over the node's :class:`~kstream.operators.process_state.
KeyedStateBackend`, addressing its current key. Values are stored as JSON, so reads return
copies; a value that is not JSON-serialisable is a bad record (stage ``serialize``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import orjson

from kstream.api import ListState, MapState, ValueState
from kstream.errors import RecordError

if TYPE_CHECKING:
    from kstream.operators.process_state import KeyedStateBackend

_SCALARS = (str, int, float, bool, type(None))


def _json(value: Any, what: str) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError: unsupported type, nested too deep
        raise RecordError(
            "serialize",
            f"{what}: {type(value).__name__} value is not JSON-serialisable ({exc})",
        ) from exc


class _Handle:
    def __init__(self, backend: KeyedStateBackend, name: str) -> None:
        self.backend, self.name = backend, name
        self.what = f"state '{name}' of process '{backend.node_id}'"

    def _get(self) -> Any:
        return self.backend.current(self.name)

    def _set(self, entry: Any, written: Iterable[Any] = (), removed: Iterable[Any] = ()) -> None:
        self.backend.write(self.name, entry, written, removed)


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
        else:  # extended in place, then written back
            current.extend(added)
            self._set(current)

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
        else:  # updated in place, then written back
            current.update(encoded)
            self._set(current, encoded)

    def remove(self, key: Any) -> None:
        current = self._get()
        if current and key in current:
            del current[key]
            self._set(current or None, removed=(key,))

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


#: The handle class of each state kind.
HANDLES: dict[str, type[_Handle]] = {"value": _Value, "list": _List, "map": _Map}
