"""Time-to-live of a process function's declared state (docs/process-functions.md, "State
TTL"; Flink ``StateTtlConfig``).

A state declared with ``ttl`` stamps what is written: a value or a whole list per (record key,
state name), a map per map entry. The stamp is, in event time (``time: event``, the default),
the current record's timestamp (in ``on_timer``: the timer's), in processing time the wall
clock (epoch ms). A stamped entry is expired when ``stamp + ttl <= now``, ``now`` being the
node's watermark (event time) or the processing time. Only writes stamp (Flink
``OnCreateAndWrite``): reads do not extend the life.

:class:`StateTtl` keeps the stamps and, per time domain, a heap of expiry times so a sweep
finds the expired entries in expiry order without scanning every key (stale heap entries, left
by re-writes, are skipped; the heap is rebuilt when they outnumber the live ones). Both are held
in memory, whatever the state store (the process state itself may live in RocksDB): about one
small entry per stamped entry; they are written to the store as stamp entries at each checkpoint
and rebuilt from them on a restore.

Stored stamps (one store entry per key and state, see :mod:`kstream.operators.process_state`):
``[stamp, time]`` for a value or list, ``[[[map key, stamp], ...], time]`` for a map.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from kstream.keys import hashable

#: ``(state name, ttl ms, time)`` declarations (``time``: ``event`` or ``processing``).
TtlDeclared = tuple[tuple[str, int, str], ...]
TIMES = ("event", "processing")


class _Whole:
    """The marker of a stamp covering a key's whole entry (a value or a list)."""

    def __repr__(self) -> str:
        return "WHOLE"


#: ``mk`` of a stamp that covers the whole entry (value and list states).
WHOLE: Any = _Whole()
#: ``(state name, record key, map key or WHOLE, stamp ms)``.
Stamp = tuple[str, Any, Any, int]


def pop_entry(table: dict[Any, Any], key: Any, mk: Any) -> bool:
    """Remove ``key``'s entry of ``table`` (a value or a whole map when ``mk`` is
    :data:`WHOLE`, else map entry ``mk`` of ``table[key]``, and ``key`` once its map is empty);
    returns True when ``key`` is gone from ``table``."""
    if mk is WHOLE:
        table.pop(key, None)
        return True
    entries = table.get(key)
    if entries is not None:
        entries.pop(mk, None)
        if entries:
            return False
        del table[key]
    return True


