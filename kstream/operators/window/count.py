"""Count windows: a keyed operator that does not follow event time (the global aggregation, the
other: :mod:`kstream.operators.window.global_agg`).

Count windows (Flink ``countWindow(size[, slide])``: ``GlobalWindows`` + ``CountEvictor(size)``
+ ``CountTrigger(slide)``; tumbling when ``slide`` is ``size``): the elements of each key are
numbered 0, 1, 2, ... in arrival order, and every ``slide`` elements (element counts ``c =
slide, 2 * slide, ...``) a window fires with the last ``min(size, c)`` of them, positions
``[max(0, c - size), c)``: the first firings of a sliding count window hold fewer than ``size``
elements, as in Flink. With ``accumulation: discarding`` (Flink ``PurgingTrigger``) a firing
also purges what it held, so each firing holds the last ``min(size, slide)`` elements since the
previous one. Elements between two firings that no window holds (``slide > size``) are only
counted. Elements left over at end of input never fire (Flink's ``CountTrigger`` ignores the end
of input). Elements are never late. The result value is ``{"key", "window_start", "window_end",
<aggregates>}`` with the positions of the window's first and one past its last element as
start/end, and its timestamp is the largest event time among the window's elements.

Each window is an accumulator opened by its first element and kept by its *unclipped* start
``c - span`` (``span`` = ``size``, or ``min(size, slide)`` when discarding), negative for the
first firings' windows; a window fires when element ``start + span - 1`` arrives.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from kstream.operators.aggregations import Aggregator, from_storable, to_storable
from kstream.operators.window.assign import count_window_starts
from kstream.operators.window.base import (
    Record,
    WindowOperator,
    decode_window_key,
    encode_window_key,
    window_key_text,
)
from kstream.pipeline.spec import WindowSpec
from kstream.state.cache import Codec, KeyValueStore

__all__ = ["CountWindowOperator"]


class _CountKey:
    """Per-key count-window state, the key's store entry: elements seen, and the open windows by
    (unclipped) start position: ``start -> [accumulator, smallest event time, largest event
    time]``."""

    __slots__ = ("n", "open")

    def __init__(self, n: int = 0) -> None:
        self.n = n
        self.open: dict[int, list[Any]] = {}


class CountWindowOperator(WindowOperator):
    """Tumbling or sliding count windows per key (see the module docstring), one state-store
    entry per key (:class:`_CountKey`); only the number of open windows is kept in memory.

    Args:
        spec: ``type: count`` with ``count_size`` and ``count_slide`` (elements), and
            ``accumulation``.
        aggregator: the compiled aggregations.
        clock: unused (count windows have no triggers); accepted for a uniform signature.

    Attributes:
        store: the per-key entries (in memory until :meth:`bind`).
    """

    emitted_field = None  # each window fires once: nothing to retract

    def __init__(
        self, spec: WindowSpec, aggregator: Aggregator, clock: Callable[[], int] | None = None
    ) -> None:
        self.codec: Codec[Any, _CountKey] = Codec(
            _encode_count_key, _decode_count_key, self._encode_entry, self._decode_entry
        )
        self.store: KeyValueStore[Any, _CountKey] = KeyValueStore(self.codec)
        super().__init__(spec, aggregator, clock)
        self.size = spec.count_size or 1
        self.slide = spec.count_slide or self.size
        #: elements per firing at most: a discarding firing purges, so it holds only the elements
        #: since the previous firing (Flink ``PurgingTrigger`` around ``CountTrigger(slide)``)
        self.span = min(self.size, self.slide) if spec.accumulation == "discarding" else self.size
        self.track_emitted = False  # each window fires once: changelog rows are all +I

    def _reset(self) -> None:
        super()._reset()
        #: open windows of every key (kept for :meth:`open_windows` without a scan)
        self._open = 0

    def _encode_entry(self, state: _CountKey) -> bytes:
        """``{"n": elements seen, "open": [[start, accumulator, min ts, max ts], ...]}``."""
        agg = self.agg
        open_ = [[s, to_storable(agg, acc), lo, hi] for s, (acc, lo, hi) in state.open.items()]
        return orjson.dumps({"n": state.n, "open": open_})

    def _decode_entry(self, raw: bytes) -> _CountKey:
        stored = orjson.loads(raw)
        state = _CountKey(int(stored["n"]))
        for start, acc, lo, hi in stored["open"]:
            state.open[int(start)] = [from_storable(self.agg, acc), lo, hi]
        return state

    def process(self, key: Any, value: Any, ts: int, wm: int) -> list[Record]:
        """Add the key's next element (event time ``ts`` ms; ``wm`` is ignored) to every open
        window of the key; returns the result of the window it fires, if any.

        Raises:
            RecordError: an aggregation cannot use the element (before any state changes).
        """
        values = self.agg.extract(value)
        state = self.store.get(key)
        if state is None:
            state = _CountKey()
        index = state.n
        state.n += 1
        before = len(state.open)
        for start in count_window_starts(index, self.span, self.slide):
            state.open.setdefault(start, [self.agg.new(), ts, ts])
        out: list[Record] = []
        for start, slot in list(state.open.items()):
            self.agg.apply(slot[0], values, ts, value)
            slot[1], slot[2] = min(slot[1], ts), max(slot[2], ts)
            if start + self.span == index + 1:
                del state.open[start]
                out.extend(self._emit(key, start, slot))
        self._open += len(state.open) - before
        self.store.put(key, state)
        return out

    def _emit(self, key: Any, start: int, slot: list[Any]) -> list[Record]:
        """The result of the window of unclipped ``start``: positions ``[max(0, start),
        start + span)``, timestamp its largest event time."""
        wid = (key, max(0, start), start + self.span)
        value = {"key": key, "window_start": wid[1], "window_end": wid[2]}
        value.update(self.agg.result(slot[0]))
        return self._records(wid, key, window_key_text(wid), value, slot[2])

    def restore(
        self,
        entries: Iterable[tuple[bytes, bytes]],
        wm: int,
        timers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """Start from stored ``entries`` (``wm`` and ``timers`` are not used): a store backed
        by RocksDB reads them on demand; one scan counts the open windows. State written when
        sliding count windows started at multiples of ``slide`` has the same format: each
        stored window fires when element ``start + span - 1`` arrives, as it was defined.

        Raises:
            ExpressionError: when a stored accumulator does not fit the aggregations.
        """
        self._reset()
        for _key, state in self.store.restore(entries):
            self._open += len(state.open)

    def open_windows(self) -> int:
        """Number of open (incomplete) count windows."""
        return self._open


def _encode_count_key(key: Any) -> bytes:
    return encode_window_key((key, 0, 0))


def _decode_count_key(raw: bytes) -> Any:
    return decode_window_key(raw)[0]
