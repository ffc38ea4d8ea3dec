"""A task: one input partition of one stage, with its operators, watermark, state and outputs.

The task is pure with respect to I/O: it is handed records (any object with confluent-kafka's
``Message`` accessors: ``key() value() timestamp() offset() headers()``) and an ``emit``
callable, and it calls ``emit(topic, key, value, timestamp_ms, headers, partition)`` for every
output record. The runtime binds ``emit`` to a (transactional) producer; :mod:`kstream.testing`
binds it to lists. Both run exactly this code.

Bad records (:class:`~kstream.errors.RecordError`) are handled where they happen by the error
policy of the source, operator or sink (:mod:`kstream.runtime.policy`, ``docs/errors.md``); under
``fail`` a :class:`~kstream.runtime.policy.BadRecordFailure` escapes ``process``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from kstream.errors import RecordError
from kstream.graph.plan import Plan, Stage, StageInput, task_id
from kstream.operators.window.base import LateRecord, WindowOperator
from kstream.runtime.ending import EndOfInput
from kstream.runtime.executor import Emit, NodeExecutor, TaskHooks
from kstream.runtime.inputs import (
    H_ORIGIN,
    H_STATUS,
    H_WATERMARK,
    RepartitionInput,
    SourceInput,
    TaskInput,
    marker_fields,
    repartition_sequence,
)
from kstream.runtime.markers import MarkerSender
from kstream.runtime.merge import InputMerger
from kstream.runtime.policy import ErrorRouter, Policy, derived_origin, message_origin
from kstream.runtime.task_state import TaskState
from kstream.state.cache import StoreProvider
from kstream.time.timestamps import now_ms
from kstream.time.valve import WatermarkValve
from kstream.time.watermarks import (
    ACTIVE,
    END,
    IDLE,
    MAX_WATERMARK,
    MIN_WATERMARK,
    STOPPED,
)

log = logging.getLogger("kstream.runtime.task")

#: A task's counters: records read from sources (``in``) and from repartition topics
#: (``in_repartition``), written to repartition topics (``forwarded``) and sinks (``out``), late,
#: skipped, dead-lettered, duplicates dropped
COUNTERS = (
    "in",
    "in_repartition",
    "forwarded",
    "out",
    "late",
    "skipped",
    "dead_letter",
    "duplicates",
)
MARKER_INTERVAL_MS = 200
#: a task writing repartition topics sends a marker after every this many records of a batch
#: when its watermark rose (besides every MARKER_INTERVAL_MS): a fast upstream task moves the
#: downstream watermark in small steps, so a downstream step never fires months of timers at
#: once (a temporal join's waiting records, behind a table read in one batch)
MARKER_RECORDS = 1_000


class Task(TaskState):
    """One partition number of one stage: that partition of every topic the stage reads.

    Args:
        plan: the job graph.
        stage: the stage this task runs.
        partition: the partition it owns (of each of the stage's input topics).
        emit: output callable (see module docstring).
        out_partitions: partitions of each repartition topic the stage writes (by topic; an
            int: of its one repartition topic).
        upstream_tasks: tasks writing each repartition topic the stage reads (by topic; an int:
            the same count for all), 0 for a stage reading only sources.
        clock: processing-time clock in epoch ms.
        stores: the task's state stores (RocksDB behind the process's cache); default: in
            memory (the broker-free driver).

    Raises:
        ExpressionError: when an expression or user function fails to compile/load.
    """

    def __init__(
        self,
        plan: Plan,
        stage: Stage,
        partition: int,
        emit: Emit,
        *,
        out_partitions: Mapping[str, int] | int = 0,
        upstream_tasks: Mapping[str, int] | int = 0,
        clock: Callable[[], int] = now_ms,
        stores: StoreProvider | None = None,
    ) -> None:
        self.plan, self.stage, self.partition, self.emit = plan, stage, partition, emit
        self.id = task_id(stage, partition)
        self.clock = clock
        self.markers = MarkerSender(
            self.id, _out_topics(plan, stage, out_partitions), emit, clock, MARKER_INTERVAL_MS
        )
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.errors = ErrorRouter(emit, self.counters)
        self._current: Any = None  # the record being processed (None: timers, end of input)
        self._rejected = False  # the current record went to the error policy
        self.hooks = TaskHooks(self.id, emit, self.counters, self._on_bad, self._next_seq, clock)
        self.hooks.stores = stores or StoreProvider()
        self.executor = NodeExecutor(plan, stage, self.hooks)
        self.windows = self.executor.windows
        self._watermark = MIN_WATERMARK
        self.finished = False
        #: the end of input still being emitted (every input ended; None: not, or all out)
        self.ending: EndOfInput | None = None
        #: timers or keys per slice of the end of input (None: all at once; the runtime bounds
        #: it so it polls and checkpoints between slices)
        self.end_slice: int | None = None
        self.stopped_by: str | None = None
        self.inputs: list[TaskInput] = [
            self._input(i, index, upstream_tasks) for index, i in enumerate(stage.inputs)
        ]
        self._by_topic = {i.topic: i for i in self.inputs}
        #: combines the inputs' watermarks when there are several (one input: its own)
        self.valve: WatermarkValve[int] | None = (
            WatermarkValve(len(self.inputs)) if len(self.inputs) > 1 else None
        )
        self._first = self.inputs[0]
        self.process = self._process_one if len(self.inputs) == 1 else self._process_any
        self.merger = InputMerger(self.inputs, self.end_input)

    def _input(
        self, stage_input: StageInput, index: int, upstream: Mapping[str, int] | int
    ) -> TaskInput:
        push = self.executor.entries[stage_input.node]
        if stage_input.source is not None:
            return SourceInput(self, stage_input, index, push)
        count = upstream if isinstance(upstream, int) else upstream.get(stage_input.topic, 0)
        return RepartitionInput(self, stage_input, index, push, count)

    @property
    def late_listener(self) -> Callable[[WindowOperator, list[LateRecord]], None] | None:
        """Also told of every element a window drops as late (the test driver)."""
        return self.hooks.late_listener

    @late_listener.setter
    def late_listener(self, listener: Callable[[WindowOperator, list[LateRecord]], None]) -> None:
        self.hooks.late_listener = listener

    # -- positions ------------------------------------------------------------------------

    @property
    def position(self) -> int | None:
        """The next offset of the first input (the only one for most tasks)."""
        return self._first.position

    @position.setter
    def position(self, offset: int | None) -> None:
        self._first.position = offset

    @property
    def positions(self) -> dict[str, int | None]:
        """The next offset to read of each input topic (this task's partition of it)."""
        return {i.topic: i.position for i in self.inputs}

    def set_positions(self, positions: Mapping[str, int | None]) -> None:
        """Set the inputs' positions where unknown (the group's committed offsets)."""
        for i in self.inputs:
            if i.position is None:
                i.position = positions.get(i.topic)

    # -- records ----------------------------------------------------------------------------

    def _process_one(self, msgs: Sequence[Any]) -> None:
        if len(msgs) > MARKER_RECORDS and self.markers.topics:
            for start in range(0, len(msgs), MARKER_RECORDS):
                self._first.process(msgs[start : start + MARKER_RECORDS])
                if not self.finished and not self.stopped_by:
                    self._send_marker(ACTIVE, force=self.watermark > self.markers.last[0])
            return
        self._first.process(msgs)
        if msgs:
            self._send_marker(ACTIVE)

    def _process_any(self, msgs: Sequence[Any]) -> None:
        """A batch of one of several inputs: buffered, then records are taken lowest
        timestamp first (:mod:`kstream.runtime.merge`)."""
        if not msgs:
            return
        current = self._by_topic[msgs[0].topic()]
        if current.stopped_by or current.finished:
            return  # read again after the restart: its position does not move
        self.merger.add(current, msgs)
        self.merger.drain()
        self._send_marker(ACTIVE)

    @property
    def backlog(self) -> bool:
        """Whether fetched records are ready to take beyond what the last drain took (its
        budget, :data:`~kstream.runtime.merge.DRAIN_BUDGET`): :meth:`drain_backlog` next."""
        return self.merger.more and not self.finished and self.ending is None

    def drain_backlog(self) -> None:
        """Take the next budget of records already fetched (several inputs only); the runtime
        polls and checkpoints between two calls."""
        self.merger.drain()
        self._send_marker(ACTIVE)

    def input_of(self, topic: str) -> TaskInput:
        """The input reading ``topic``."""
        return self._by_topic[topic]

    # -- time -------------------------------------------------------------------------------

    @property
    def watermark(self) -> int:
        """The task's current watermark (epoch ms; -2**63 before any)."""
        return self._watermark

    def advance(self, watermark: int) -> None:
        """Move the task's watermark to ``watermark`` (epoch ms; never back): every node sees
        it in topological order, each firing before the next sees it."""
        if watermark > self._watermark:
            self.executor.on_watermark(watermark)
            self._watermark = watermark

    def input_watermark(self, source: TaskInput, watermark: int) -> None:
        """An input's watermark rose to ``watermark`` (epoch ms). Several inputs: each node's
        watermark is that of the inputs feeding it (:mod:`kstream.runtime.node_watermarks`);
        the task's (sent downstream, checkpointed) is the valve over all of them. A
        repartition input whose upstream tasks all ended reaches +infinity through
        :meth:`end_input` (after its batch), which fires what that makes due in slices."""
        if isinstance(source, RepartitionInput) and source.upstream.ended:
            return
        valve = self.valve
        if valve is None:
            self.advance(watermark)
            return
        self.executor.input_watermark(source.index, watermark)
        self._raise(valve.input_watermark(source.index, watermark))

    def input_active(self, source: TaskInput, active: bool) -> None:
        """An input went idle (``active`` False) or became active again."""
        valve = self.valve
        if valve is not None:
            self.executor.input_status(source.index, active)
            self._raise(valve.input_status(source.index, active))
        self._send_marker(ACTIVE if self._active() else IDLE, force=not active)

    def _raise(self, watermark: int) -> None:
        """Several inputs: the task's own watermark (the nodes have theirs)."""
        if watermark > self._watermark:
            self._watermark = watermark

    def _active(self) -> bool:
        """False when every source input is idle (a task reading only repartition topics
        reports itself active: its watermark follows its upstream tasks')."""
        sources = [i for i in self.inputs if isinstance(i, SourceInput)]
        return not sources or not all(i.idle for i in sources)

    def tick(self) -> None:
        """Processing-time housekeeping: processing-time watermarks, idleness, marker flush."""
        now = self.clock()
        if self.finished or self.stopped_by:
            return
        for i in self.inputs:
            if isinstance(i, SourceInput) and not i.finished:
                i.tick(now)
        self.executor.on_processing_time(now)
        self._send_marker(ACTIVE if self._active() else IDLE)

    def set_watermark(self, watermark: int, topic: str | None = None) -> None:
        """Force the watermark of the source input reading ``topic`` (every source input when
        None; test driver); it never regresses."""
        for i in self.inputs:
            if isinstance(i, SourceInput) and topic in (None, i.topic):
                i.gen.force(watermark)
                self.input_watermark(i, i.gen.watermark)
        self._send_marker(ACTIVE)

    def end_of_input(self) -> None:
        """Bounded input is exhausted on every source input: see :meth:`end_input`."""
        for i in self.inputs:
            if isinstance(i, SourceInput):
                self.end_input(i)

    def end_sources_at(self, ends: Mapping[tuple[str, int], int]) -> bool:
        """Bounded runs: end each source input whose position reached its end offset
        (``ends``: by (topic, partition), found at start); True when one ended now."""
        ended = False
        for i in self.inputs:
            if not isinstance(i, SourceInput) or i.finished:
                continue
            i.end_offset = ends.get((i.topic, self.partition), 0)
            if self.merger.read_to_end(i):
                self.end_input(i)
                ended = True
        if len(self.inputs) > 1:
            finished = {i.index for i in self.inputs if i.finished}
            self.merger.drain()  # an input that ended may have held the others back
            ended = ended or any(i.finished and i.index not in finished for i in self.inputs)
        return ended

    def reached_partition_end(self, topic: str, offset: int) -> None:
        """The consumer reached the end of this task's partition of source ``topic`` at
        ``offset`` (the next offset to read): every record before it was delivered. A bounded
        input ends once those records are taken, even when its position stops short of the end
        offset because the partition ends with a transaction marker (another kstream job's
        exactly-once output, a repartition topic), which holds no record."""
        for i in self.inputs:
            if isinstance(i, SourceInput) and i.topic == topic and not i.finished:
                i.eof_offset = offset if i.eof_offset is None else max(i.eof_offset, offset)

    def end_input(self, source: TaskInput) -> None:
        """``source`` has ended (its end offset reached, or every upstream task ended). Once
        every input has, the watermark jumps to +infinity, every window fires, and downstream
        tasks are told this task has ended."""
        if source.finished and (self.finished or self.ending is not None):
            return  # ended already (a restored end of input goes on where it was)
        source.finished = True
        if isinstance(source, SourceInput):
            source.gen.force(MAX_WATERMARK)
            end = source.end_offset
            if end is not None and (source.position or 0) < end:
                source.position = end  # past the partition's last transaction marker
        last = all(i.finished for i in self.inputs)
        if self.valve is not None:
            self.executor.input_finish(source.index, refresh=not last)
            watermark = self.valve.finish(source.index)
            if not last:  # the last: +infinity once the end of input is out
                self._raise(watermark)
        if last:
            self.ending = self.executor.end_of_input()
            self.drain_end()

    def drain_end(self) -> bool:
        """The next slice of the end of input (at most :attr:`end_slice` timers or keys;
        :mod:`kstream.runtime.ending`); after the last, the watermark is +infinity and
        downstream tasks are told this task has ended. Returns :attr:`finished`."""
        ending = self.ending
        if ending is None:
            return self.finished
        if ending.step(self.end_slice):
            self.ending = None
            self._watermark = MAX_WATERMARK
            self._send_marker(END, force=True)
            self.finished = True
        return self.finished

    def stop(self, request_id: str) -> None:
        """Stop for a savepoint (``--stop``): the source inputs consume nothing more in this
        run. The task stops once every input has (a repartition input when every upstream task
        stopped, so it is drained), and tells downstream tasks, in-band, after everything it
        produced."""
        for i in self.inputs:
            if isinstance(i, SourceInput) and not i.stopped_by:
                i.stopped_by = request_id
        self._stop_if_all(request_id)

    def input_stopped(self, source: TaskInput, request_id: str) -> None:
        """Every upstream task of a repartition input stopped for ``request_id``."""
        source.stopped_by = request_id
        self._stop_if_all(request_id)

    def _stop_if_all(self, request_id: str) -> None:
        if self.stopped_by or not all(i.stopped_by or i.finished for i in self.inputs):
            return
        self.stopped_by = request_id
        self._send_marker(STOPPED + request_id, force=True)

    def resume_after_stop(self) -> None:
        """Forget a stop of an earlier run: consume again, and count upstream tasks that had
        stopped as active until their next marker."""
        self.stopped_by = None
        for i in self.inputs:
            i.stopped_by = None
            if isinstance(i, RepartitionInput):
                i.upstream.resume_after_stop()

    # -- outputs ------------------------------------------------------------------------------

    def _on_bad(
        self, exc: RecordError, policy: Policy, derived: bool, key: Any, value: Any
    ) -> None:
        """Route a record that failed in an operator or sink by ``policy``: a dead letter holds
        the record as read when it is the one being processed, else (a window result) the
        failing record as JSON, timestamped with processing time."""
        msg = self._current
        topic = msg.topic() if msg is not None else self._first.topic
        if derived or msg is None:
            origin = derived_origin(key, value, self.clock(), topic, self.partition)
        else:
            origin = message_origin(msg, topic, self.partition)
            self._rejected = True
        self.errors.handle(exc, policy, origin)

    def _send_marker(self, status: str, force: bool = False) -> None:
        self.markers.send(self._watermark, status, force)

    def flush_markers(self) -> None:
        """Send a marker now if the watermark moved since the last one (before a checkpoint)."""
        if not self.finished and not self.stopped_by:
            status = ACTIVE if self._active() else IDLE
            self._send_marker(status, force=self.watermark > self.markers.last[0])

    def _next_seq(self) -> bytes:
        """The ``kstream.seq`` header of the next repartition record: ``<origin>/<sequence>``,
        the sequence ``(input offset << 24) + n`` for the n-th output caused by the record being
        processed (the input's position for outputs of watermarks and timers). It depends only
        on the input, so a task resumed from any checkpoint replays exactly the sequences it
        produced before. The origin is the task id, with ``.<input index>`` when the task has
        several inputs: offsets of different topics do not rise together, so each input
        numbers its own series, which downstream tasks track per origin."""
        current = self._current
        source = self._by_topic[current.topic()] if current is not None else self._first
        base = current.offset() if current is not None else (source.position or 0)
        if base != source.seq_base:
            source.seq_base, source.seq_sub = base, 0
        source.seq_sub += 1
        return source.seq_origin + str((base << 24) + source.seq_sub).encode()


def _out_topics(
    plan: Plan, stage: Stage, partitions: Mapping[str, int] | int
) -> list[tuple[str, int]]:
    """``(repartition topic, partition count)`` of every ``key_by`` output of ``stage``."""
    topics = [topic for topic, _ in plan.output_topics(stage)]
    if isinstance(partitions, int):
        return [(topic, partitions) for topic in topics]
    return [(topic, partitions.get(topic, 0)) for topic in topics]


__all__ = [
    "END",
    "H_ORIGIN",
    "H_STATUS",
    "H_WATERMARK",
    "Task",
    "marker_fields",
    "repartition_sequence",
]
