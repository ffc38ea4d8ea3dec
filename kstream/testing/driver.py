"""A broker-free test driver: run a whole pipeline in memory with the same operator code.

    driver = PipelineDriver.from_yaml(yaml_text_or_path, partitions=1)
    driver.send("flights", {"origin": "JFK", "ts": 1000})
    driver.send_many("flights", records)      # (key, value, timestamp_ms) tuples, read lazily
    driver.watermark("flights", 5_000)
    driver.end_of_input()
    driver.output("flights-hourly")   # -> [OutputRecord(key, value, timestamp_ms, headers)]
    driver.take_output("flights-hourly")  # the same, then forgotten (long inputs)
    driver.late("flights")            # every element dropped as late
    driver.advance_time(10_000)       # processing time: idleness, triggers, time: processing
    driver.advance_processing_time(10_000)   # the same (Flink harness naming)
    driver.set_processing_time(1_700_000_000_000)   # the clock to an absolute time
    driver.current_watermark("flights")

See ``docs/testing.md``.

Each source partition and each repartition partition is a :class:`~kstream.runtime.task.Task`,
exactly as in ``kstream run``. Records a stage writes to its repartition topic are routed with
Kafka's murmur2 partitioner and delivered, in order, before :meth:`PipelineDriver.send` returns.
Watermark markers are sent on every watermark change (no rate limit), so results are
deterministic. Processing time comes from a manual clock (:meth:`PipelineDriver.advance_time`).
A broadcast table (``table: {broadcast: true}``) is one in-memory table shared by every task; a
record sent to it is applied at once, before the next record is sent (on a broker: as soon as
each process reads it).

Memory: the driver keeps every record written to every topic until it is read with
:meth:`PipelineDriver.take_output`; with ``keep_repartition=False`` it does not keep what goes
through repartition topics. A whole data set (336,776 flights) then fits in a few hundred MB.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from kstream.errors import UsageError
from kstream.graph.plan import Plan, build_plan
from kstream.io import codecs
from kstream.io.partitioner import partition_for
from kstream.operators.window.operator import LateRecord, WindowOperator
from kstream.pipeline.load import load_pipeline, load_pipeline_text
from kstream.pipeline.spec import PipelineSpec
from kstream.runtime.broadcast import BroadcastTable
from kstream.runtime.task import Task
from kstream.runtime.topology import wanted_topics
from kstream.state.cache import StoreProvider, compact


@dataclass(frozen=True)
class OutputRecord:
    """A record written to a topic: decoded ``key`` and ``value``, ``timestamp_ms``, ``headers``
    (header values decoded as UTF-8), and the ``partition`` it went to (None: partitioner's)."""

    key: Any
    value: Any
    timestamp_ms: int
    headers: dict[str, str] = field(default_factory=dict)
    partition: int | None = None


@dataclass
class _Message:
    """Duck-typed stand-in for confluent-kafka's ``Message``."""

    _key: bytes | None
    _value: bytes | None
    _ts: int
    _offset: int
    _headers: list[tuple[str, bytes]] | None = None
    _topic: str = ""
    _partition: int = 0

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, self._ts)

    def offset(self) -> int:
        return self._offset

    def leader_epoch(self) -> int | None:
        return 0

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers


