"""The keyed window operator: assigns records to windows, fires, handles lateness, keeps state.

Semantics (Flink DataStream ``WindowOperator`` with ``EventTimeTrigger``; DESIGN.md section 2):

- a window fires when ``watermark >= end - 1``; its result carries timestamp ``end - 1``;
- an element is late for a window iff ``end - 1 + allowed_lateness <= watermark``; it is dropped
  (and reported through :attr:`WindowOperator.late`) iff it is late for every window it belongs
  to; a late-but-allowed element updates its window and re-fires it immediately;
- window state is purged when ``watermark >= end - 1 + allowed_lateness``.

The operator is pure: it returns what it emits as ``(key, value, timestamp_ms)`` tuples and never
does I/O. Its state is an in-memory write-back map; :meth:`changes` yields each key changed since
the last checkpoint once, and :meth:`restore` rebuilds the map and the timers.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any

import orjson

from kstream.aggregations import Aggregator, from_storable, to_storable
from kstream.spec import WindowSpec
from kstream.windows import intersects, sliding_windows

Record = tuple[Any, Any, int]
WindowId = tuple[Any, int, int]  # (key, start, end)
MIN_WATERMARK = -(2**63)
MAX_WATERMARK = 2**63 - 1
_BIAS = 2**63


def encode_window_key(wid: WindowId) -> bytes:
    """State-store key: big-endian ``end``, ``start`` (biased so negatives sort first), then the
    JSON-encoded record key. Time-ordered scans therefore walk windows by end."""
    key, start, end = wid
    return (end + _BIAS).to_bytes(8, "big") + (start + _BIAS).to_bytes(8, "big") + orjson.dumps(key)


def decode_window_key(raw: bytes) -> WindowId:
    """Inverse of :func:`encode_window_key`."""
    end = int.from_bytes(raw[:8], "big") - _BIAS
    start = int.from_bytes(raw[8:16], "big") - _BIAS
    return _hashable(orjson.loads(raw[16:])), start, end


def _hashable(key: Any) -> Any:
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    if isinstance(key, dict):
        return orjson.dumps(key, option=orjson.OPT_SORT_KEYS).decode()
    return key


class LateRecord(tuple):  # type: ignore[type-arg]
    """``(key, value, timestamp_ms, window_start, window_end, watermark)`` of a dropped element."""


class WindowOperator:
    """One keyed window operator of one task.

    Args:
        spec: the window's spec (type, sizes in ms, lateness, emit mode).
        aggregator: the compiled aggregations.

    Attributes:
        late: dropped elements since the caller last cleared it (:class:`LateRecord` tuples).
        late_count: total dropped elements (never reset).
        next_timer: the smallest watermark at which :meth:`advance` has work to do.
    """

    def __init__(self, spec: WindowSpec, aggregator: Aggregator) -> None:
        self.spec = spec
        self.id = spec.id
        self.agg = aggregator
        self.lateness = spec.allowed_lateness_ms
        self.late: list[LateRecord] = []
        self.late_count = 0
        self.process = self._select_process()
        self._reset()

    def _reset(self) -> None:
        self.windows: dict[WindowId, list[Any]] = {}
        self.sessions: dict[Any, list[WindowId]] = {}
        self.dirty: set[WindowId] = set()
        self.emitted: dict[WindowId, dict[str, Any]] = {}
        self._fire: dict[int, list[WindowId]] = {}
        self._purge: dict[int, list[WindowId]] = {}
        self._heap: list[int] = []
        self.next_timer = MAX_WATERMARK

    def _select_process(self) -> Any:
        if self.spec.type == "tumbling":
            return self._process_tumbling
        if self.spec.type == "sliding":
            return self._process_sliding
        return self._process_session

    # -- timers -------------------------------------------------------------------------------

    def _schedule(self, table: dict[int, list[WindowId]], at: int, wid: WindowId) -> None:
        bucket = table.get(at)
        if bucket is None:
            table[at] = [wid]
            other = self._purge if table is self._fire else self._fire
            if at not in other:
                heapq.heappush(self._heap, at)
            if at < self.next_timer:
                self.next_timer = at
        else:
            bucket.append(wid)

    def _create(self, wid: WindowId, wm: int) -> list[Any]:
        acc = self.agg.new()
        self.windows[wid] = acc
        end = wid[2]
        if end - 1 > wm:
            self._schedule(self._fire, end - 1, wid)
        self._schedule(self._purge, end - 1 + self.lateness, wid)
        return acc

    # -- records ------------------------------------------------------------------------------

    def _process_tumbling(self, key: Any, value: Any, ts: int, wm: int) -> list[Record]:
        size = self.spec.size_ms or 0
        start = ts - (ts - self.spec.offset_ms) % size
        end = start + size
        if end - 1 + self.lateness <= wm:
            self._drop(key, value, ts, start, end, wm)
            return []
        wid = (key, start, end)
        acc = self.windows.get(wid)
        if acc is None:
            acc = self._create(wid, wm)
        self.agg.add(acc, value, ts)
        self.dirty.add(wid)
        if end - 1 <= wm:
            return self._emit(wid, acc)
        return []

    def _process_sliding(self, key: Any, value: Any, ts: int, wm: int) -> list[Record]:
        spec = self.spec
        out: list[Record] = []
        assigned = False
        windows = sliding_windows(ts, spec.size_ms or 0, spec.slide_ms or 0, spec.offset_ms)
        for start, end in windows:
            if end - 1 + self.lateness <= wm:
                continue
            assigned = True
            wid = (key, start, end)
            acc = self.windows.get(wid)
            if acc is None:
                acc = self._create(wid, wm)
            self.agg.add(acc, value, ts)
            self.dirty.add(wid)
            if end - 1 <= wm:
                out.extend(self._emit(wid, acc))
        if not assigned:
            start, end = windows[-1][0], windows[0][1]
            self._drop(key, value, ts, start, end, wm)
        return out

    def _process_session(self, key: Any, value: Any, ts: int, wm: int) -> list[Record]:
        start, end = ts, ts + (self.spec.gap_ms or 0)
        existing = self.sessions.get(key, [])
        merging = [w for w in existing if intersects(w[1], w[2], start, end)]
        for w in merging:
            start, end = min(start, w[1]), max(end, w[2])
        if end - 1 + self.lateness <= wm:
            self._drop(key, value, ts, start, end, wm)
            return []
        out: list[Record] = []
        wid = (key, start, end)
        if len(merging) == 1 and merging[0] == wid:
            acc = self.windows[wid]
        else:
            out.extend(self._retract_merged(merging))
            acc = self._create(wid, wm)
            for w in merging:
                acc[:] = self.agg.merge(acc, self._remove(w))
            self.sessions[key] = [w for w in existing if w not in merging] + [wid]
        self.agg.add(acc, value, ts)
        self.dirty.add(wid)
        if end - 1 <= wm:
            out.extend(self._emit(wid, acc))
        return out

    def _retract_merged(self, merged: list[WindowId]) -> list[Record]:
        if self.spec.emit != "changelog":
            return []
        out: list[Record] = []
        for w in merged:
            previous = self.emitted.pop(w, None)
            if previous is not None:
                out.append(self._changelog_row(w, previous, "-D"))
        return out

    def _remove(self, wid: WindowId) -> list[Any]:
        acc = self.windows.pop(wid)
        self.dirty.add(wid)
        return acc

    def _drop(self, key: Any, value: Any, ts: int, start: int, end: int, wm: int) -> None:
        self.late_count += 1
        self.late.append(LateRecord((key, value, ts, start, end, wm)))

    # -- firing -------------------------------------------------------------------------------

    def advance(self, wm: int) -> list[Record]:
        """Fire every window with ``end - 1 <= wm`` and purge those with
        ``end - 1 + allowed_lateness <= wm``; returns the results in timer order."""
        out: list[Record] = []
        heap = self._heap
        while heap and heap[0] <= wm:
            at = heapq.heappop(heap)
            for wid in self._fire.pop(at, ()):
                acc = self.windows.get(wid)
                if acc is not None:
                    out.extend(self._emit(wid, acc))
            for wid in self._purge.pop(at, ()):
                if wid in self.windows:
                    self._purge_window(wid)
        self.next_timer = heap[0] if heap else MAX_WATERMARK
        return out

    def _purge_window(self, wid: WindowId) -> None:
        del self.windows[wid]
        self.dirty.add(wid)
        self.emitted.pop(wid, None)
        if self.spec.type == "session":
            remaining = [w for w in self.sessions.get(wid[0], []) if w != wid]
            if remaining:
                self.sessions[wid[0]] = remaining
            else:
                self.sessions.pop(wid[0], None)

    def _emit(self, wid: WindowId, acc: list[Any]) -> list[Record]:
        key, start, end = wid
        value = {"key": key, "window_start": start, "window_end": end}
        value.update(self.agg.result(acc))
        mode = self.spec.emit
        if mode == "final":
            return [(key, value, end - 1)]
        if mode == "update":
            return [(_window_key(wid), value, end - 1)]
        previous = self.emitted.get(wid)
        self.emitted[wid] = value
        if previous is None:
            return [self._changelog_row(wid, value, "+I")]
        return [self._changelog_row(wid, previous, "-U"), self._changelog_row(wid, value, "+U")]

    def _changelog_row(self, wid: WindowId, value: dict[str, Any], op: str) -> Record:
        row = dict(value)
        row["op"] = op
        return (_window_key(wid), row, wid[2] - 1)

    # -- state --------------------------------------------------------------------------------

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """Each window changed since the last call, once: ``(store key, JSON value or None)``
        where None is a deletion. Clears the change set."""
        out: list[tuple[bytes, bytes | None]] = []
        for wid in self.dirty:
            acc = self.windows.get(wid)
            if acc is None:
                out.append((encode_window_key(wid), None))
            else:
                stored = [to_storable(self.agg, acc), self.emitted.get(wid)]
                out.append((encode_window_key(wid), orjson.dumps(stored)))
        self.dirty.clear()
        return out

    def discard_changes(self) -> None:
        """Forget the change set (after a restore)."""
        self.dirty.clear()

    def restore(self, entries: Iterable[tuple[bytes, bytes]], wm: int) -> None:
        """Replace the state with stored ``entries`` and rebuild timers for watermark ``wm``.

        Raises:
            ExpressionError: when a stored accumulator does not fit the aggregations.
        """
        self._reset()
        for raw_key, raw_value in entries:
            wid = decode_window_key(raw_key)
            stored, emitted = orjson.loads(raw_value)
            self._create(wid, wm)
            self.windows[wid] = from_storable(self.agg, stored)
            if emitted is not None:
                self.emitted[wid] = emitted
            if self.spec.type == "session":
                self.sessions.setdefault(wid[0], []).append(wid)
        self.dirty.clear()

    def open_windows(self) -> int:
        """Number of windows currently held in state."""
        return len(self.windows)


def _window_key(wid: WindowId) -> str:
    key, start, end = wid
    return orjson.dumps({"key": key, "window_start": start, "window_end": end}).decode()
