"""What every keyed window operator shares: state keys, emit modes, early-firing triggers.

The operators (:mod:`kstream.operators.window.operator` for tumbling, sliding and session windows,
:mod:`kstream.operators.window.count` for count windows, :mod:`kstream.operators.window.global_agg`
for the global aggregation) derive from :class:`WindowOperator`. They are pure: ``process``
and ``advance`` return what they emit as ``(key, value, timestamp_ms)`` tuples and never do
I/O; the processing-time clock is injected.

Emit modes (DESIGN.md section 2, docs/time-and-windows.md):

- ``final``: one record per firing, keyed by the record key;
- ``update``: an upsert stream keyed by the window's identity (``{"key", "window_start",
  "window_end"}`` as JSON text; the plain key for the global aggregation); a session merged
  into another is deleted with a tombstone (value ``None``) if it had been emitted;
- ``changelog``: Flink ``RowKind`` rows with an ``op`` field: ``+I`` on the first emission,
  ``-U`` (previous row) then ``+U`` on every later one, ``-D`` for a merged-away session.

With ``accumulation: discarding`` every firing is a pane (the elements since the window's
previous firing): the output is append-only, so operators do not track emitted rows and nothing
is retracted (``changelog`` rows are all ``+I``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import Any

import orjson

from kstream.keys import hashable
from kstream.operators.aggregations import Aggregator
from kstream.operators.base import OperatorContext
from kstream.pipeline.spec import WindowSpec
from kstream.state.cache import Codec, KeyValueStore
from kstream.time.timers import TimerService

Record = tuple[Any, Any, int]
WindowId = tuple[Any, int, int]  # (key, start, end)
MIN_WATERMARK = -(2**63)
MAX_WATERMARK = 2**63 - 1
#: ``next_timer`` of an operator without event-time timers: no watermark reaches it.
NEVER = 2**63
_BIAS = 2**63


def encode_window_key(wid: WindowId) -> bytes:
    """State-store key: big-endian ``end``, ``start`` (biased so negatives sort first), then the
    JSON-encoded record key. Time-ordered scans therefore walk windows by end. Per-key state
    (count windows, global aggregation) uses fixed ``start``/``end`` values."""
    key, start, end = wid
    return (end + _BIAS).to_bytes(8, "big") + (start + _BIAS).to_bytes(8, "big") + orjson.dumps(key)


def decode_window_key(raw: bytes) -> WindowId:
    """Inverse of :func:`encode_window_key` (JSON lists come back as tuples)."""
    end = int.from_bytes(raw[:8], "big") - _BIAS
    start = int.from_bytes(raw[8:16], "big") - _BIAS
    return hashable(orjson.loads(raw[16:])), start, end


def window_key_text(wid: WindowId) -> str:
    """The upsert key of a window result: ``{"key", "window_start", "window_end"}`` as JSON."""
    key, start, end = wid
    return orjson.dumps({"key": key, "window_start": start, "window_end": end}).decode()


class EntryField:
    """One field of every entry of a store, as a mapping (``get``, ``[key] = value``, ``pop``):
    lets the shared emit-mode code keep, e.g., a window's last emitted result inside the
    window's own store entry instead of a dict in memory. Writing puts the entry back."""

    def __init__(self, store: KeyValueStore[Any, list[Any]], index: int) -> None:
        self.store, self.index = store, index

    def get(self, key: Any, default: Any = None) -> Any:
        entry = self.store.get(key)
        if entry is None:
            return default
        value = entry[self.index]
        return default if value is None else value

    def __setitem__(self, key: Any, value: Any) -> None:
        entry = self.store.get(key)
        if entry is not None:
            entry[self.index] = value
            self.store.put(key, entry)

    def pop(self, key: Any, default: Any = None) -> Any:
        entry = self.store.get(key)
        if entry is None or entry[self.index] is None:
            return default
        value = entry[self.index]
        entry[self.index] = None
        self.store.put(key, entry)
        return value