class PipelineDriver:
    """Runs a pipeline in memory. See the module docstring.

    Args:
        spec: the loaded pipeline.
        partitions: source partition count (repartition topics default to the same), or a
            count per source topic (1 for a topic not named).
        start_time_ms: initial processing time of the manual clock.
        keep_repartition: keep the records written to repartition topics for :meth:`topic`
            (False: deliver them, then forget them).
        end_slice: timers or keys per slice of a task's end of input (None: all at once; the
            runtime's slices, :mod:`kstream.runtime.ending`, interleaved with other tasks'
            records as on a broker).
    """

    def __init__(
        self,
        spec: PipelineSpec,
        partitions: int | Mapping[str, int] = 1,
        start_time_ms: int = 0,
        *,
        keep_repartition: bool = True,
        end_slice: int | None = None,
    ) -> None:
        self.plan: Plan = build_plan(spec)
        self.now_ms = start_time_ms
        self.topics: dict[str, list[tuple[bytes | None, bytes | None, int, Any, int | None]]] = {}
        self.late_records: list[tuple[WindowOperator, LateRecord]] = []
        self._queue: deque[tuple[str, int, _Message]] = deque()
        self._offsets: dict[tuple[str, int], int] = {}
        self.partitions = self._layout(partitions)
        #: by (input topic, partition): a task reading several topics is there once per topic
        self.tasks: dict[tuple[str, int], Task] = {}
        self._all_tasks: list[Task] = []
        self.broadcast = {s.topic: BroadcastTable(s, spec) for s in self.plan.broadcast_tables}
        tables = {t.source.id: t for t in self.broadcast.values()}
        for stage in self.plan.stages:
            upstream = {
                self.plan.output_topic_of(k): self.partitions[s.input_topic]
                for k, s in zip(stage.keyed_by, self.plan.upstream_stages(stage), strict=True)
            }
            for p in range(self.partitions[stage.input_topic]):
                task = Task(
                    self.plan,
                    stage,
                    p,
                    self._emit,
                    clock=self._clock,
                    out_partitions=self.partitions,
                    upstream_tasks=upstream,
                    stores=StoreProvider(tables=tables),
                )
                task.markers.interval_ms = 0
                task.end_slice = end_slice
                task.late_listener = self._on_late
                self._all_tasks.append(task)
                for stage_input in stage.inputs:
                    self.tasks[(stage_input.topic, p)] = task
        self._task_topics = {topic for topic, _ in self.tasks}
        sink_topics = {s.topic for s in spec.sinks}
        #: topics whose records are delivered but not kept
        self._unkept = set() if keep_repartition else self._task_topics - sink_topics

    @classmethod
    def from_yaml(
        cls,
        text_or_path: str | Path,
        partitions: int | Mapping[str, int] = 1,
        start_time_ms: int = 0,
        *,
        keep_repartition: bool = True,
        end_slice: int | None = None,
    ) -> PipelineDriver:
        """Load a pipeline from YAML text or a file path (other arguments: see the class).

        Raises:
            ConfigError: the YAML is invalid.
        """
        if isinstance(text_or_path, Path) or (
            "\n" not in text_or_path and Path(text_or_path).is_file()
        ):
            spec = load_pipeline(text_or_path)
        else:
            spec = load_pipeline_text(text_or_path)
        return cls(
            spec, partitions, start_time_ms, keep_repartition=keep_repartition, end_slice=end_slice
        )

    def _layout(self, partitions: int | Mapping[str, int]) -> dict[str, int]:
        """Partition counts as a run would create them (sources: ``partitions``)."""
        sources = {
            s.topic: partitions if isinstance(partitions, int) else partitions.get(s.topic, 1)
            for s in self.plan.spec.sources
        }
        return {**sources, **{t.name: t.partitions for t in wanted_topics(self.plan, sources)}}

    def _clock(self) -> int:
        return self.now_ms

    # -- inputs -------------------------------------------------------------------------------

    def _source_topic(self, source: str) -> str:
        for spec in self.plan.spec.sources:
            if source in (spec.name, spec.topic):
                return spec.topic
        raise UsageError(f"unknown source {source!r}")

    def send(
        self,
        source: str,
        value: Any,
        key: Any = None,
        timestamp_ms: int | None = None,
        partition: int = 0,
    ) -> None:
        """Send one record to a source partition and process everything it causes.

        ``value``: a dict (encoded as JSON), str or bytes (sent as is), or None (a tombstone,
        for a table). ``key``: str, bytes or None. ``timestamp_ms``: the Kafka record
        timestamp (default: the driver's clock).

        Raises:
            RecordError: the record is bad and the source's policy is ``fail``.
        """
        topic = self._source_topic(source)
        raw_value = (
            value
            if isinstance(value, bytes) or value is None
            else (value.encode() if isinstance(value, str) else orjson.dumps(value))
        )
        raw_key = key.encode() if isinstance(key, str) else key
        ts = self.now_ms if timestamp_ms is None else timestamp_ms
        self._deliver(topic, partition, raw_key, raw_value, ts, None)
        self._drain()

    def send_many(
        self, source: str, records: Iterable[tuple[Any, Any, int | None]], partition: int = 0
    ) -> int:
        """Send each ``(key, value, timestamp_ms)`` of ``records`` as :meth:`send` does, one at a
        time: an iterator is consumed lazily, so a generator over a large file is never held
        in memory. Returns the number of records sent.

        Raises:
            RecordError: as :meth:`send`.
        """
        count = 0
        for key, value, timestamp_ms in records:
            self.send(source, value, key=key, timestamp_ms=timestamp_ms, partition=partition)
            count += 1
        return count

    def watermark(self, source: str, watermark_ms: int, partition: int = 0) -> None:
        """Set a source partition's watermark explicitly (it never regresses)."""
        topic = self._source_topic(source)
        self.tasks[(topic, partition)].set_watermark(watermark_ms, topic)
        self._drain()

    def advance_time(self, ms: int) -> None:
        """Move processing time forward by ``ms`` and run every task's timers (idleness,
        processing-time watermarks)."""
        self.now_ms += ms
        for task in self._all_tasks:
            task.tick()
        self._drain()

    def advance_processing_time(self, ms: int) -> None:
        """:meth:`advance_time`: processing time moves forward by ``ms``; due
        processing-time timers (windows' triggers, process functions' timers) fire."""
        self.advance_time(ms)

    def set_processing_time(self, now_ms: int) -> None:
        """Set the processing-time clock to ``now_ms`` (epoch ms) and run every task's timers.

        Raises:
            UsageError: ``now_ms`` is before the clock (processing time never goes back).
        """
        if now_ms < self.now_ms:
            raise UsageError(f"processing time cannot go back ({now_ms} < {self.now_ms})")
        self.advance_time(now_ms - self.now_ms)

    def end_input(self, source: str, partition: int = 0) -> None:
        """End one source partition (by source id or topic): it leaves its task's watermark
        valve, as a bounded run's input does once it has read up to its end offset."""
        topic = self._source_topic(source)
        task = self.tasks[(topic, partition)]
        task.end_input(task.input_of(topic))
        self._drain()

    def end_of_input(self) -> None:
        """End every source partition (bounded input): all windows fire, stage by stage."""
        for task in self._all_tasks:
            if task.stage.is_source and not task.finished:
                task.end_of_input()
        self._drain()

    # -- plumbing -----------------------------------------------------------------------------

    def _deliver(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        ts: int,
        headers: list[tuple[str, bytes]] | None,
    ) -> None:
        offset = self._offsets.get((topic, partition), 0)
        self._offsets[(topic, partition)] = offset + 1
        message = _Message(key, value, ts, offset, headers, topic, partition)
        table = self.broadcast.get(topic)
        if table is not None:
            table.apply([message])
        else:
            self._queue.append((topic, partition, message))

    def _drain(self) -> None:
        """Deliver every queued record (and what a task merging inputs still holds beyond one
        step's budget); then the next slice of each task's end of input (when
        :attr:`end_slice` bounds them), until nothing is left to do."""
        while True:
            while self._queue:
                topic, partition, msg = self._queue.popleft()
                task = self.tasks.get((topic, partition))
                if task is not None and not task.finished and task.ending is None:
                    task.process([msg])
            backlog = [task for task in self._all_tasks if task.backlog]
            for task in backlog:
                task.drain_backlog()
            if backlog:
                continue
            ending = [task for task in self._all_tasks if task.ending is not None]
            if not ending:
                return
            for task in ending:
                task.drain_end()

    def _emit(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        ts: int,
        headers: list[tuple[str, bytes]] | None,
        partition: int | None,
    ) -> None:
        if topic not in self._unkept:
            # Kept as right-sized copies: orjson's bytes keep a buffer of 4 KB or more.
            kept = (_compact(key), _compact(value), ts, headers, partition)
            self.topics.setdefault(topic, []).append(kept)
        if topic in self._task_topics:
            if partition is None:
                partition = partition_for(key or b"", self.partitions[topic])
            self._deliver(topic, partition, key, value, ts, headers)

    def _on_late(self, window: WindowOperator, late: list[LateRecord]) -> None:
        self.late_records.extend((window, record) for record in late)

    def current_watermark(self, source_or_topic: str, partition: int = 0) -> int:
        """The watermark (ms; -2**63 before any) of the task reading a source (by name or
        topic) or a repartition topic, partition ``partition``.

        Raises:
            UsageError: no task reads that topic partition.
        """
        topic = source_or_topic
        if (topic, partition) not in self.tasks:
            topic = self._source_topic(source_or_topic)
        task = self.tasks.get((topic, partition))
        if task is None:
            raise UsageError(f"no task reads {source_or_topic!r} partition {partition}")
        return task.watermark

    # -- outputs ------------------------------------------------------------------------------

    def output(self, sink: str) -> list[OutputRecord]:
        """Records written to a sink (by sink name or topic) and not taken yet (see
        :meth:`take_output`), decoded with the sink's formats."""
        spec = next((s for s in self.plan.spec.sinks if sink in (s.name, s.topic)), None)
        if spec is None:
            return self.topic(sink)
        decode_key, decode_value = codecs.sink_decoders(spec, self.plan.spec)
        return [
            OutputRecord(decode_key(k), decode_value(v), ts, _headers(h), p)
            for k, v, ts, h, p in self.topics.get(spec.topic, [])
        ]

    def take_output(self, sink: str) -> list[OutputRecord]:
        """:meth:`output`, after which the driver forgets those records: the next call returns
        only what was written since. Call it as records are sent to count or check the results
        of a long input without keeping them all in memory."""
        records = self.output(sink)
        spec = next((s for s in self.plan.spec.sinks if sink in (s.name, s.topic)), None)
        self.topics.pop(sink if spec is None else spec.topic, None)
        return records

    def topic(self, topic: str) -> list[OutputRecord]:
        """Raw view of any topic written (late-data, dead-letter, repartition): keys as str,
        values decoded as JSON when possible.

        Raises:
            UsageError: ``topic`` is a repartition topic and the driver does not keep them.
        """
        if topic in self._unkept:
            raise UsageError(f"{topic} is not kept (PipelineDriver(..., keep_repartition=False))")
        return [
            OutputRecord(_text(k), _json_or_raw(v), ts, _headers(h), p)
            for k, v, ts, h, p in self.topics.get(topic, [])
        ]

    def late(self, source_or_topic: str) -> list[OutputRecord]:
        """Dropped late elements: by late-data topic name (records as written there, with the
        headers), or by source name (every element dropped by any window, whether or not a
        late-data topic is configured; headers name the window and the watermark)."""
        if source_or_topic in self.plan.late_topics():
            return self.topic(source_or_topic)
        self._source_topic(source_or_topic)
        return [
            OutputRecord(
                key,
                value,
                ts,
                {
                    "window": window.id,
                    "window_start": str(start),
                    "window_end": str(end),
                    "watermark": str(wm),
                },
            )
            for window, (key, value, ts, start, end, wm) in self.late_records
        ]


def _compact(raw: bytes | None) -> bytes | None:
    """A copy of ``raw`` whose allocation fits its length (None stays None)."""
    return None if raw is None else compact(raw)


def _headers(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in headers or []}


def _text(raw: bytes | None) -> Any:
    return None if raw is None else raw.decode("utf-8", "replace")


def _json_or_raw(raw: bytes | None) -> Any:
    if raw is None:
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
