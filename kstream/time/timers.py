"""The timer service of an operator: event-time and processing-time timers per key and
namespace, deduplicated, checkpointed with the operator's state (DESIGN.md section 4).

Semantics follow Flink's ``InternalTimerService``:

- a timer is ``(timestamp_ms, key, namespace)`` in one of two domains, event time or
  processing time; registering a timer that exists does nothing (one timer per key, namespace
  and timestamp), deleting one that does not exist does nothing;
- an event-time timer fires when the watermark reaches its timestamp (``timestamp <=
  watermark``), a processing-time timer when the clock does; timers fire in timestamp order, and
  timers with the same timestamp in the order they were registered;
- a timer fires once: it is removed as it fires, before the operator handles it, so the
  operator may register a timer for the same time again (it fires in the same pass when due).

Windows use a namespace per window (``(start, end)``), keyed process functions the empty
namespace ``None``. The key and namespace are any JSON-encodable, hashable values (tuples stand
for JSON arrays).

Persistence: :meth:`TimerService.changes` returns the timers registered or removed since the
last checkpoint as store entries, each changed timer once; a timer registered and removed
between two checkpoints never reaches the store. Store key: the domain (``e`` or ``p``), the
timestamp as 8 big-endian bytes biased by 2**63 (so negative times sort first and a store scan
walks timers in time order), then the JSON array ``[key, namespace]``. Value: ``b"\\x01"``.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from kstream.keys import hashable

EVENT_TIME = "e"
PROCESSING_TIME = "p"
#: ``next_event_time`` when no event-time timer is registered: no watermark reaches it.
NEVER = 2**63
_BIAS = 2**63
_PRESENT = b"\x01"
_GONE = object()
_EVENT, _PROCESSING = EVENT_TIME.encode(), PROCESSING_TIME.encode()

#: ``(timestamp_ms, key, namespace)``.
Timer = tuple[int, Any, Any]
#: Called for each firing timer: ``on_timer(timestamp_ms, key, namespace)``.
OnTimer = Callable[[int, Any, Any], Any]


def encode_timer(domain: str, timer: Timer) -> bytes:
    """The store key of ``timer`` in ``domain`` (:data:`EVENT_TIME` or
    :data:`PROCESSING_TIME`); see the module docstring."""
    return _encode(domain.encode(), timer)


def _encode(domain: bytes, timer: Timer) -> bytes:
    ts, key, namespace = timer
    return domain + (ts + _BIAS).to_bytes(8, "big") + orjson.dumps([key, namespace])


def decode_timer(raw: bytes) -> tuple[str, Timer]:
    """Inverse of :func:`encode_timer`: ``(domain, (timestamp_ms, key, namespace))`` with JSON
    arrays back as tuples.

    Raises:
        ValueError: ``raw`` is not a timer's store key.
    """
    domain = raw[:1].decode()
    if domain not in (EVENT_TIME, PROCESSING_TIME) or len(raw) < 10:
        raise ValueError(f"not a timer key: {raw[:16]!r}")
    ts = int.from_bytes(raw[1:9], "big") - _BIAS
    key, namespace = orjson.loads(raw[9:])
    return domain, (ts, hashable(key), hashable(namespace))


class _TimerQueue:
    """The timers of one domain and their changes since the last checkpoint.

    A bucket per timestamp keeps its timers in registration order; a heap holds the timestamps.
    Removal empties a bucket, whose heap entry is then skipped lazily. ``changed`` maps each
    timer registered or removed since the last checkpoint to True (registered) or False
    (removed); ``persisted`` holds the timers in the store."""

    def __init__(self) -> None:
        self.buckets: dict[int, dict[Timer, None]] = {}
        self.heap: list[int] = []
        self.changed: dict[Timer, bool] = {}
        self.persisted: set[Timer] = set()

    def add(self, timer: Timer) -> bool:
        ts = timer[0]
        bucket = self.buckets.get(ts)
        if bucket is None:
            self.buckets[ts] = {timer: None}
            heapq.heappush(self.heap, ts)
        else:
            size = len(bucket)
            bucket.setdefault(timer)
            if len(bucket) == size:  # registered already
                return False
        self.changed[timer] = True
        return True

    def remove(self, timer: Timer) -> bool:
        ts = timer[0]
        bucket = self.buckets.get(ts)
        if bucket is None or timer not in bucket:
            return False
        del bucket[timer]
        if not bucket:
            del self.buckets[ts]
        self._removed(timer)
        return True

    def _removed(self, timer: Timer) -> None:
        if timer in self.persisted:
            self.changed[timer] = False
        else:  # never reached the store: nothing to delete
            self.changed.pop(timer, None)

    def next(self) -> int | None:
        heap, buckets = self.heap, self.buckets
        while heap and heap[0] not in buckets:
            heapq.heappop(heap)
        return heap[0] if heap else None

    def fire_due(self, limit: int, on_timer: OnTimer, most: int | None = None) -> int:
        """Remove each timer with ``timestamp <= limit`` and call ``on_timer(timestamp, key,
        namespace)`` for it, in order; a timer registered meanwhile at or before ``limit``
        fires in the same pass, one removed meanwhile does not. Stops after ``most`` timers
        (None: no bound; the others stay registered, in order). Returns how many fired."""
        heap, buckets, changed, persisted = self.heap, self.buckets, self.changed, self.persisted
        fired = 0
        stop = NEVER if most is None else most
        while heap and heap[0] <= limit and fired < stop:
            ts = heap[0]
            bucket = buckets.get(ts)
            if bucket is None:
                heapq.heappop(heap)
                continue
            for timer in list(bucket):  # a whole bucket per pass: one heap lookup
                if fired >= stop:
                    break
                if bucket.pop(timer, _GONE) is _GONE:
                    continue  # removed by an earlier timer of this pass
                if timer in persisted:  # inline _removed (per timer: the hot path)
                    changed[timer] = False
                else:
                    changed.pop(timer, None)
                fired += 1
                at, key, namespace = timer
                on_timer(at, key, namespace)  # not on_timer(*timer): a plain call is inlined
            if not bucket and buckets.get(ts) is bucket:
                del buckets[ts]
        return fired

    def load(self, timer: Timer) -> None:
        """Add a timer read from the store (not a change)."""
        self.add(timer)
        self.changed.pop(timer, None)
        self.persisted.add(timer)

    def changes(self, domain: bytes) -> Iterator[tuple[bytes, bytes | None]]:
        """Store entries for the timers changed since the last call; clears them."""
        persisted = self.persisted
        for timer, registered in self.changed.items():
            if registered:
                persisted.add(timer)
                yield _encode(domain, timer), _PRESENT
            elif timer in persisted:
                persisted.discard(timer)
                yield _encode(domain, timer), None
        self.changed.clear()

    def __len__(self) -> int:
        return sum(len(b) for b in self.buckets.values())

    def __iter__(self) -> Iterator[Timer]:
        for ts in sorted(self.buckets):
            yield from self.buckets[ts]


class TimerService:
    """Event-time and processing-time timers of one operator in one task (see the module
    docstring for the semantics and the store format).

    Attributes:
        next_event_time: the earliest event-time timer (epoch ms), :data:`NEVER` when none.
    """

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self._event = _TimerQueue()
        self._processing = _TimerQueue()
        self.next_event_time = NEVER

    # -- registration -------------------------------------------------------------------------

    def register_event_time(self, ts: int, key: Any, namespace: Any = None) -> None:
        """Fire at watermark ``ts`` (epoch ms) for ``key`` and ``namespace``; a duplicate
        registration is ignored."""
        if self._event.add((ts, key, namespace)) and ts < self.next_event_time:
            self.next_event_time = ts

    def has_event_time(self, ts: int, key: Any, namespace: Any = None) -> bool:
        """Whether the event-time timer at ``ts`` (epoch ms) for ``key`` and ``namespace`` is
        registered (a dict lookup: operators use it as an in-memory index of what exists)."""
        bucket = self._event.buckets.get(ts)
        return bucket is not None and (ts, key, namespace) in bucket

    def delete_event_time(self, ts: int, key: Any, namespace: Any = None) -> None:
        """Remove the event-time timer at ``ts`` (epoch ms), if registered."""
        if self._event.remove((ts, key, namespace)):
            self.next_event_time = self._next_event()

    def register_processing_time(self, ts: int, key: Any, namespace: Any = None) -> None:
        """Fire when the processing-time clock reaches ``ts`` (epoch ms)."""
        self._processing.add((ts, key, namespace))

    def delete_processing_time(self, ts: int, key: Any, namespace: Any = None) -> None:
        """Remove the processing-time timer at ``ts`` (epoch ms), if registered."""
        self._processing.remove((ts, key, namespace))

    @property
    def next_processing_time(self) -> int | None:
        """The earliest processing-time timer (epoch ms), None when none."""
        return self._processing.next()

    # -- firing -------------------------------------------------------------------------------

    def advance_event_time(self, watermark: int, on_timer: OnTimer, most: int | None = None) -> int:
        """The watermark reached ``watermark`` (epoch ms): remove every event-time timer with
        ``timestamp <= watermark`` and call ``on_timer(timestamp, key, namespace)`` for each,
        in timestamp order, then registration order (Flink
        ``InternalTimerServiceImpl.advanceWatermark``). A timer registered by ``on_timer`` at
        or before ``watermark`` fires in the same pass; one deleted by it does not. ``most``
        bounds the timers fired by this call (the end of input fires in slices: the rest stay
        due, ``next_event_time <= watermark``). Returns how many fired."""
        fired = self._event.fire_due(watermark, on_timer, most)
        self.next_event_time = self._next_event()
        return fired

    def advance_processing_time(self, now: int, on_timer: OnTimer) -> int:
        """The processing-time clock reached ``now`` (epoch ms): as
        :meth:`advance_event_time` for the processing-time timers."""
        return self._processing.fire_due(now, on_timer)

    def event_timers(self) -> Iterator[Timer]:
        """Every registered event-time timer, in timestamp order (tools and tests)."""
        return iter(self._event)

    def processing_timers(self) -> Iterator[Timer]:
        """Every registered processing-time timer, in timestamp order (tools and tests)."""
        return iter(self._processing)

    def __len__(self) -> int:
        return len(self._event) + len(self._processing)

    # -- state --------------------------------------------------------------------------------

    def changes(self) -> list[tuple[bytes, bytes | None]]:
        """The timers registered or removed since the last call, each once, as store entries
        ``(key, b"\\x01" or None = deleted)``. Clears the change set."""
        return [*self._event.changes(_EVENT), *self._processing.changes(_PROCESSING)]

    def restore(self, entries: Iterable[tuple[bytes, bytes]]) -> int:
        """Replace every timer by the stored ``entries`` (from :meth:`changes`); returns how
        many were restored.

        Raises:
            ValueError: an entry is not a timer.
        """
        self._clear()
        queues = {EVENT_TIME: self._event, PROCESSING_TIME: self._processing}
        for raw, _value in entries:
            domain, timer = decode_timer(raw)
            queues[domain].load(timer)
        self.next_event_time = self._next_event()
        return len(self)

    def _next_event(self) -> int:
        ts = self._event.next()
        return NEVER if ts is None else ts