class LateRecord(tuple):
    """``(key, value, timestamp_ms, window_start, window_end, watermark)`` of a dropped element.

    ``window_start``/``window_end`` name the element's window (sliding windows: the one with the
    latest end, the last that could still have accepted it); ``watermark`` is the operator's
    watermark at the drop.
    """


class WindowOperator:
    """Base of the keyed window operators of one task.

    Args:
        spec: the window's spec.
        aggregator: the compiled aggregations.
        clock: processing time in epoch ms (for ``trigger: {every: ...}``).

    Attributes:
        id: the operator id (names its state store).
        late: dropped elements since the caller last cleared it (:class:`LateRecord` tuples).
        late_count: total dropped elements (never reset).
        next_timer: the smallest watermark (ms) at which :meth:`advance` has work to do.
        timers: the operator's persistent event-time and processing-time timers (None: count
            windows and the global aggregation fire on counts, at the end of input and at
            their own ``every`` deadline, without timers).
    """

    timers: TimerService | None = None
    #: the operator's default store and its codec (subclasses set both before ``__init__``)
    store: KeyValueStore[Any, Any]
    codec: Codec[Any, Any]
    #: where a store entry keeps the last emitted result (None: the operator does not track it)
    emitted_field: int | None = 1
    #: whether a changelog firing whose result equals the last emitted one writes nothing (the
    #: global aggregation, as Flink's GroupAggFunction; a time window's on-time firing always
    #: writes)
    skip_unchanged: bool = False

    def __init__(
        self, spec: WindowSpec, aggregator: Aggregator, clock: Callable[[], int] | None = None
    ) -> None:
        self.spec = spec
        self.id = spec.id
        self.agg = aggregator
        self.mode = spec.emit
        self.clock = clock or (lambda: 0)
        self.late: list[LateRecord] = []
        self.late_count = 0
        self.every = spec.trigger_every_ms
        self.early_count = spec.trigger_count
        self.track_emitted = self.mode == "changelog"
        self._reset()

    def _reset(self) -> None:
        self._bind_emitted()
        self.next_timer = NEVER

    @property
    def triggered(self) -> bool:
        """True when an early-firing trigger is configured."""
        return self.every is not None or self.early_count is not None

    # -- operator interface -------------------------------------------------------------------

    def bind(self, ctx: OperatorContext) -> None:
        """Keep the operator's state in the node's default store of ``ctx`` (RocksDB behind
        the cache; called before a restore; without it the state stays in an in-memory
        store)."""
        self.store = ctx.store("", self.codec)
        self._bind_emitted()

    def _bind_emitted(self) -> None:
        """The last emitted results, read and written in the store's entries."""
        field = self.emitted_field
        self.emitted: Any = EntryField(self.store, field) if field is not None else {}

    #: ``process(key, value, ts, wm) -> results``: add one element (event time ``ts`` ms) under
    #: watermark ``wm``; returns the results it causes (late-but-allowed re-firing, early
    #: firing, count window completion). Raises RecordError when an aggregation cannot use the
    #: element (before any state changes).
    process: Callable[[Any, Any, int, int], list[Record]]

    def advance(self, wm: int) -> Iterable[Record]:
        """Run the event-time timers up to watermark ``wm``; returns the results fired (an
        iterable: consume it before the next call)."""
        return []

    #: the encoded store key after which an end-of-input scan resumes (checkpointed between
    #: slices, :mod:`kstream.runtime.ending`; only the global aggregation scans)
    end_cursor: bytes | None = None

    def end_slice(self, most: int) -> tuple[list[Record], bool]:
        """End of input for an operator without timers: the results of up to ``most`` keys and
        whether every key is out. Default: what :meth:`advance` fires at +infinity, at once."""
        return list(self.advance(MAX_WATERMARK)), True

    def on_timer(self, at: int, key: Any, namespace: Any) -> list[Record]:
        """One event-time timer of :attr:`timers` fired at ``at`` (ms); returns the results
        (operators without timers: nothing)."""
        return []

    def on_processing_timer(self, at: int, key: Any, namespace: Any) -> list[Record]:
        """One processing-time timer of :attr:`timers` fired at ``at`` (ms); returns the
        results (operators without timers: nothing)."""
        return []

    def on_processing_time(self, now: int) -> list[Record]:
        """Processing time reached ``now`` (epoch ms): the early firings of ``trigger: {every:
        ...}`` due by then; returns their results (default: none)."""
        return []

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """Each state entry changed since the last call, once: ``(store key, JSON value or
        None)`` where None is a deletion (the layout: the subclass's codec). Clears the change
        set."""
        return self.store.changes()

    @property
    def dirty(self) -> bool:
        """Whether state changed since the last :meth:`changes`."""
        return self.store.dirty

    def discard_changes(self) -> None:
        """Forget the change set (after a restore)."""
        self.changes()

    def restore(
        self,
        entries: Iterable[tuple[bytes, bytes]],
        wm: int,
        timers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """Replace the state with stored ``entries`` (from :meth:`changes`) and ``timers``
        (entries of :attr:`timers`, for operators that have them), or rebuild the timers for
        watermark ``wm``.

        Raises:
            ExpressionError: when a stored accumulator does not fit the aggregations.
        """
        raise NotImplementedError

    def open_windows(self) -> int:
        """Number of windows (or keys) currently held in state."""
        raise NotImplementedError

    # -- shared machinery ---------------------------------------------------------------------

    def _touched(self, ident: Hashable, entry: list[Any]) -> bool:
        """Count one element added to open window (or key) ``ident`` in ``entry[2]``, its
        elements since the last emission (kept in the entry, not in memory; the caller puts
        it); True when ``trigger: {count: N}`` is due (N elements). The first element since
        an emission arms ``trigger: {every: ...}`` for ``ident`` (:meth:`_arm_every`)."""
        n = entry[2] = entry[2] + 1
        if n == 1 and self.every is not None:
            self._arm_every(ident)
        return self.early_count is not None and n >= self.early_count

    def _arm_every(self, ident: Hashable) -> None:
        """``ident`` got its first element since its last emission under ``trigger: {every:
        ...}``: make it fire early at the next multiple of ``every`` of processing time."""

    def _next_multiple(self) -> int:
        """The next multiple of ``every`` ms after the clock's time, aligned to the epoch as
        Flink's ``ContinuousProcessingTimeTrigger``."""
        every = self.every or 1
        now = self.clock()
        return now - now % every + every

    def _records(
        self, ident: Hashable, key: Any, upsert_key: Any, value: dict[str, Any], ts: int
    ) -> list[Record]:
        """The output records of one firing of window ``ident`` in the operator's emit mode
        (the caller resets the window's count of unemitted elements)."""
        mode = self.mode
        if mode == "final":
            return [(key, value, ts)]
        previous = self.emitted.get(ident) if self.track_emitted else None
        if self.track_emitted:
            self.emitted[ident] = value
        if mode == "update":
            return [(upsert_key, value, ts)]
        if previous is None:
            return [(upsert_key, {**value, "op": "+I"}, ts)]
        if previous == value and self.skip_unchanged:
            return []  # no change to retract (Flink's GroupAggFunction emits nothing)
        return [(upsert_key, {**previous, "op": "-U"}, ts), (upsert_key, {**value, "op": "+U"}, ts)]

    def _retraction(self, ident: Hashable, upsert_key: Any, ts: int) -> list[Record]:
        """Records withdrawing window ``ident`` (merged away): a tombstone in ``update`` mode,
        a ``-D`` row in ``changelog`` mode; nothing if it was never emitted or in ``final``."""
        previous = self.emitted.pop(ident, None)
        if previous is None:
            return []
        if self.mode == "update":
            return [(upsert_key, None, ts)]
        return [(upsert_key, {**previous, "op": "-D"}, ts)]
