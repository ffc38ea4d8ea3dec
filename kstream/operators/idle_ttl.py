"""Idle state retention in processing time: Flink SQL's ``table.exec.state.ttl`` for the nodes
given a ``state_ttl`` (docs/pipeline.md, "Idle state retention").

Flink's table runtime gives the state of its non-windowed operators (``GroupAggFunction``, the
regular join's record views, the deduplicate and rank functions) the ``StateTtlConfig`` of
``StateConfigUtil.createTtlConfig``: a processing-time TTL, ``UpdateType.OnCreateAndWrite``
(writing an entry restarts its life, reading it does not) and
``StateVisibility.NeverReturnExpired`` (an expired entry reads as absent). kstream does the
same: an entry written at processing time ``t`` (its *stamp*, epoch ms, kept by the owner in
the entry itself) is expired at ``now`` when ``t + ttl <= now``; the owner treats an expired
entry as absent, and :meth:`IdleTtl.sweep` has it removed from the store, so it leaves the
checkpointed state too.

The expiry index is the mechanism of the process functions' TTL states
(:mod:`kstream.operators.process_ttl`): a :class:`~kstream.time.timers.TimerService` over the
node's ``ttl`` store (``op.<node-id>.ttl``: checkpointed, restored, re-sharded and saved like a
``timers`` store), one processing-time timer per (record key, namespace) at ``stamp + ttl``,
with local state only the earliest in memory. A write moves the entry's timer; a timer whose
entry was rewritten or removed since is recognised when it fires (the owner compares the
stamp) and ignored. The store's entry :data:`~kstream.operators.process_ttl.DECLARED_KEY`
holds the ttl the index was built under: a restore under another ttl (or from state written
without one) tells the owner to re-index its entries (:meth:`IdleTtl.restore`).
"""

from __future__ import annotations

from typing import Any

import orjson

from kstream.operators.process_ttl import DeclaredIndex
from kstream.state.cache import Backend
from kstream.time.timers import OnTimer, TimerService


class IdleTtl(DeclaredIndex):
    """The expiry index of one node's entries in one task (see the module docstring).

    Args:
        ttl_ms: the retention, ms (positive).

    Attributes:
        timers: the index (in memory until :meth:`bind` gives it the ``ttl`` store).
    """

    def __init__(self, ttl_ms: int) -> None:
        self.ms = ttl_ms
        self.timers = TimerService()
        self.declared: bytes | None = orjson.dumps({"state_ttl": ttl_ms})
        #: whether the ``ttl`` store holds :attr:`declared` (else the next checkpoint writes it)
        self.saved = False

    def bind(self, backend: Backend | None, head: int | None = None) -> None:
        """Keep the index over ``backend`` (the node's ``ttl`` store; None: in memory), ``head``
        timers in memory (None: the default); before any restore."""
        self.timers = TimerService(backend, head)

    def expired(self, stamp: int | None, now: int) -> bool:
        """Whether an entry stamped at ``stamp`` (ms; None: not stamped) is expired at
        ``now`` (ms)."""
        return stamp is not None and stamp + self.ms <= now

    def touch(self, key: Any, namespace: Any, before: int | None, now: int) -> None:
        """The entry ``(key, namespace)``, stamped ``before`` (None: new), is written at
        ``now`` (ms): move its expiry timer to ``now + ttl``. The owner stores the stamp."""
        if before == now:
            return
        if before is not None:
            self.timers.delete_processing_time(before + self.ms, key, namespace)
        self.timers.register_processing_time(now + self.ms, key, namespace)

    def forget(self, key: Any, namespace: Any, stamp: int | None) -> None:
        """The entry ``(key, namespace)`` stamped ``stamp`` left the state: drop its timer."""
        if stamp is not None:
            self.timers.delete_processing_time(stamp + self.ms, key, namespace)

    def index(self, key: Any, namespace: Any, stamp: int) -> None:
        """Register the expiry of a restored entry stamped ``stamp`` (:meth:`restore`)."""
        self.timers.register_processing_time(stamp + self.ms, key, namespace)

    def is_due(self, stamp: int | None, expiry: int) -> bool:
        """Whether a timer firing at ``expiry`` is the one of an entry stamped ``stamp`` (else
        the entry was rewritten or replaced since: the timer is stale)."""
        return stamp is not None and stamp + self.ms == expiry

    def sweep(self, now: int, on_expiry: OnTimer) -> int:
        """Fire every expiry timer due at ``now`` (ms): ``on_expiry(expiry ms, key,
        namespace)`` in expiry order; the owner removes the entry when :meth:`is_due`.
        Returns how many fired."""
        due = self.timers.next_processing_time
        if due is None or due > now:
            return 0
        return self.timers.advance_processing_time(now, on_expiry)
