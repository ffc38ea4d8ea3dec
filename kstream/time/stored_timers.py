"""The timers of one domain over the node's timers store: a bounded head in memory, the rest in
RocksDB (Flink's RocksDB timer service keeps a cache of the earliest timers the same way).

The store (the task's column family ``op.<node-id>.timers``, committed state only) holds every
timer as of the last checkpoint, in the key order of :func:`~kstream.time.timer_queue.encode_key`
(domain, timestamp, then ``[key, namespace]`` as JSON). :class:`StoredTimerQueue` keeps in
memory:

- the **head**: every timer whose store key is at most :attr:`StoredTimerQueue.loaded_to`
  (the last key read), in the buckets and heap of :class:`~kstream.time.timer_queue.TimerQueue`;
  it is read from the store in key order, at most ``head`` timers at a time, so it may end in
  the middle of a timestamp. When the store has nothing beyond it (``exhausted``), every timer
  is in the head;
- the **tail**: the timers registered since the last checkpoint beyond ``loaded_to`` (not in
  the store yet), dropped from memory once a checkpoint wrote them;
- ``gone``: the stored timers beyond ``loaded_to`` deleted since the last checkpoint (skipped
  when the head is read again before the checkpoint deletes them).

The head is read again when it runs empty (all of it fired or was deleted); the tail's timers
up to the new ``loaded_to`` join it. Invariant between calls: an empty head means every timer
is in it (``exhausted``), so the head's first timer is the queue's first. A checkpoint that
leaves more than ``head`` timers in the head (registered while the store was exhausted, or
before ``loaded_to``) keeps the earliest ``head`` of them.

Order: timestamp order; within a timestamp, the store's key order for the timers read from it
(registration order for the others), as Flink's RocksDB timer service.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from kstream.time.timer_queue import (
    PRESENT,
    OnTimer,
    Timer,
    TimerQueue,
    decode_timer,
    encode_key,
)

if TYPE_CHECKING:  # the state layer sits above time: its protocol only, for the types
    from kstream.state.cache import Backend

#: Timers read from the store per refill of a queue's head (default).
HEAD_TIMERS = 10_000
#: ``loaded_ts`` before anything was read: below every timestamp.
_BEFORE = -(2**63) - 1


class StoredTimerQueue(TimerQueue):
    """The timers of one domain (``b"e"`` or ``b"p"``) over ``backend`` (see the module
    docstring); ``head``: timers read per refill, at least 1.

    Attributes:
        loaded_to: the store key of the last timer read into the head (the domain byte alone:
            none yet).
        exhausted: whether every timer is in the head (the store has none beyond it).
    """

    def __init__(self, domain: bytes, backend: Backend, head: int = HEAD_TIMERS) -> None:
        if head < 1:
            raise ValueError(f"a timer head holds at least 1 timer, got {head}")
        super().__init__()
        self.domain, self.backend, self.head = domain, backend, head
        self.loaded_to = domain
        self.loaded_ts = _BEFORE
        self.exhausted = False
        self.tail: dict[Timer, None] = {}
        #: ``(store key, timer)`` of the tail (and of timers since deleted from it): a heap
        self.tail_keys: list[tuple[bytes, Timer]] = []
        self.gone: set[Timer] = set()
        #: store keys of the stored timers fired since the checkpoint (their deletions)
        self.fired: list[bytes] = []
        self.refill()

    def _beyond(self, timer: Timer) -> bytes | None:
        """The store key of ``timer`` when it lies beyond the head, else None."""
        if self.exhausted or timer[0] < self.loaded_ts:
            return None
        raw = encode_key(self.domain, timer)
        return raw if timer[0] > self.loaded_ts or raw > self.loaded_to else None

    # -- registration -------------------------------------------------------------------------

    def add(self, timer: Timer) -> bool:
        raw = self._beyond(timer)
        if raw is None:
            return super().add(timer)
        if timer in self.tail:
            return False
        if timer in self.gone:  # stored and deleted since the checkpoint: back, nothing to write
            self.gone.discard(timer)
            return True
        if self.backend.get(raw) is not None:
            return False
        self.tail[timer] = None
        heapq.heappush(self.tail_keys, (raw, timer))
        return True

    def remove(self, timer: Timer) -> bool:
        raw = self._beyond(timer)
        if raw is None:
            return super().remove(timer)
        if timer in self.tail:  # never stored: nothing to delete (its heap entry is skipped)
            del self.tail[timer]
            return True
        if timer in self.gone or self.backend.get(raw) is None:
            return False
        self.gone.add(timer)
        return True

    def contains(self, timer: Timer) -> bool:
        raw = self._beyond(timer)
        if raw is None:
            return super().contains(timer)
        if timer in self.tail:
            return True
        return timer not in self.gone and self.backend.get(raw) is not None

    # -- firing -------------------------------------------------------------------------------

    def next(self) -> int | None:
        if not self.buckets and not self.exhausted:
            self.refill()
        return super().next()

    def fire_due(self, limit: int, on_timer: OnTimer, most: int | None = None) -> int:
        """As :meth:`TimerQueue.fire_due`, reading the head again whenever it runs empty; a
        fired stored timer leaves memory at once, its pending deletion kept as its store key."""
        changed, persisted, domain, deletions = self.changed, self.persisted, self.domain, []

        def fire(at: int, key: Any, namespace: Any) -> None:
            timer = (at, key, namespace)
            if changed.get(timer) is False:  # stored: the base marked it for deletion
                del changed[timer]
                persisted.discard(timer)
                deletions.append(encode_key(domain, timer))
            on_timer(at, key, namespace)

        try:
            return self._fire_all(limit, fire, most)
        finally:
            self.fired.extend(deletions)

    def _fire_all(self, limit: int, on_timer: OnTimer, most: int | None) -> int:
        fired = 0
        while True:
            fired += super().fire_due(limit, on_timer, None if most is None else most - fired)
            if (most is not None and fired >= most) or self.buckets or self.exhausted:
                break
            self.refill()  # the head ran empty: its first timer after it may be due
        if not self.buckets and not self.exhausted:
            self.refill()
        return fired

    def refill(self) -> None:
        """While the head is empty and the store has timers beyond it: read up to ``head`` of
        them (skipping the deleted ones, which become pending deletions of the head), move
        ``loaded_to`` to the last and merge in the tail's timers up to it."""
        while not self.buckets and not self.exhausted:
            read = 0
            last: tuple[bytes, Timer] | None = None
            for raw, timer in self._stored_after(self.loaded_to):
                read += 1
                last = raw, timer
                if timer in self.gone:  # read, and deleted: as a head timer removed
                    self.gone.discard(timer)
                    self.persisted.add(timer)
                    self.changed[timer] = False
                else:
                    self.load(timer)
                if read >= self.head:
                    break
            if last is not None:
                self.loaded_to, self.loaded_ts = last[0], last[1][0]
            self.exhausted = read < self.head
            self._merge_tail()

    def _stored_after(self, after: bytes) -> Iterator[tuple[bytes, Timer]]:
        """The stored timers of this domain after key ``after``, in key order (lazily)."""
        domain = self.domain
        for raw, _value in self.backend.items(from_key=after):
            if not raw.startswith(domain):
                return
            if raw != after:
                yield raw, decode_timer(raw)[1]

    def _merge_tail(self) -> None:
        """Move the tail's timers up to ``loaded_to`` (all when exhausted) into the head."""
        heap, tail = self.tail_keys, self.tail
        while heap and (self.exhausted or heap[0][0] <= self.loaded_to):
            _, timer = heapq.heappop(heap)
            if timer in tail:
                del tail[timer]
                TimerQueue.add(self, timer)

    # -- state --------------------------------------------------------------------------------

    def changes(self, domain: bytes) -> Iterator[tuple[bytes, bytes | None]]:
        """The head's changes, the tail's timers and the deletions beyond the head; the tail
        and the deletions leave memory (the checkpoint writes them to the store before anything
        else runs), and the head keeps its earliest ``head`` timers. A fired timer registered
        again is written once (a put)."""
        head = list(super().changes(domain))
        if self.fired:
            again = {raw for raw, value in head if value is not None}
            for raw in self.fired:
                if raw not in again:
                    yield raw, None
        yield from head
        tail = self.tail
        for raw, timer in self.tail_keys:
            if timer in tail:
                del tail[timer]
                yield raw, PRESENT
        for timer in self.gone:
            yield encode_key(domain, timer), None
        self.tail, self.tail_keys, self.gone = {}, [], set()  # new ones: a dict never shrinks
        self.fired = []
        if len(self.persisted) > self.head:  # every head timer is stored now
            self._trim()

    def _trim(self) -> None:
        """Keep the earliest ``head`` timers of the head (all stored): the others are dropped
        and ``loaded_to`` moves back to the last kept."""
        buckets, persisted = self.buckets, self.persisted
        excess = len(persisted) - self.head
        for ts in sorted(buckets, reverse=True):
            bucket = buckets[ts]
            if len(bucket) <= excess:
                excess -= len(bucket)
                persisted.difference_update(bucket)
                del buckets[ts]
                continue
            keys = sorted((encode_key(self.domain, t), t) for t in bucket)
            for _raw, timer in keys[len(keys) - excess :]:
                del bucket[timer]
                persisted.discard(timer)
            self.loaded_to = keys[len(keys) - excess - 1][0]
            self.loaded_ts = ts
            break
        self.heap = list(buckets)
        heapq.heapify(self.heap)
        self.exhausted = False

    def in_memory(self) -> int:
        """Timers held in memory: the head and the tail."""
        return super().__len__() + len(self.tail)

    def __len__(self) -> int:
        """Every timer (a scan of the store beyond the head)."""
        return sum(1 for _ in self)

    def __iter__(self) -> Iterator[Timer]:
        """Every timer in store key order: the head, then the store's and the tail's merged."""
        domain = self.domain

        def key(timer: Timer) -> Any:
            return encode_key(domain, timer)

        yield from sorted(super().__iter__(), key=key)
        if self.exhausted:
            return
        stored = (t for _raw, t in self._stored_after(self.loaded_to) if t not in self.gone)
        yield from heapq.merge(stored, sorted(self.tail, key=key), key=key)