class StateTtl:
    """The stamps of the TTL states of one process node in one task.

    Args:
        declared: ``(state name, ttl ms, time)`` for each state with a ttl.
        maps: the names of the map states (stamped per map entry).
    """

    def __init__(self, declared: TtlDeclared, maps: Iterable[str] = ()) -> None:
        self.rules: dict[str, tuple[int, str]] = {name: (ms, t) for name, ms, t in declared}
        self.maps = frozenset(maps) & set(self.rules)
        #: state name -> record key -> stamp (ms), or for a map: map key -> stamp
        self.stamps: dict[str, dict[Any, Any]] = {name: {} for name in self.rules}
        self._heaps: dict[str, list[tuple[int, int, str, Any, Any]]] = {t: [] for t in TIMES}
        self._limits = dict.fromkeys(TIMES, 1024)
        self._seq = itertools.count()

    def time_of(self, name: str) -> str | None:
        """The time domain of state ``name``'s ttl; None when it has none."""
        rule = self.rules.get(name)
        return None if rule is None else rule[1]

    def stamp(self, name: str, key: Any, at: int, mk: Any = WHOLE) -> None:
        """Stamp ``key``'s entry of TTL state ``name`` (map entry ``mk``) with ``at`` (ms)."""
        ms, time = self.rules[name]
        if mk is WHOLE:
            self.stamps[name][key] = at
        else:
            self.stamps[name].setdefault(key, {})[mk] = at
        heap = self._heaps[time]
        heapq.heappush(heap, (at + ms, next(self._seq), name, key, mk))
        if len(heap) > self._limits[time]:
            if len(heap) > 1024 + 2 * sum(1 for _ in self._live(time)):
                self._rebuild(time)
            self._limits[time] = 1024 + 2 * len(self._heaps[time])

    def stamp_of(self, name: str, key: Any, mk: Any = WHOLE) -> int | None:
        found = self.stamps[name].get(key)
        if mk is WHOLE or found is None:
            return found
        stamp: int | None = found.get(mk)
        return stamp

    def forget(self, name: str, key: Any, mk: Any = WHOLE) -> None:
        """Drop the stamp of ``key``'s entry of ``name`` (every map entry when ``mk`` is
        :data:`WHOLE`, else map entry ``mk``)."""
        table = self.stamps.get(name)
        if table is not None:
            pop_entry(table, key, mk)

    def expired(self, name: str, key: Any, now: int) -> list[Any]:
        """What of ``key``'s entry of state ``name`` is expired at ``now`` (its domain's time):
        ``[WHOLE]`` for a value or list, the expired map keys for a map; empty when nothing."""
        stamp = self.stamps.get(name, {}).get(key)
        if stamp is None:
            return []
        ms = self.rules[name][0]
        if isinstance(stamp, dict):
            return [mk for mk, at in stamp.items() if at + ms <= now]
        return [WHOLE] if stamp + ms <= now else []

    def due(self, time: str, now: int) -> Iterator[tuple[str, Any, Any]]:
        """Pop what of domain ``time`` is expired at ``now``, earliest expiry first, as
        ``(state name, record key, map key or WHOLE)``; the stamps are dropped."""
        heap = self._heaps[time]
        while heap and heap[0][0] <= now:
            expiry, _, name, key, mk = heapq.heappop(heap)
            stamp = self.stamp_of(name, key, mk)
            if stamp is not None and stamp + self.rules[name][0] == expiry:
                self.forget(name, key, mk)
                yield name, key, mk

    def reset(self, stamps: Iterable[Stamp]) -> None:
        """Replace every stamp by ``stamps`` (a restore)."""
        self.stamps = {name: {} for name in self.rules}
        self._heaps = {t: [] for t in TIMES}
        for name, key, mk, at in stamps:
            self.stamp(name, key, at, mk)

    def encode(self, name: str, key: Any) -> bytes | None:
        """The stored stamp of ``key``'s entry of ``name`` (see the module docstring); None
        when it has none."""
        stamp = self.stamps.get(name, {}).get(key)
        if stamp is None:
            return None
        if isinstance(stamp, dict):
            stamp = [[mk, at] for mk, at in stamp.items()]
        return orjson.dumps([stamp, self.time_of(name)])

    def _live(self, time: str) -> Iterator[tuple[int, str, Any, Any]]:
        """``(expiry, name, key, mk)`` of every stamp of domain ``time``."""
        for name, table in self.stamps.items():
            ms, domain = self.rules[name]
            if domain != time:
                continue
            for key, stamp in table.items():
                if isinstance(stamp, dict):
                    yield from ((at + ms, name, key, mk) for mk, at in stamp.items())
                else:
                    yield stamp + ms, name, key, WHOLE

    def _rebuild(self, time: str) -> None:
        heap = [(exp, next(self._seq), name, key, mk) for exp, name, key, mk in self._live(time)]
        heapq.heapify(heap)
        self._heaps[time] = heap


def restored_stamps(
    ttl: StateTtl, name: str, key: Any, entry: Any, saved: Any
) -> tuple[list[Stamp], list[Any]]:
    """The stamps of a restored entry of state ``name`` (``entry``: its table form) from its
    ``saved`` stamp (decoded ``[stamp, time]`` or None): ``(stamps to keep, map keys or
    [WHOLE] left to stamp now)``. A saved stamp of another time domain counts as none."""
    time = ttl.time_of(name)
    if saved is None or saved[1] != time:
        return [], list(entry) if name in ttl.maps else [WHOLE]
    stamp = saved[0]
    if name not in ttl.maps:
        if isinstance(stamp, int):
            return [(name, key, WHOLE, stamp)], []
        return [], [WHOLE]
    by_mk = {hashable(mk): int(at) for mk, at in stamp} if isinstance(stamp, list) else {}
    kept = [(name, key, mk, by_mk[mk]) for mk in entry if mk in by_mk]
    return kept, [mk for mk in entry if mk not in by_mk]
