"""A resumable scan of a state store in key order, for work too large for one step.

The end of input of a ``final`` global aggregation emits every key of its store: millions of
records, far more than one transaction or one poll interval should hold. :class:`OrderedScan`
reads the store in encoded-key order a slice at a time; its :attr:`~OrderedScan.cursor` (the
last encoded key taken) is all a checkpoint needs to resume the scan after a crash, because the
order is total and every checkpoint writes the store's changes to the backend.

Each :meth:`~OrderedScan.take` seeks the backend afresh (RocksDB: one seek), so no iterator
lives across checkpoints or a task's close. Entries created since the last checkpoint are not
in the backend yet: their keys are encoded and sorted once, when the scan starts, and merged
into the backend's order; a key found in both (checkpointed meanwhile) is taken once.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Any, Generic, TypeVar

from kstream.state.cache import KeyValueStore

K = TypeVar("K")
V = TypeVar("V")


class OrderedScan(Generic[K, V]):
    """Every live entry of ``store``, in encoded-key order, after ``cursor``.

    Args:
        store: the store to scan (entries must not be created behind the cursor meanwhile).
        cursor: the encoded key to resume after (None: from the first key).

    Attributes:
        cursor: the encoded key of the last entry taken (None before any).
        done: True once a :meth:`take` found nothing more.
    """

    def __init__(self, store: KeyValueStore[K, V], cursor: bytes | None = None) -> None:
        self.store = store
        self.cursor = cursor
        self.done = False
        encode = store.codec.encode_key
        pending = sorted((bytes(encode(key)), key) for key in store.cache_only())
        self._raw = [raw for raw, _ in pending]
        self._keys = [key for _, key in pending]

    def take(self, most: int) -> list[tuple[bytes, K, V]]:
        """Up to ``most`` entries ``(encoded key, key, value)`` after :attr:`cursor`, which
        moves to the last of them; an empty list when the scan is done."""
        out: list[tuple[bytes, K, V]] = []
        store, after = self.store, self.cursor
        raw, keys = self._raw, self._keys
        i = 0 if after is None else bisect_right(raw, after)
        backend = iter(self._committed(after))
        committed = next(backend, None)
        decode_key = store.codec.decode_key
        while len(out) < most:
            if committed is not None and (i >= len(raw) or committed[0] <= raw[i]):
                key_raw, value_raw = committed
                if i < len(raw) and raw[i] == key_raw:
                    i += 1  # checkpointed since the scan started: one entry
                committed = next(backend, None)
                key = decode_key(key_raw)
                value = store.current(key, value_raw)
            elif i < len(raw):
                key_raw, key = raw[i], keys[i]
                i += 1
                value = store.get(key)
            else:
                self.done = True
                break
            if value is not None:
                out.append((key_raw, key, value))
        if out:
            self.cursor = out[-1][0]
        return out

    def _committed(self, after: bytes | None) -> Any:
        """The backend's entries after ``after`` (none without a backend)."""
        backend = self.store.backend
        if backend is None:
            return ()
        entries = backend.items(from_key=after)
        if after is None:
            return entries
        return (entry for entry in entries if entry[0] != after)
