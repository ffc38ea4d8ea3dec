"""The event-time temporal join (Flink ``FOR SYSTEM_TIME AS OF`` on a versioned table,
``TemporalRowTimeJoinOperator``; docs/joins.md, "Temporal join").

The right input is a versioned table: each of its records at ``ts`` is the version of its key's
row valid from ``ts`` until the next version (a tombstone: no row from ``ts`` on), kept in a
:class:`~kstream.state.versioned.VersionedStore`. A left record at ``t`` joins the version of
its key valid at ``t``: the one with the largest time ``<= t``. It waits until the join's
watermark (the min of both inputs) reaches ``t``, so every version up to ``t`` has arrived
(timestamp: ``t``; results are final, never retracted)::

    table    --V1@08:00-------------V2@10:00----------------------
    left     ---------L@09:30--L@10:00-----L@09:59(late? no: waits)
    output   when watermark >= 09:30: L@09:30+V1; >= 10:00: L@10:00+V2 ...

- ``how: inner`` drops a left record without a version valid at ``t``; ``how: left`` emits it
  with the right side null.
- A left record arriving with ``t <= watermark`` is joined at once (its versions are in).
- A left record whose time falls behind its key's version history while it waits (the table
  ran more than ``history`` ahead) goes to ``late`` too: never a silently missing version.
- Versions are kept for ``versioned`` (``history_ms``) of event time behind the join's
  watermark (:class:`~kstream.operators.join.versions.TableVersions`): a version no longer
  valid at ``watermark - history`` is dropped (the one valid then stays), so every waiting left
  record finds its version. A left record with ``t`` before that horizon, or a table record
  older than it, cannot be answered right: ``late`` port.
- A left record whose key is null matches nothing.

State: the left records waiting for the watermark (a
:class:`~kstream.operators.join.buffer.JoinBuffer`, side ``left``, with an event-time timer at
each waiting time) and each key's versions (by time bucket), in the join's store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kstream.operators.join.buffer import JOIN_CODEC, BufferKey, JoinBuffer
from kstream.operators.join.output import JoinOutput
from kstream.operators.join.versions import TableVersions
from kstream.pipeline.spec_joins import JoinSpec
from kstream.state.cache import KeyValueStore
from kstream.time.timers import TimerService
from kstream.time.watermarks import MIN_WATERMARK

#: ``(key, value, timestamp_ms)`` to the join's main output.
Emit = Callable[[Any, Any, int], None]
#: ``(side, key, value, timestamp_ms, watermark_ms)``: a record late for the join.
OnLate = Callable[[str, Any, Any, int, int], None]
#: The time bucket of the waiting records' indexes (ms).
WAITING_BUCKET_MS = 60_000


class TemporalJoin:
    """The temporal join of one task (see the module docstring).

    Args:
        op: the join's spec (``how``: inner or left).
        history_ms: the table's ``versioned`` (ms).
        output: builds the joined values.
        emit: receives the joined records.
        on_late: receives the records that cannot be answered.
    """

    def __init__(
        self, op: JoinSpec, history_ms: int, output: JoinOutput, emit: Emit, on_late: OnLate
    ) -> None:
        self.left_outer = op.how == "left"
        self.history_ms = history_ms
        self.output, self.emit, self.on_late = output, emit, on_late
        self.watermark = MIN_WATERMARK
        self.bind(KeyValueStore(JOIN_CODEC), TimerService())

    def bind(self, store: KeyValueStore[BufferKey, Any], timers: TimerService) -> None:
        """Keep the waiting records and the versions in ``store``, the timers in ``timers``."""
        self.store, self.timers = store, timers
        self.waiting = JoinBuffer(store, "left", WAITING_BUCKET_MS)
        self.versions = TableVersions(store, self.history_ms)

    def advance(self, watermark: int) -> None:
        """The watermark moved (after the waiting records' timers fired): versions older than
        ``watermark - history`` may go."""
        self.watermark = watermark
        self.versions.advance(watermark)

    def process(self, side: str, key: Any, value: Any, ts: int, watermark: int) -> None:
        """One record of ``side`` at ``ts`` (ms) under the join's ``watermark`` (ms).

        Raises:
            RecordError: the joined value cannot be built (before any state changes).
        """
        if side == "right":
            if key is not None and not self.versions.put(key, value, ts):
                self.on_late(side, key, value, ts, watermark)
            return
        self.output.joined(value, None)  # a left record that is not an object is bad
        if key is None:
            if self.left_outer:
                self.emit(key, self.output.joined(value, None), ts)
        elif ts < self.versions.horizon:
            self.on_late(side, key, value, ts, watermark)
        elif watermark > MIN_WATERMARK and ts <= watermark:
            self._answer(key, value, ts)
        else:
            self.waiting.add(key, value, ts)
            self.timers.register_event_time(ts, key, "left")

    def on_timer(self, at: int, key: Any, namespace: Any = "left") -> None:
        """The watermark reached ``at`` (ms): ``key``'s records waiting at ``at`` are joined."""
        for _row, value in self.waiting.pop(key, at):
            self._answer(key, value, at)

    def _answer(self, key: Any, value: Any, ts: int) -> None:
        """Join a left record at ``ts`` with the version valid then and emit it."""
        right = self.versions.get(key, ts)
        if right is not None or self.left_outer:
            self.emit(key, self.output.joined(value, right), ts)
