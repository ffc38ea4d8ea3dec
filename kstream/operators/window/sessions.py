"""The open sessions of each key of a session window, kept in the window's own store.

Merging needs the sessions of the record's key (Flink's ``MergingWindowSet``, which Flink keeps
per key in keyed state). The window store cannot be searched by key: its keys begin with the
window's end and start (:func:`~kstream.operators.window.base.encode_window_key`, for
time-ordered scans). So each key with open sessions has one more entry in the store, its
*index entry*: id ``(key, MIN_WATERMARK, MIN_WATERMARK)`` (no window has it: a window ends
after it starts; encoded, 16 zero bytes then the JSON key, so every index entry sorts before
every window and the record key sits where the windows' does, for routing), value
``{"sessions": [[start, end], ...]}`` (a window's value is a JSON array). Reading a key's
sessions is one point read of the store (its cache, else a RocksDB get); nothing per key stays
in memory beyond the cache. Like the windows, the entries are checkpointed, restored and saved
with the store.

The order of a key's sessions is the order they were opened or merged (a merged session comes
last); it decides the order of the retractions and accumulator merges of a later merge, so it
is kept as it was across a restore. State written before the index existed has no index
entries: :meth:`SessionIndex.rebuild` derives them from one scan of the windows, in store order.
"""

from __future__ import annotations

from typing import Any

import orjson

from kstream.operators.window.base import MIN_WATERMARK, WindowId
from kstream.state.cache import KeyValueStore

#: The first 16 bytes of the store key of every index entry.
INDEX_KEY_PREFIX = bytes(16)


class Sessions(list[tuple[int, int]]):
    """The value of an index entry: ``(start, end)`` of each open session of the key (ms)."""


def index_id(key: Any) -> WindowId:
    """The store id of ``key``'s index entry."""
    return key, MIN_WATERMARK, MIN_WATERMARK


def is_index(wid: WindowId) -> bool:
    """Whether store id ``wid`` is an index entry rather than a window."""
    return wid[2] == MIN_WATERMARK


def is_index_key(raw: bytes) -> bool:
    """Whether the encoded store key ``raw`` is an index entry's (savepoint tools)."""
    return raw[:16] == INDEX_KEY_PREFIX


def encode_sessions(sessions: Sessions) -> bytes:
    """``{"sessions": [[start, end], ...]}``."""
    return orjson.dumps({"sessions": sessions})


def decode_sessions(raw: bytes) -> Sessions | None:
    """The sessions of an index entry's value; None when ``raw`` is a window's value."""
    if raw[:1] != b"{":
        return None
    return Sessions((int(s), int(e)) for s, e in orjson.loads(raw)["sessions"])


class SessionIndex:
    """The index entries of one session window operator in its ``store`` (see the module
    docstring).

    Attributes:
        count: index entries in the store (keys with open sessions).
    """

    def __init__(self, store: KeyValueStore[WindowId, Any]) -> None:
        self.store = store
        self.count = 0

    def of(self, key: Any) -> list[WindowId]:
        """The ids of ``key``'s open sessions, oldest first."""
        sessions = self.store.get(index_id(key))
        return [] if sessions is None else [(key, s, e) for s, e in sessions]

    def replace(self, key: Any, before: list[WindowId], after: list[WindowId]) -> None:
        """``key``'s sessions were ``before`` (from :meth:`of`) and are now ``after``: write
        its index entry (deleted when ``after`` is empty)."""
        ident = index_id(key)
        if after:
            self.store.put(ident, Sessions((s, e) for _, s, e in after))
        elif before:
            self.store.delete(ident)
        self.count += bool(after) - bool(before)

    def remove(self, wid: WindowId) -> None:
        """Session ``wid`` was purged."""
        before = self.of(wid[0])
        self.replace(wid[0], before, [w for w in before if w != wid])

    def rebuild(self) -> None:
        """Derive every index entry from the windows in the store (state written before the
        index existed): one scan; the entries are written at the next checkpoint."""
        self.count = 0
        for wid, _entry in self.store.items():
            if not is_index(wid):
                before = self.of(wid[0])
                self.replace(wid[0], before, [*before, wid])
