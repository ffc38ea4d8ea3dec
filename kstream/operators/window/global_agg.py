"""The global aggregation (``window: {type: global}``): a keyed operator that does not follow
event time.

Global aggregation: one window per key covering all time, closed only by the end of input
(watermark +infinity). It emits at every trigger firing (default in ``update`` and
``changelog`` modes: after every element, ``{count: 1}``) and when it closes: every key in
``final`` mode, the keys changed since their last emission otherwise. The result value is
``{"key", <aggregates>}``; its timestamp is the largest event time aggregated for the key
(Kafka Streams' rule for aggregations); the upsert key is the plain record key.

Each key's count of elements since its last emission is in its entry (``trigger: {count: N}``;
the end of input scans the store for the keys with unemitted elements, in key order, resumable
from :attr:`GlobalOperator.end_cursor`). What stays in memory beyond the cache is, under
``trigger: {every: ...}`` only, the keys with elements since their last emission, emptied at
each firing: at most the keys that changed within one interval.

``state_ttl`` (Flink SQL's ``table.exec.state.ttl`` on ``GroupAggFunction``): each element
stamps its key's entry with the processing time (the entry's fifth field); an entry not written
for ``state_ttl`` ms is expired: it reads as absent (the key's next element starts a new
aggregate, emitted as a first result: ``+I`` in ``changelog`` mode) and the processing-time
sweep removes it from the store (:mod:`kstream.operators.idle_ttl`, the index in the node's
``ttl`` store). As in Flink, an unchanged result is emitted again under a ttl (``-U``/``+U``),
which keeps downstream state with a ttl alive.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import Any

import orjson

from kstream.graph.plan import TTL_STORE
from kstream.keys import hashable
from kstream.operators.aggregations import Aggregator, from_storable, to_storable
from kstream.operators.base import OperatorContext
from kstream.operators.idle_ttl import IdleTtl
from kstream.operators.window.base import (
    MAX_WATERMARK,
    MIN_WATERMARK,
    NEVER,
    Record,
    WindowOperator,
    decode_window_key,
    encode_window_key,
)
from kstream.pipeline.spec import WindowSpec
from kstream.state.cache import Codec, KeyValueStore
from kstream.state.scan import OrderedScan

__all__ = ["END_SLICE_KEYS", "GlobalOperator"]

#: Keys per slice when :meth:`GlobalOperator.advance` emits the end of input in one go.
END_SLICE_KEYS = 10_000


class GlobalOperator(WindowOperator):
    """A running aggregate per key (see the module docstring), one state-store entry per key:
    ``[accumulator, last emitted result or None, elements since then, max event ts, stamp]``
    (``stamp``: the processing time of its last write under ``state_ttl``, ms; else None).

    Args:
        spec: ``type: global``; ``trigger`` optional (default ``{count: 1}`` unless ``final``);
            ``state_ttl_ms`` optional.
        aggregator: the compiled aggregations.
        clock: processing time in epoch ms (``trigger: {every: ...}``, ``state_ttl``).

    Attributes:
        ttl: the expiry index under ``state_ttl`` (None without).
    """

    def __init__(
        self, spec: WindowSpec, aggregator: Aggregator, clock: Callable[[], int] | None = None
    ) -> None:
        self.codec: Codec[Any, list[Any]] = Codec(
            _encode_global_key, _decode_global_key, self._encode_entry, self._decode_entry
        )
        self.store: KeyValueStore[Any, list[Any]] = KeyValueStore(self.codec)
        self.ttl = IdleTtl(spec.state_ttl_ms) if spec.state_ttl_ms else None
        #: whether the ``ttl`` store restored matched the ttl (:meth:`restore_ttl`)
        self._ttl_indexed = True
        super().__init__(spec, aggregator, clock)
        self.skip_unchanged = self.ttl is None  # Flink's GroupAggFunction
        if not self.triggered and self.mode != "final":
            self.early_count = 1

    def bind(self, ctx: OperatorContext) -> None:
        """As :meth:`WindowOperator.bind`; the expiry index over the node's ``ttl`` store."""
        super().bind(ctx)
        if self.ttl is not None:
            self.ttl.bind(ctx.timer_backend(TTL_STORE))

    def _reset(self) -> None:
        super()._reset()
        self.next_timer = MAX_WATERMARK
        self.end_cursor = None
        self._end_scan: OrderedScan[Any, list[Any]] | None = None
        #: ``trigger: {every: ...}``: the keys with elements since their last emission, in
        #: the order they got the first, and the processing time (ms) at which they fire
        self.pending: dict[Any, None] = {}
        self.next_early: int | None = None

    def _encode_entry(self, entry: list[Any]) -> bytes:
        acc, emitted, since, max_ts, stamp = entry
        stored = [to_storable(self.agg, acc), emitted, since, max_ts]
        if stamp is not None:
            stored.append(stamp)
        return orjson.dumps(stored)

    def _decode_entry(self, raw: bytes) -> list[Any]:
        acc, emitted, since, max_ts, *stamp = orjson.loads(raw)
        at = int(stamp[0]) if stamp and stamp[0] is not None else None
        return [from_storable(self.agg, acc), emitted, int(since or 0), int(max_ts), at]

    def process(self, key: Any, value: Any, ts: int, wm: int) -> list[Record]:
        """Aggregate one element (event time ``ts`` ms; ``wm`` is ignored); returns the key's
        updated result when the trigger fires.

        Raises:
            RecordError: an aggregation cannot use the element (before any state changes).
        """
        values = self.agg.extract(value)
        store = self.store
        entry = store.get(key)
        ttl = self.ttl
        if ttl is not None and entry is not None and ttl.expired(entry[4], self.clock()):
            self._expire(key, entry)  # never returned (Flink's NeverReturnExpired)
            entry = None
        if entry is None:
            entry = [self.agg.new(), None, 0, ts, None]
        elif ts > entry[3]:
            entry[3] = ts
        self.agg.apply(entry[0], values, ts, value)
        if ttl is not None:  # a write restarts the entry's life (OnCreateAndWrite)
            now = self.clock()
            ttl.touch(key, None, entry[4], now)
            entry[4] = now
        if self.triggered and self._touched(key, entry):
            return self._emit(key, entry)
        store.put(key, entry)
        return []

    def advance(self, wm: int) -> Iterator[Record]:
        """At end of input (``wm`` = +infinity) the global window closes: every slice of
        :meth:`end_slice` at once (yielded as it goes: the results are never all in memory)."""
        if wm < MAX_WATERMARK:
            return
        done = False
        while not done:
            records, done = self.end_slice(END_SLICE_KEYS)
            yield from records

    def end_slice(self, most: int) -> tuple[list[Record], bool]:
        """End of input, the next ``most`` keys of a scan of the store in key order
        (resumable from :attr:`end_cursor`): in ``final`` mode each emits, else those changed
        since their last emission. Returns their results and whether every key is out."""
        self.next_timer = NEVER
        out: list[Record] = []
        scan = self._end_scan
        if scan is None:
            scan = self._end_scan = OrderedScan(self.store, self.end_cursor)
        final = self.mode == "final"
        now = self.clock()
        for _, key, entry in scan.take(most):
            if self.ttl is not None and self.ttl.expired(entry[4], now):
                continue  # expired, not swept yet: absent
            if final or entry[2]:
                out.extend(self._emit(key, entry))
        self.end_cursor = scan.cursor
        return out, scan.done

    def on_processing_time(self, now: int) -> list[Record]:
        """``trigger: {every: ...}``: at the multiple of ``every`` ms armed by the first
        element since the last firing, each key with elements since its last emission emits
        its current result. Under ``state_ttl`` the expired keys are removed first."""
        if self.ttl is not None:
            self.sweep(now)
        if self.next_early is None or now < self.next_early:
            return []
        self.next_early = None
        out: list[Record] = []
        for key in list(self.pending):
            entry = self.store.get(key)
            if entry is not None and entry[2]:
                out.extend(self._emit(key, entry))
        self.pending.clear()
        return out

    def sweep(self, now: int) -> int:
        """Remove every key whose entry expired by ``now`` (processing time, ms) from the store
        (``state_ttl``); returns how many."""
        assert self.ttl is not None
        ttl, store, removed = self.ttl, self.store, 0

        def expire(expiry: int, key: Any, _namespace: Any) -> None:
            nonlocal removed
            key = hashable(key)
            entry = store.get(key)
            if entry is not None and ttl.is_due(entry[4], expiry):
                store.delete(key)
                self.pending.pop(key, None)
                removed += 1

        ttl.sweep(now, expire)
        return removed

    def _expire(self, key: Any, entry: list[Any]) -> None:
        """Remove ``key``'s expired ``entry`` and its expiry timer."""
        assert self.ttl is not None
        self.ttl.forget(key, None, entry[4])
        self.store.delete(key)
        self.pending.pop(key, None)

    def _arm_every(self, ident: Hashable) -> None:
        self.pending[ident] = None
        if self.next_early is None:
            self.next_early = self._next_multiple()

    def _emit(self, key: Any, entry: list[Any]) -> list[Record]:
        """The key's current result; resets its count of unemitted elements (written back
        when it changes)."""
        value = {"key": key}
        value.update(self.agg.result(entry[0]))
        self.pending.pop(key, None)
        if entry[2]:
            entry[2] = 0
            self.store.put(key, entry)
        return self._records(key, key, key, value, entry[3])

    def restore_ttl(self, entries: Iterable[tuple[bytes, bytes]]) -> None:
        """Start the expiry index from the ``ttl`` store's ``entries``, before :meth:`restore`
        (``state_ttl``; without it, nothing)."""
        if self.ttl is not None:
            self._ttl_indexed = self.ttl.restore(entries)

    def restore(
        self,
        entries: Iterable[tuple[bytes, bytes]],
        wm: int,
        timers: Iterable[tuple[bytes, bytes]] = (),
    ) -> None:
        """Start from stored ``entries`` (``wm`` and ``timers`` are not used): a store backed
        by RocksDB reads them on demand; under ``trigger: {every: ...}`` the keys with
        unemitted elements are remembered and fire at the next multiple of ``every``. Under
        ``state_ttl``, when the index was built under another ttl (or none), every entry is
        re-indexed, one without a stamp stamped now (:meth:`restore_ttl` first).

        Raises:
            ExpressionError: when a stored accumulator does not fit the aggregations.
        """
        self._reset()
        every = self.every is not None
        ttl = None if self._ttl_indexed else self.ttl
        now = self.clock()
        for key, entry in self.store.restore(entries):
            if every and entry[2]:
                self.pending[key] = None
            if ttl is not None:
                if entry[4] is None:
                    entry[4] = now
                    self.store.put(key, entry)
                ttl.index(key, None, entry[4])
        self._ttl_indexed = True
        if self.pending:
            self.next_early = self._next_multiple()

    def open_windows(self) -> int:
        """Number of keys held in state."""
        return len(self.store)


def _encode_global_key(key: Any) -> bytes:
    return encode_window_key((key, MIN_WATERMARK, MAX_WATERMARK))


def _decode_global_key(raw: bytes) -> Any:
    return decode_window_key(raw)[0]
