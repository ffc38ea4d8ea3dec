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
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson

from kstream.errors import RecordError
from kstream.graph.plan import Plan, Stage
from kstream.io import codecs
from kstream.operators.window.base import LateRecord, WindowOperator
from kstream.pipeline.dataflow import upstream_source
from kstream.runtime.executor import H_SEQ, Emit, NodeExecutor, TaskHooks
from kstream.runtime.policy import (
    BadRecordFailure,
    ErrorRouter,
    Policy,
    derived_origin,
    message_origin,
    source_policy,
)
from kstream.time.timestamps import extractor, now_ms, record_time_ms
from kstream.time.watermarks import (
    ACTIVE,
    END,
    IDLE,
    MAX_WATERMARK,
    MIN_WATERMARK,
    STOPPED,
    PartitionWatermark,
    UpstreamWatermarks,
)

log = logging.getLogger("kstream.runtime.task")

H_WATERMARK = "kstream.watermark"
H_ORIGIN = "kstream.origin"
H_STATUS = "kstream.status"
#: A task's counters (records in and out, late, skipped, dead-lettered, duplicates dropped, ...)
COUNTERS = ("in", "forwarded", "out", "late", "skipped", "dead_letter", "duplicates")
MARKER_INTERVAL_MS = 200


class Task:
    """One input partition of one stage.

    Args:
        plan: the job graph.
        stage: the stage this task runs.
        partition: the input partition it owns.
        emit: output callable (see module docstring).
        out_partitions: partitions of each repartition topic the stage writes (by topic; an
            int: of its one repartition topic).
        upstream_tasks: tasks of the previous stage (0 for the source stage).
        clock: processing-time clock in epoch ms.

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
        upstream_tasks: int = 0,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self.plan, self.stage, self.partition, self.emit = plan, stage, partition, emit
        self.id = f"{stage.index}:{partition}"
        self.clock = clock
        self.out_topics = _out_topics(plan, stage, out_partitions)
        source = stage.source
        self.source = source
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.errors = ErrorRouter(emit, self.counters)
        self._current: Any = None  # the record being processed (None: timers, end of input)
        self._rejected = False  # the current record went to the error policy
        self.hooks = TaskHooks(self.id, emit, self.counters, self._on_bad, self._next_seq, clock)
        self.executor = NodeExecutor(plan, stage, self.hooks)
        self.windows = self.executor.windows
        self._push = self.executor.entries[stage.inputs[0].node]
        self._watermark = MIN_WATERMARK
        self.position: int | None = None
        self.finished = False
        self.stopped_by: str | None = None
        self._seq_base = -1
        self._seq_sub = 0
        self.seen: dict[bytes, int] = {}
        self.marker_interval_ms = MARKER_INTERVAL_MS
        self._idle = False
        self._last_record_at = clock()
        self._marker = (MIN_WATERMARK, ACTIVE, 0)  # last sent: watermark, status, at
        if source is not None:
            wm = source.watermark
            bound = 0 if wm.strategy == "monotonous" else wm.max_out_of_orderness_ms
            self.source_wm: PartitionWatermark | None = PartitionWatermark(
                bound, wm.max_future_skew_ms
            )
            self.upstream: UpstreamWatermarks | None = None
            self._source_policy = source_policy(source)
            self._decode_key, self._decode_value = codecs.source_decoders(
                source, plan.spec.schema_registry
            )
            self._extract = extractor(source.time)
            if source.time.kind == "processing":  # the task's clock, not the wall clock
                self._extract = lambda _value, _kafka_ts: clock()
            self.process = self._process_source
        else:
            self.source_wm = None
            self.upstream = UpstreamWatermarks(upstream_tasks)
            self._source_policy = source_policy(upstream_source(plan.spec, stage.id))
            self.process = self._process_repartition

    @property
    def late_listener(self) -> Callable[[WindowOperator, list[LateRecord]], None] | None:
        """Also told of every element a window drops as late (the test driver)."""
        return self.hooks.late_listener

    @late_listener.setter
    def late_listener(self, listener: Callable[[WindowOperator, list[LateRecord]], None]) -> None:
        self.hooks.late_listener = listener

    def advance(self, watermark: int) -> None:
        """Move the task's watermark to ``watermark`` (epoch ms; never back): every node sees
        it in topological order, each firing before the next sees it."""
        if watermark > self._watermark:
            self.executor.on_watermark(watermark)
            self._watermark = watermark

    def _on_bad(
        self, exc: RecordError, policy: Policy, derived: bool, key: Any, value: Any
    ) -> None:
        """Route a record that failed in an operator or sink by ``policy``: a dead letter holds
        the record as read when it is the one being processed, else (a window result) the
        failing record as JSON, timestamped with processing time."""
        msg = self._current
        if derived or msg is None:
            origin = derived_origin(
                key, value, self.clock(), self.stage.input_topic, self.partition
            )
        else:
            origin = message_origin(msg, self.stage.input_topic, self.partition)
            self._rejected = True
        self.errors.handle(exc, policy, origin)

    def _send_marker(self, status: str, force: bool = False) -> None:
        if not self.out_topics:
            return
        wm = self.watermark
        last_wm, last_status, last_at = self._marker
        now = self.clock()
        if not force and wm <= last_wm and status == last_status:
            return
        if not force and status == last_status and now - last_at < self.marker_interval_ms:
            return
        headers = [
            (H_WATERMARK, str(wm).encode()),
            (H_ORIGIN, self.id.encode()),
            (H_STATUS, status.encode()),
        ]
        for topic, partitions in self.out_topics:
            for p in range(partitions):
                # the watermark travels in the header; the Kafka timestamp is the produce time
                self.emit(topic, None, None, now, headers, p)
        self._marker = (wm, status, now)

    # -- inputs -------------------------------------------------------------------------------

    def _next_seq(self) -> int:
        """Sequence of the next repartition record: ``input offset << 24 | n`` for the n-th
        output caused by the record being processed (the task's position for outputs of
        watermarks and timers). It depends only on the input, so a task resumed from any
        checkpoint replays exactly the sequences it produced before."""
        current = self._current
        base = current.offset() if current is not None else (self.position or 0)
        if base != self._seq_base:
            self._seq_base, self._seq_sub = base, 0
        self._seq_sub += 1
        return (base << 24) | self._seq_sub

    @property
    def watermark(self) -> int:
        """The task's current watermark (epoch ms; -2**63 before any)."""
        return self._watermark

    def _process_source(self, msgs: Sequence[Any]) -> None:
        decode_value, decode_key, extract = self._decode_value, self._decode_key, self._extract
        gen = self.source_wm
        assert gen is not None
        push, skew = self._push, gen.max_future_skew_ms
        try:
            for m in msgs:
                self._current, self._rejected = m, False
                try:
                    value = decode_value(m.value())
                    ts = extract(value, m.timestamp()[1])
                    if ts > gen.max_ts + skew and gen.max_ts != MIN_WATERMARK:
                        raise RecordError(
                            "timestamp",
                            f"event time {ts} is more than {skew} ms "
                            f"ahead of the highest seen ({gen.max_ts})",
                        )
                    push(decode_key(m.key()), value, ts)
                except BadRecordFailure:
                    raise
                except RecordError as exc:
                    self._bad(m, exc)
                    continue
                if ts > gen.max_ts and not self._rejected:  # a bad record never moves time
                    wm = gen.observe(ts)
                    if wm > self._watermark:
                        self.advance(wm)
        finally:
            self._current = None
        self._after_batch(msgs)

    def _after_batch(self, msgs: Sequence[Any]) -> None:
        if msgs:
            if self.stage.is_source:
                self.counters["in"] += len(msgs)
            self.position = msgs[-1].offset() + 1
            self._last_record_at = self.clock()
            if self._idle:
                self._idle = False
            self._send_marker(ACTIVE)

    def _process_repartition(self, msgs: Sequence[Any]) -> None:
        upstream, push, loads = self.upstream, self._push, orjson.loads
        assert upstream is not None
        seen = self.seen
        try:
            for m in msgs:
                raw = m.value()
                if raw is None:
                    self._on_marker(m.headers() or [])
                    continue
                headers = m.headers()
                self._current = m
                try:
                    origin, seq = repartition_sequence(headers)
                    if seq <= seen.get(origin, 0):
                        self.counters["duplicates"] += 1
                        continue
                    seen[origin] = seq
                    ts = m.timestamp()[1]
                    if len(headers) > 1:  # a time Kafka cannot store travels in a header
                        ts = record_time_ms(headers, ts)
                    push(loads(m.key()), loads(raw), ts)
                except BadRecordFailure:
                    raise
                except RecordError as exc:
                    self._bad(m, exc)
        finally:
            self._current = None
        self._after_batch(msgs)
        if not self.stopped_by and upstream.stopped_by() is not None:
            self.stop(upstream.stopped_by() or "")
        if upstream.ended and not self.finished:
            self.end_of_input()

    def _on_marker(self, headers: list[tuple[str, bytes]]) -> None:
        fields = {k: v for k, v in headers}
        if H_WATERMARK not in fields or self.upstream is None:
            return
        wm = self.upstream.update(
            fields[H_ORIGIN].decode(), int(fields[H_WATERMARK]), fields[H_STATUS].decode()
        )
        self.advance(wm)

    def _bad(self, msg: Any, exc: RecordError) -> None:
        """A record that failed before the chain (deserialize, timestamp): the source's policy.

        Raises:
            BadRecordFailure: under ``on_error: fail``.
        """
        origin = message_origin(msg, self.stage.input_topic, self.partition)
        self.errors.handle(exc, self._source_policy, origin)

    # -- time ---------------------------------------------------------------------------------

    def tick(self) -> None:
        """Processing-time housekeeping: processing-time watermark, idleness, marker flush."""
        now = self.clock()
        if self.finished or self.stopped_by:
            return
        source = self.source
        if source is not None and source.time.kind == "processing" and self.source_wm:
            self.advance(self.source_wm.observe(now))
        self.executor.on_processing_time(now)
        idle_after = source.watermark.idle_timeout_ms if source is not None else None
        if idle_after is not None and not self._idle and now - self._last_record_at >= idle_after:
            self._idle = True
            self._send_marker(IDLE, force=True)
            return
        self._send_marker(IDLE if self._idle else ACTIVE)

    def set_watermark(self, watermark: int) -> None:
        """Force the source watermark (test driver); it never regresses."""
        if self.source_wm is not None:
            self.source_wm.force(watermark)
            self.advance(self.source_wm.watermark)
        self._send_marker(ACTIVE)

    def end_of_input(self) -> None:
        """Bounded input is exhausted: the watermark jumps to +infinity, every window fires,
        and downstream tasks are told this task has ended."""
        if self.source_wm is not None:
            self.source_wm.force(MAX_WATERMARK)
        self.advance(MAX_WATERMARK)
        self._send_marker(END, force=True)
        self.finished = True

    def stop(self, request_id: str) -> None:
        """Stop for a savepoint (``--stop``): consume nothing more in this run and tell
        downstream tasks, in-band, after everything this task produced. A downstream task stops
        once all its upstream tasks have, so its input is drained."""
        self.stopped_by = request_id
        self._send_marker(STOPPED + request_id, force=True)

    def resume_after_stop(self) -> None:
        """Forget a stop of an earlier run: consume again, and count upstream tasks that had
        stopped as active until their next marker."""
        self.stopped_by = None
        if self.upstream is not None:
            self.upstream.resume_after_stop()

    def flush_markers(self) -> None:
        """Send a marker now if the watermark moved since the last one (before a checkpoint)."""
        if not self.finished and not self.stopped_by:
            self._send_marker(
                IDLE if self._idle else ACTIVE, force=self.watermark > self._marker[0]
            )

    # -- state --------------------------------------------------------------------------------

    def state_changes(self) -> dict[str, list[tuple[bytes, bytes | None]]]:
        """Per store name, each key changed since the last call, once (None = deleted)."""
        return self.executor.state_changes()

    def meta(self) -> dict[str, Any]:
        """The task's non-window state: input position, watermark generator, finished flag."""
        gen = self.source_wm.to_state() if self.source_wm else None
        up = self.upstream.to_state() if self.upstream else None
        return {
            "position": self.position,
            "watermark": self._watermark,
            "source": gen,
            "upstream": up,
            "finished": self.finished,
            "stopped_by": self.stopped_by,
            "marker": list(self._marker[:2]),
            "seen": {k.decode(): v for k, v in self.seen.items()},
        }

    def restore(
        self, meta: dict[str, Any] | None, stores: Mapping[str, Iterable[tuple[bytes, bytes]]]
    ) -> None:
        """Rebuild the task from checkpointed ``meta`` and store entries (None: fresh task)."""
        if meta is None:
            return
        self.position = meta["position"]
        self.finished = bool(meta["finished"])
        self.stopped_by = meta.get("stopped_by")
        self._watermark = int(meta["watermark"])
        if self.source_wm is not None and meta["source"]:
            self.source_wm.load_state(meta["source"])
        if self.upstream is not None and meta["upstream"]:
            self.upstream.load_state(meta["upstream"])
        self._marker = (int(meta["marker"][0]), str(meta["marker"][1]), 0)
        self.seen = {k.encode(): int(v) for k, v in (meta.get("seen") or {}).items()}
        self.executor.restore(stores, self._watermark)

    def open_windows(self) -> int:
        """Windows currently held by the task's operators."""
        return sum(w.open_windows() for w in self.windows)


