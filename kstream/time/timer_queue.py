"""The timers of one domain in memory (:class:`TimerQueue`) and their store encoding; the
timer service (:mod:`kstream.time.timers`) holds one queue per domain and documents the
semantics and the store format."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from kstream.keys import hashable

EVENT_TIME = "e"
PROCESSING_TIME = "p"
#: ``next_event_time`` when no event-time timer is registered: no watermark reaches it.
NEVER = 2**63
#: Added to a timestamp in its store key (8 big-endian bytes): negative times sort first.
BIAS = 2**63
#: The value of every timer's store entry.
PRESENT = b"\x01"
_GONE = object()

#: ``(timestamp_ms, key, namespace)``.
Timer = tuple[int, Any, Any]
#: Called for each firing timer: ``on_timer(timestamp_ms, key, namespace)``.
OnTimer = Callable[[int, Any, Any], Any]


def encode_timer(domain: str, timer: Timer) -> bytes:
    """The store key of ``timer`` in ``domain`` (:data:`EVENT_TIME` or
    :data:`PROCESSING_TIME`); see :mod:`kstream.time.timers`."""
    return encode_key(domain.encode(), timer)


def encode_key(domain: bytes, timer: Timer) -> bytes:
    """:func:`encode_timer` with the domain as its byte (``b"e"``, ``b"p"``)."""
    ts, key, namespace = timer
    return domain + (ts + BIAS).to_bytes(8, "big") + orjson.dumps([key, namespace])


def decode_timer(raw: bytes) -> tuple[str, Timer]:
    """Inverse of :func:`encode_timer`: ``(domain, (timestamp_ms, key, namespace))`` with JSON
    arrays back as tuples.

    Raises:
        ValueError: ``raw`` is not a timer's store key.
    """
    domain = raw[:1].decode()
    if domain not in (EVENT_TIME, PROCESSING_TIME) or len(raw) < 10:
        raise ValueError(f"not a timer key: {raw[:16]!r}")
    ts = int.from_bytes(raw[1:9], "big") - BIAS
    key, namespace = orjson.loads(raw[9:])
    return domain, (ts, hashable(key), hashable(namespace))


class TimerQueue:
    """The timers of one domain and their changes since the last checkpoint.

    A bucket per timestamp keeps its timers in registration order; a heap holds the timestamps.
    Removal empties a bucket, whose heap entry is then skipped lazily. ``changed`` maps each
    timer registered or removed since the last checkpoint to True (registered) or False
    (removed); ``persisted`` holds its timers that are in the store (over a store,
    :class:`~kstream.time.stored_timers.StoredTimerQueue`, only those of the head)."""

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
        TimerQueue.add(self, timer)
        self.changed.pop(timer, None)
        self.persisted.add(timer)

    def changes(self, domain: bytes) -> Iterator[tuple[bytes, bytes | None]]:
        """Store entries for the timers changed since the last call; clears them."""
        persisted = self.persisted
        for timer, registered in self.changed.items():
            if registered:
                persisted.add(timer)
                yield encode_key(domain, timer), PRESENT
            elif timer in persisted:
                persisted.discard(timer)
                yield encode_key(domain, timer), None
        self.changed.clear()

    def contains(self, timer: Timer) -> bool:
        """Whether ``timer`` is registered."""
        bucket = self.buckets.get(timer[0])
        return bucket is not None and timer in bucket

    def in_memory(self) -> int:
        """Timers held in memory: all of them."""
        return len(self)

    def __len__(self) -> int:
        return sum(len(b) for b in self.buckets.values())

    def __iter__(self) -> Iterator[Timer]:
        for ts in sorted(self.buckets):
            yield from self.buckets[ts]
