"""The keyed event-time window operator: tumbling, sliding and session windows.

Semantics (Flink DataStream ``WindowOperator`` with ``EventTimeTrigger``; DESIGN.md section 2):

- windows are half-open ``[start, end)`` in epoch ms (:mod:`kstream.operators.window.assign`);
- a window fires when ``watermark >= end - 1``; its result carries timestamp ``end - 1``;
- an element is late for a window iff ``end - 1 + allowed_lateness <= watermark``; it is dropped
  (and reported through :attr:`WindowOperator.late`) iff it is late for every window it belongs
  to; a late-but-allowed element updates its window and re-fires it immediately;
- window state is purged when ``watermark >= end - 1 + allowed_lateness``;
- sessions ``[first_ts, last_ts + gap)`` merge when they overlap or touch, also when a late (but
  allowed) element bridges two of them;
- early firing (``trigger``) emits partial results of windows that have not fired yet;
- ``accumulation: discarding`` (Flink ``PurgingTrigger``): every firing (early, on-time, late)
  purges the window's contents; the window itself (its bounds and timers, a session's extent
  for merging) lives on until it is purged, so a late-but-allowed element re-fires it with only
  the elements added since its last firing, and a window with nothing new does not fire (as
  Flink skips a window whose contents are empty). Nothing is retracted: ``changelog`` rows are
  all ``+I`` and merged-away sessions get no ``-D``/tombstone.

The operator is pure: it returns what it emits as ``(key, value, timestamp_ms)`` tuples and never
does I/O. Its state is the node's default state store (:mod:`kstream.state.cache`: RocksDB
behind a bounded cache when the task has local state, else in memory), one entry per window
keyed by the window id ``(key, start, end)``: ``[accumulator, last emitted result or None,
elements since the last emission, emptied by a discarding firing]``; session windows add one
entry per key with open sessions, the list of its sessions
(:mod:`kstream.operators.window.sessions`). Every change is written back with ``put``;
:meth:`changes` is the store's. Nothing per key or window stays in memory beyond the store's
cache and the timers, a :class:`~kstream.time.timers.TimerService` (namespace = the window's
``(start, end)``) checkpointed as the node's ``timers`` store, which over RocksDB keeps only the
earliest timers and those registered since the last checkpoint in memory:

- event-time timers: a window's firing and cleanup timers (below);
- processing-time timers (``trigger: {every: D}``, Flink ``ContinuousProcessingTimeTrigger``):
  the first element a window gets since its last emission registers a timer at the next
  multiple of ``D``; when it fires the window emits if it still has unemitted elements (the
  count in its entry) and has not been purged or merged away, else the timer is ignored;
- ``trigger: {count: N}`` counts the elements since the last emission in the window's entry.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any, cast

import orjson

from kstream.operators.aggregations import Aggregator, from_storable, to_storable
from kstream.operators.base import OperatorContext
from kstream.operators.window.assign import (
    cumulate_windows,
    intersects,
    sliding_windows,
    window_start,
)
from kstream.operators.window.base import (
    MAX_WATERMARK,
    MIN_WATERMARK,
    LateRecord,
    Record,
    WindowId,
    WindowOperator,
    decode_window_key,
    encode_window_key,
    window_key_text,
)
from kstream.operators.window.sessions import (
    SessionIndex,
    Sessions,
    decode_sessions,
    encode_sessions,
    is_index,
)
from kstream.pipeline.spec import WindowSpec
from kstream.state.cache import Codec, KeyValueStore
from kstream.time.timers import TimerService

__all__ = [
    "MAX_WATERMARK",
    "MIN_WATERMARK",
    "LateRecord",
    "Record",
    "TimeWindowOperator",
    "WindowId",
    "WindowOperator",
    "decode_window_key",
    "encode_window_key",
]


class TimeWindowOperator(WindowOperator):
    """Tumbling, sliding or session windows of one task (see the module docstring).

    Args:
        spec: the window's spec (type, sizes in ms, lateness, emit mode, trigger).
        aggregator: the compiled aggregations.
        clock: processing time in epoch ms (for ``trigger: {every: ...}``).

    Attributes:
        store: the window entries by window id (in memory until :meth:`bind`).
    """

    #: per window (key, namespace ``(start, end)``): a firing timer at ``end - 1`` while the
    #: watermark is before it, a cleanup timer at ``end - 1 + allowed_lateness``, and under
    #: ``trigger: {every: ...}`` a processing-time timer while it has unemitted elements; in
    #: memory until :meth:`bind`, a :meth:`restore` replaces its timers
    timers: TimerService

    def __init__(
        self, spec: WindowSpec, aggregator: Aggregator, clock: Callable[[], int] | None = None
    ) -> None:
        self.codec: Codec[WindowId, list[Any]] = Codec(
            encode_window_key, decode_window_key, self._encode_entry, self._decode_entry
        )
        self.store: KeyValueStore[WindowId, list[Any]] = KeyValueStore(self.codec)
        self.timers = TimerService()
        #: session windows: each key's open sessions, in the store (None: other windows)
        self.sessions: SessionIndex | None = None
        super().__init__(spec, aggregator, clock)
        self.lateness = spec.allowed_lateness_ms
        self.discarding = spec.accumulation == "discarding"
        self.track_emitted = not self.discarding and (
            self.mode == "changelog" or (self.mode == "update" and spec.type == "session")
        )
        self.process = self._select_process()

    def _reset(self) -> None:
        super()._reset()
        if self.spec.type == "session":
            self.sessions = SessionIndex(self.store)

    def bind(self, ctx: OperatorContext) -> None:
        """As :meth:`WindowOperator.bind`; the timers over the node's ``timers`` store too
        (its earliest timers in memory, the others in RocksDB)."""
        super().bind(ctx)
        self.timers = TimerService(ctx.timer_backend())
        if self.sessions is not None:
            self.sessions = SessionIndex(self.store)

    def _encode_entry(self, entry: list[Any]) -> bytes:
        """``[accumulator, emitted or null, since]``, plus ``true`` when emptied (a session
        index entry: :func:`~kstream.operators.window.sessions.encode_sessions`)."""
        if isinstance(entry, Sessions):
            return encode_sessions(entry)
        acc, emitted, since, empty = entry
        stored = [to_storable(self.agg, acc), emitted, since]
        if empty:
            stored.append(True)
        return orjson.dumps(stored)

    def _decode_entry(self, raw: bytes) -> list[Any]:
        sessions = decode_sessions(raw)
        if sessions is not None:
            return sessions
        stored, emitted, *rest = orjson.loads(raw)
        since = int(rest[0] or 0) if rest else 0
        return [from_storable(self.agg, stored), emitted, since, len(rest) > 1 and bool(rest[1])]

    def _select_process(self) -> Callable[[Any, Any, int, int], list[Record]]:
        if self.spec.type == "tumbling":
            return self._process_tumbling
        if self.spec.type in ("sliding", "cumulate"):
            return self._process_overlapping
        return self._process_session

    # -- timers -------------------------------------------------------------------------------

    def _register(self, wid: WindowId, wm: int) -> None:
        """Window ``wid``'s timers (Flink ``WindowOperator``: the trigger's timer at the
        window's max timestamp, the cleanup timer at max timestamp + allowed lateness; with no
        lateness they are one timer)."""
        key, start, end = wid
        timers, namespace = self.timers, (start, end)
        if end - 1 > wm and self.lateness:
            timers.register_event_time(end - 1, key, namespace)
        timers.register_event_time(end - 1 + self.lateness, key, namespace)
        self.next_timer = timers.next_event_time

    def _unregister(self, wid: WindowId) -> None:
        """Remove window ``wid``'s timers (a session merged into another)."""
        key, start, end = wid
        self.timers.delete_event_time(end - 1, key, (start, end))
        if self.lateness:
            self.timers.delete_event_time(end - 1 + self.lateness, key, (start, end))
        self.next_timer = self.timers.next_event_time

    def _create(self, wid: WindowId, wm: int) -> list[Any]:
        """A new window's entry (not yet put) with its timers registered."""
        self.store.absent(wid)
        self._register(wid, wm)
        return [self.agg.new(), None, 0, False]

    # -- records ------------------------------------------------------------------------------

    def _process_tumbling(self, key: Any, value: Any, ts: int, wm: int) -> list[Record]:
        size = self.spec.size_ms or 0
        start = window_start(ts, size, self.spec.offset_ms)
        end = start + size
        if end - 1 + self.lateness <= wm:
            self._drop(key, value, ts, start, end, wm)
            return []
        values = self.agg.extract(value)
        return self._add((key, start, end), values, value, ts, wm)

    def _overlapping(self, ts: int) -> list[tuple[int, int]]:
        """The sliding or cumulate windows that contain ``ts``."""
        spec = self.spec
        if spec.type == "cumulate":
            return cumulate_windows(ts, spec.size_ms or 0, spec.step_ms or 0, spec.offset_ms)
        return sliding_windows(ts, spec.size_ms or 0, spec.slide_ms or 0, spec.offset_ms)

    def _process_overlapping(self, key: Any, value: Any, ts: int, wm: int) -> list[Record]:
        """Sliding and cumulate windows. ``late_rule: datastream``: the element goes to every
        window still open and is late when none is; ``sql``: it is late as soon as the
        earliest-ending window has fired (Flink SQL drops it with its slice)."""
        lateness = self.lateness
        windows = self._overlapping(ts)
        open_ = [(s, e) for s, e in windows if e - 1 + lateness > wm]
        earliest = min(windows, key=lambda w: w[1])
        if not open_ or (self.spec.late_rule == "sql" and earliest not in open_):
            # the window that decided: the last that could have taken it, or the first (sql)
            start, end = earliest if open_ else max(windows, key=lambda w: w[1])
            self._drop(key, value, ts, start, end, wm)
            return []
        values = self.agg.extract(value)
        out: list[Record] = []
        for start, end in open_:
            out.extend(self._add((key, start, end), values, value, ts, wm))
        return out

    def _process_session(self, key: Any, value: Any, ts: int, wm: int) -> list[Record]:
        start, end = ts, ts + (self.spec.gap_ms or 0)
        assert self.sessions is not None
        existing = self.sessions.of(key)
        merging = [w for w in existing if intersects(w[1], w[2], start, end)]
        for w in merging:
            start, end = min(start, w[1]), max(end, w[2])
        if end - 1 + self.lateness <= wm:
            self._drop(key, value, ts, start, end, wm)
            return []
        values = self.agg.extract(value)
        wid = (key, start, end)
        if len(merging) == 1 and merging[0] == wid:
            return self._add(wid, values, value, ts, wm)
        out = self._merge(wid, merging, existing, wm)
        out.extend(self._add(wid, values, value, ts, wm))
        return out

    def _add(
        self, wid: WindowId, values: tuple[Any, ...], value: Any, ts: int, wm: int
    ) -> list[Record]:
        """Apply one element to window ``wid`` (created if new); re-fire a window that has
        already fired (late but allowed); early-fire when the trigger says so. A window exists
        exactly as long as its cleanup timer: without one it is new (no store lookup)."""
        entry = self.store.get_cached(wid)
        if entry is None:
            key, start, end = wid
            if self.timers.has_event_time(end - 1 + self.lateness, key, (start, end)):
                entry = self.store.get(wid)
        if entry is None:
            entry = self._create(wid, wm)
        self.agg.apply(entry[0], values, ts, value)
        entry[3] = False
        fire = wid[2] - 1 <= wm or (self.triggered and self._touched(wid, entry))
        self.store.put(wid, entry)
        return self._emit(wid, entry) if fire else []

    def _merge(
        self, wid: WindowId, merging: list[WindowId], existing: list[WindowId], wm: int
    ) -> list[Record]:
        """Replace the sessions ``merging`` by the new session ``wid`` holding their merged
        accumulators; returns the retractions of the merged sessions that had been emitted."""
        out: list[Record] = []
        store = self.store
        entry = self._create(wid, wm)
        acc = entry[0]
        for w in merging:
            out.extend(self._retraction(w, window_key_text(w), w[2] - 1))
            merged = store.get(w)
            if merged is not None:
                acc[:] = self.agg.merge(acc, merged[0])
                entry[2] += merged[2]  # a merged session's unemitted elements carry over
            self._unregister(w)  # its processing-time timer stays: ignored when it fires
            store.delete(w)
        if entry[2] and self.every is not None and wid[2] - 1 > wm:
            self._arm_every(wid)
        store.put(wid, entry)
        assert self.sessions is not None
        self.sessions.replace(wid[0], existing, [w for w in existing if w not in merging] + [wid])
        return out

    def _drop(self, key: Any, value: Any, ts: int, start: int, end: int, wm: int) -> None:
        self.late_count += 1
        self.late.append(LateRecord((key, value, ts, start, end, wm)))

    # -- firing -------------------------------------------------------------------------------

    def advance(self, wm: int) -> list[Record]:
        """Run the window timers up to ``wm``: fire every window with ``end - 1 <= wm`` and
        purge those with ``end - 1 + allowed_lateness <= wm``; returns the results in timer
        order (time first, :mod:`kstream.time.timers`)."""
        out: list[Record] = []
        extend, on_timer = out.extend, self.on_timer
        self.timers.advance_event_time(wm, lambda at, key, ns: extend(on_timer(at, key, ns)))
        self.next_timer = self.timers.next_event_time
        return out

    def on_timer(self, at: int, key: Any, namespace: tuple[int, int]) -> list[Record]:
        """One of the window's event-time timers fired at ``at`` (ms) for window ``namespace``
        (``(start, end)``) of ``key`` (Flink ``WindowOperator.onEventTime``): at ``end - 1``
        the window fires (unless a discarding firing left it empty), at ``end - 1 +
        allowed_lateness`` it is purged; returns the results."""
        start, end = namespace
        wid = (key, start, end)
        entry = self.store.get(wid)
        if entry is None:
            return []
        out: list[Record] = []
        if at == end - 1 and not entry[3]:
            out = self._emit(wid, entry)
        if at == end - 1 + self.lateness:
            self._purge_window(wid)
        return out

    def on_processing_time(self, now: int) -> list[Record]:
        """Processing time reached ``now`` (epoch ms): the due processing-time timers of
        ``trigger: {every: ...}`` (:meth:`on_processing_timer`); returns the results. (In a
        task the executor fires them through the node's timer service first.)"""
        out: list[Record] = []
        due = self.timers.next_processing_time
        if due is not None and due <= now:
            extend, fire = out.extend, self.on_processing_timer
            self.timers.advance_processing_time(now, lambda at, k, ns: extend(fire(at, k, ns)))
        return out

    def on_processing_timer(self, at: int, key: Any, namespace: tuple[int, int]) -> list[Record]:
        """The ``trigger: {every: ...}`` timer of window ``namespace`` (``(start, end)``) of
        ``key`` fired at ``at`` (ms): the window emits its current result if it still has
        elements since its last emission (Flink ``ContinuousProcessingTimeTrigger`` fires every
        window; kstream skips unchanged ones); a window purged or merged away meanwhile, or
        emitted since, ignores it. Returns the results."""
        start, end = namespace
        wid = (key, start, end)
        entry = self.store.get(wid)
        if entry is None or not entry[2] or entry[3]:
            return []
        return self._emit(wid, entry)

    def _arm_every(self, ident: Hashable) -> None:
        key, start, end = cast(WindowId, ident)
        self.timers.register_processing_time(self._next_multiple(), key, (start, end))

    def _purge_window(self, wid: WindowId) -> None:
        self.store.delete(wid)  # nothing is written for a window that never reached the backend
        if self.sessions is not None:
            self.sessions.remove(wid)

    def _emit(self, wid: WindowId, entry: list[Any]) -> list[Record]:
        """One firing of window ``wid`` (its current ``entry``); when discarding, its contents
        are purged after it. The entry is written back when the firing changes it."""
        key, start, end = wid
        value = {"key": key, "window_start": start, "window_end": end}
        value.update(self.agg.result(entry[0]))
        upsert_key = None if self.mode == "final" else window_key_text(wid)
        if self.discarding or entry[2]:
            entry[2] = 0  # the emission resets the count of unemitted elements
            if self.discarding:
                entry[0], entry[3] = self.agg.new(), True
            self.store.put(wid, entry)
        return self._records(wid, key, upsert_key, value, end - 1)

    # -- state --------------------------------------------------------------------------------

    def restore(
        self,
        entries: Iterable[tuple[bytes, bytes]],
        wm: int,
        timers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """Start from stored ``entries`` and the stored ``timers`` (entries of :attr:`timers`):
        a store backed by RocksDB reads the windows on demand; one scan counts them. State
        written before timers were stored (and version-1 savepoints) has none: then each
        window's timers are registered again for watermark ``wm`` and written at the next
        checkpoint. Likewise, under ``trigger: {every: ...}``, state without processing-time
        timers (written before they existed) gets one, at the next multiple of ``every``, for
        each window that has unemitted elements and has not fired; and session state without
        index entries gets them (:meth:`SessionIndex.rebuild`, a second scan).

        Raises:
            ExpressionError: when a stored accumulator does not fit the aggregations.
        """
        self._reset()
        timers_ = self.timers
        derive = not timers_.restore(timers)
        arm = self.every is not None and timers_.next_processing_time is None
        indexed = 0
        for wid, entry in self.store.restore(entries):
            if is_index(wid):
                indexed += 1
                continue
            if derive:
                self._register(wid, wm)
            if arm and entry[2] and wid[2] - 1 > wm:
                self._arm_every(wid)
        if self.sessions is not None:
            self.sessions.count = indexed
            if not indexed and len(self.store):
                self.sessions.rebuild()
        self.next_timer = timers_.next_event_time

    def open_windows(self) -> int:
        """Number of windows currently held in state."""
        return len(self.store) - (self.sessions.count if self.sessions is not None else 0)