def _out_topics(
    plan: Plan, stage: Stage, partitions: Mapping[str, int] | int
) -> list[tuple[str, int]]:
    """``(repartition topic, partition count)`` of every ``key_by`` output of ``stage``."""
    topics = [topic for topic, _ in plan.output_topics(stage)]
    if isinstance(partitions, int):
        return [(topic, partitions) for topic in topics]
    return [(topic, partitions.get(topic, 0)) for topic in topics]


def repartition_sequence(headers: list[tuple[str, bytes]] | None) -> tuple[bytes, int]:
    """``(origin task, sequence number)`` of a repartition record, from its first header
    ``kstream.seq`` = ``b"<origin>/<seq>"`` (written by the upstream task, used to drop
    duplicates).

    Raises:
        RecordError: (stage ``deserialize``) the header is missing or malformed: the record was
            not written by a kstream task; it follows the source's error policy.
    """
    if headers:
        name, raw = headers[0]
        if name == H_SEQ and raw:
            origin, _, seq_text = raw.partition(b"/")
            if seq_text.isdigit():
                return origin, int(seq_text)
    raise RecordError(
        "deserialize",
        f"repartition record without a valid {H_SEQ} header (first header: "
        f"{headers[0] if headers else None!r}); only kstream tasks write repartition topics",
    )


def marker_fields(headers: list[tuple[str, bytes]] | None) -> dict[str, str] | None:
    """The watermark marker carried by ``headers`` (None when it is a data record)."""
    if not headers:
        return None
    fields = {k: v.decode() for k, v in headers if k.startswith("kstream.")}
    return fields if H_WATERMARK in fields else None


__all__ = ["END", "Task", "marker_fields"]
