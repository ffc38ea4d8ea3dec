"""The inputs of a task: one topic-partition each, a source or a repartition topic.

A task reads one partition number of every topic its stage reads (co-partitioned inputs,
DESIGN.md section 3). Each input decodes its records, keeps its own position and watermark, and
pushes records into the stage's graph (the node executor's entry for its node). The task
combines the inputs' watermarks in a valve (Flink ``StatusWatermarkValve``).

- :class:`SourceInput`: records as written by producers; event time extracted per record, the
  watermark generated per partition (``max_ts - bound - 1``), idleness after ``idle_timeout``
  (processing time); bad records (deserialize, timestamp) follow the source's policy.
- :class:`RepartitionInput`: records written by upstream tasks (JSON key and value, the exact
  event time in the Kafka timestamp or a header, the ``kstream.seq`` header to drop
  duplicates), and their in-band watermark markers, combined over upstream tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from kstream.errors import RecordError
from kstream.graph.plan import Stage, StageInput
from kstream.io import codecs
from kstream.io.key_fields import key_reader, tombstone_key
from kstream.operators.base import Receiver
from kstream.pipeline.dataflow import upstream_source
from kstream.runtime.policy import BadRecordFailure, Policy, message_origin, source_policy
from kstream.runtime.record_metadata import metadata_attacher
from kstream.runtime.terminals import H_SEQ
from kstream.time.timestamps import extractor, record_time_ms
from kstream.time.watermarks import (
    END,
    IDLE,
    MIN_WATERMARK,
    PartitionWatermark,
    UpstreamWatermarks,
)

if TYPE_CHECKING:
    from kstream.runtime.task import Task

H_WATERMARK = "kstream.watermark"
H_ORIGIN = "kstream.origin"
H_STATUS = "kstream.status"


class TaskInput:
    """What both kinds share: the topic, the position (next offset to read), the entry into
    the graph and the task's error handling for records that fail before it.

    Attributes:
        index: position among the task's inputs (its channel in the task's valve).
        position: the next offset to read (None before the first checkpoint or record).
        finished: end of input reached (bounded runs, or every upstream task ended).
        stopped_by: the savepoint request this input stopped for.
    """

    kind = ""

    def __init__(self, task: Task, stage_input: StageInput, index: int, push: Receiver) -> None:
        self.task, self.topic, self.index, self.push = task, stage_input.topic, index, push
        self.node = stage_input.node
        self.position: int | None = None
        #: bounded runs: the end offset found at start (records from there on are not read)
        self.end_offset: int | None = None
        #: bounded runs: where the consumer last reached the end of the partition (every
        #: record before it was delivered); past a transaction's commit or abort marker, an
        #: offset without a record, which the position never reaches by records alone
        self.eof_offset: int | None = None
        self.finished = False
        self.stopped_by: str | None = None
        self.policy: Policy = source_policy(upstream_source(task.plan.spec, stage_input.node))
        #: ``kstream.seq`` origin of the outputs this input causes, and its series
        several = len(task.stage.inputs) > 1
        self.seq_origin = f"{task.id}.{index}/".encode() if several else f"{task.id}/".encode()
        self.seq_base, self.seq_sub = -1, 0

    @property
    def watermark(self) -> int:
        """This input's own watermark (epoch ms)."""
        raise NotImplementedError

    def process(self, msgs: Sequence[Any]) -> None:
        """Push a batch of records of this topic-partition (offset order) into the graph."""
        raise NotImplementedError

    def bad(self, msg: Any, exc: RecordError) -> None:
        """A record that failed before the graph (deserialize, timestamp): the source's policy.

        Raises:
            BadRecordFailure: under ``on_error: fail``.
        """
        origin = message_origin(msg, self.topic, self.task.partition)
        self.task.errors.handle(exc, self.policy, origin)

    def after_batch(self, msgs: Sequence[Any]) -> None:
        if msgs:
            self.position = msgs[-1].offset() + 1

    def to_state(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "finished": self.finished,
            "stopped_by": self.stopped_by,
            "seq": [self.seq_base, self.seq_sub],
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.position = state.get("position")
        self.finished = bool(state.get("finished", False))
        self.stopped_by = state.get("stopped_by")
        # outputs of timers and the end of input share one base (the position): a resumed
        # task numbers on from the checkpoint, or downstream tasks would drop its outputs
        self.seq_base, self.seq_sub = state.get("seq") or (-1, 0)


class SourceInput(TaskInput):
    """A partition of a source topic (see the module docstring)."""

    kind = "source"

    def __init__(self, task: Task, stage_input: StageInput, index: int, push: Receiver) -> None:
        super().__init__(task, stage_input, index, push)
        source = stage_input.source
        assert source is not None
        self.source = source
        self.policy = source_policy(source)
        wm = source.watermark
        bound = 0 if wm.strategy == "monotonous" else wm.max_out_of_orderness_ms
        if wm.strategy == "sql":  # Flink SQL: max - bound, no -1 ms (PartitionWatermark has it)
            bound -= 1
        self.gen = PartitionWatermark(bound, wm.max_future_skew_ms)
        self.decode_key, self.decode_value = codecs.source_decoders(
            source, task.plan.spec.schema_registry
        )
        self.extract: Callable[[Any, int], int] = extractor(source.time)
        if source.time.kind == "processing":  # the task's clock, not the wall clock
            clock = task.clock
            self.extract = lambda _value, _kafka_ts: clock()
        elif source.table is not None:  # a tombstone has no fields: its Kafka timestamp
            of_value = self.extract
            self.extract = lambda value, kafka_ts: (
                kafka_ts if value is None else of_value(value, kafka_ts)
            )
        self.attach = metadata_attacher(source.metadata, key_reader(source))
        self.tombstone_key = tombstone_key(source)
        self.idle_after = wm.idle_timeout_ms
        self.idle = False
        self.last_record_at = task.clock()

    @property
    def watermark(self) -> int:
        return self.gen.watermark

    def process(self, msgs: Sequence[Any]) -> None:
        task = self.task
        if msgs and self.idle:  # active again before its watermark moves (Flink's order)
            self.idle = False
            task.input_active(self, True)
        decode_value, decode_key, extract = self.decode_value, self.decode_key, self.extract
        attach, tombstone = self.attach, self.tombstone_key
        gen, push, skew = self.gen, self.push, self.gen.max_future_skew_ms
        try:
            for m in msgs:
                task._current, task._rejected = m, False
                try:
                    value = decode_value(m.value())
                    key = decode_key(m.key())
                    if attach is not None and value is not None:
                        value = attach(value, m, key)
                    elif tombstone is not None and value is None:
                        key = tombstone(key)
                    ts = extract(value, m.timestamp()[1])
                    if ts > gen.max_ts + skew and gen.max_ts != MIN_WATERMARK:
                        raise RecordError(
                            "timestamp",
                            f"event time {ts} is more than {skew} ms "
                            f"ahead of the highest seen ({gen.max_ts})",
                        )
                    push(key, value, ts)
                except BadRecordFailure:
                    raise
                except RecordError as exc:
                    self.bad(m, exc)
                    continue
                if ts > gen.max_ts and not task._rejected:  # a bad record never moves time
                    task.input_watermark(self, gen.observe(ts))
        finally:
            task._current = None
        if msgs:
            task.counters["in"] += len(msgs)
            self.after_batch(msgs)
            self.last_record_at = task.clock()

    def tick(self, now: int) -> None:
        """Processing time is ``now`` (epoch ms): the processing-time watermark, idleness."""
        if self.source.time.kind == "processing":
            self.task.input_watermark(self, self.gen.observe(now))
        if (
            self.idle_after is not None
            and not self.idle
            and now - self.last_record_at >= self.idle_after
        ):
            self.idle = True
            self.task.input_active(self, False)

    def to_state(self) -> dict[str, Any]:
        return {**super().to_state(), "source": self.gen.to_state()}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        if state.get("source"):
            self.gen.load_state(state["source"])


class RepartitionInput(TaskInput):
    """A partition of a repartition topic written by the tasks of an upstream stage.

    Args:
        upstream_tasks: how many tasks write the topic (the upstream stage's partitions).
    """

    kind = "repartition"

    def __init__(
        self, task: Task, stage_input: StageInput, index: int, push: Receiver, upstream_tasks: int
    ) -> None:
        super().__init__(task, stage_input, index, push)
        #: the stage whose tasks write the topic (the origins of its markers and sequences)
        self.writer = task.plan.stage_of_key_by(stage_input.node)
        self.upstream = UpstreamWatermarks(upstream_tasks)
        #: highest sequence applied per upstream origin (drops replayed duplicates)
        self.seen: dict[bytes, int] = {}

    @property
    def watermark(self) -> int:
        return self.upstream.watermark

    def process(self, msgs: Sequence[Any]) -> None:
        task, push, loads, seen = self.task, self.push, orjson.loads, self.seen
        try:
            for m in msgs:
                raw = m.value()
                if raw is None:
                    self.on_marker(m.headers() or [])
                    continue
                headers = m.headers()
                task._current = m
                try:
                    origin, seq = repartition_sequence(headers)
                    last = seen.get(origin)
                    if last is None:  # a new origin, or one named as older versions did
                        origin = self._renamed(origin)
                        last = seen.get(origin, 0)
                    if seq <= last:
                        task.counters["duplicates"] += 1
                        continue
                    seen[origin] = seq
                    task.counters["in_repartition"] += 1
                    ts = m.timestamp()[1]
                    if len(headers) > 1:  # a time Kafka cannot store travels in a header
                        ts = record_time_ms(headers, ts)
                    push(loads(m.key()), loads(raw), ts)
                except BadRecordFailure:
                    raise
                except RecordError as exc:
                    self.bad(m, exc)
        finally:
            task._current = None
        self.after_batch(msgs)
        upstream = self.upstream
        stopped = upstream.stopped_by()
        if not self.stopped_by and stopped is not None:
            task.input_stopped(self, stopped)
        if upstream.ended and not self.finished:
            task.end_input(self)

    def on_marker(self, headers: list[tuple[str, bytes]]) -> None:
        fields = {k: v for k, v in headers}
        if H_WATERMARK not in fields:
            return
        upstream = self.upstream
        was_idle = upstream.valve.idle
        origin = renamed_origin(fields[H_ORIGIN].decode(), self.writer)
        wm = upstream.update(origin, int(fields[H_WATERMARK]), fields[H_STATUS].decode())
        if upstream.valve.idle != was_idle:
            self.task.input_active(self, not upstream.valve.idle)
        self.task.input_watermark(self, wm)

    def to_state(self) -> dict[str, Any]:
        return {
            **super().to_state(),
            "upstream": self.upstream.to_state(),
            "seen": {k.decode(): v for k, v in self.seen.items()},
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`to_state` output; origins a checkpoint of an older version named
        ``<stage index>:<partition>`` are renamed (:func:`renamed_origin`)."""
        super().load_state(state)
        writer = self.writer
        upstream = state.get("upstream")
        if upstream:
            latest = upstream.get("latest") or {}
            renamed = {renamed_origin(o, writer): entry for o, entry in latest.items()}
            self.upstream.load_state({**upstream, "latest": renamed})
        self.seen = {}
        for origin, seq in (state.get("seen") or {}).items():
            key = renamed_origin(origin, writer).encode()
            self.seen[key] = max(int(seq), self.seen.get(key, 0))

    def _renamed(self, origin: bytes) -> bytes:
        """``origin`` of a ``kstream.seq`` header, renamed by :func:`renamed_origin`."""
        text = origin.decode(errors="replace")
        renamed = renamed_origin(text, self.writer)
        return origin if renamed == text else renamed.encode()


def renamed_origin(origin: str, writer: Stage) -> str:
    """An origin of the tasks of stage ``writer`` (a task id, with ``.<input index>`` in a
    sequence of a task reading several topics) as this version names it.

    Versions before task ids were named by stage id wrote ``<stage index>:<partition>``; their
    checkpoints (duplicate detection, upstream watermarks), and the records and markers they
    left in a repartition topic, name ``writer``'s tasks that way. Such an origin becomes
    ``<stage id>:<partition>``; any other is returned as is. A stage id never contains ``:``,
    and the old form's prefix differs from ``writer``'s id, so no current origin is renamed.
    """
    prefix, sep, rest = origin.rpartition(":")
    if sep and prefix == str(writer.index) and prefix != writer.id:
        return f"{writer.id}:{rest}"
    return origin


def repartition_sequence(headers: list[tuple[str, bytes]] | None) -> tuple[bytes, int]:
    """``(origin, sequence number)`` of a repartition record, from its first header
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


def legacy_input_state(meta: dict[str, Any]) -> dict[str, Any]:
    """The first input's state in a checkpoint written before ``inputs`` existed."""
    return {
        "position": meta.get("position"),
        "finished": meta.get("finished", False),
        "stopped_by": meta.get("stopped_by"),
        "source": meta.get("source"),
        "upstream": meta.get("upstream"),
        "seen": meta.get("seen") or {},
    }


def marker_fields(headers: list[tuple[str, bytes]] | None) -> dict[str, str] | None:
    """The watermark marker carried by ``headers`` (None when it is a data record)."""
    if not headers:
        return None
    fields = {k: v.decode() for k, v in headers if k.startswith("kstream.")}
    return fields if H_WATERMARK in fields else None


__all__ = [
    "END",
    "IDLE",
    "RepartitionInput",
    "SourceInput",
    "TaskInput",
    "legacy_input_state",
    "marker_fields",
    "renamed_origin",
    "repartition_sequence",
]
