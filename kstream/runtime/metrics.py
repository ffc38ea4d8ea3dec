"""Prometheus metrics of one process (``kstream run --metrics-port N``; docs/metrics.md).

The runner's loop takes a :class:`MetricsSnapshot` of its tasks about once a second
(:func:`snapshot_of`) and hands it to the :class:`MetricsExporter`, whose collector turns the
latest snapshot into metric families when Prometheus scrapes ``/metrics`` (prometheus-client's
HTTP server thread). The thread never touches a task: it reads an immutable snapshot, so a
scrape costs the loop nothing and sees a consistent view. Checkpoint durations go into a
histogram as each checkpoint ends.

Names follow Prometheus' conventions: ``kstream_`` prefix, ``_total`` for counters, base units
(seconds, bytes). Labels: ``pipeline``, ``group``, ``task`` (``<stage id>:<partition>``;
``released`` for the counts of tasks this process no longer runs, so sums over time stay
right), ``topic``/``partition`` for consumer lag.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from kstream.errors import UsageError
from kstream.time.watermarks import MIN_WATERMARK

if TYPE_CHECKING:
    from kstream.runtime.task import Task

log = logging.getLogger("kstream.runtime.metrics")

#: Task counters exported as ``kstream_<name>_total`` with their help text.
COUNTERS = {
    "in": ("records_in", "Records read from the task's source topics."),
    "in_repartition": (
        "repartition_records_in",
        "Records read from the task's repartition topics (duplicates dropped not counted).",
    ),
    "out": ("records_out", "Records written to the task's sinks."),
    "late": ("late_records", "Records dropped or routed as late by the task's windows and joins."),
    "skipped": ("skipped_records", "Bad records skipped under on_error: skip."),
    "dead_letter": ("dead_letters", "Bad records written to a dead-letter topic."),
}
#: Checkpoint duration buckets (seconds).
CHECKPOINT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Checkpoint size buckets (bytes of state changes): 1 KB to 1 GB by factors of 4.
CHECKPOINT_SIZE_BUCKETS = tuple(float(1000 * 4**i) for i in range(0, 11))


@dataclass(frozen=True)
class MetricsSnapshot:
    """What the process's tasks showed at one moment.

    Attributes:
        counters: task id -> its counters (:data:`COUNTERS` keys); ``released``: the counts of
            tasks that left this process.
        watermarks_ms: task id -> its watermark (epoch ms; absent before the first).
        lag: ``(topic, partition)`` -> records between the task's position and the end offset
            its consumer last saw.
        checkpoints: checkpoints committed by this process; ``rewinds``: tasks rewound to their
            last checkpoint (a failed transaction).
        cache_bytes: the state cache's estimated use (bytes).
        nodes: ``(task, node)`` -> the node's ``(records_in, records_out, late)`` in the task;
            task ``released``: the counts of tasks that left this process.
        node_watermarks_ms: ``(task, node)`` -> the node's watermark (epoch ms; absent before
            the first).
        sink_times_ms: ``(task, sink node)`` -> the highest record timestamp the sink wrote.
        late_actions: node -> where its late records go (``dropped``, ``side_output``, ...).
        task_lag: task -> its lag summed over its input partitions (absent: unknown).
        timers_fired: ``(task, node)`` -> timers the node fired in the task.
        stores: ``(task, store)`` -> RocksDB's estimated keys and bytes of the store.
        busy_ratio: the part of the last interval the loop was not waiting for records (0-1;
            None: not measured yet).
        time_ms: when the snapshot was taken (epoch ms).
    """

    counters: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    watermarks_ms: Mapping[str, int] = field(default_factory=dict)
    lag: Mapping[tuple[str, int], int] = field(default_factory=dict)
    checkpoints: int = 0
    rewinds: int = 0
    cache_bytes: int = 0
    nodes: Mapping[tuple[str, str], tuple[int, int, int]] = field(default_factory=dict)
    node_watermarks_ms: Mapping[tuple[str, str], int] = field(default_factory=dict)
    sink_times_ms: Mapping[tuple[str, str], int] = field(default_factory=dict)
    late_actions: Mapping[str, str] = field(default_factory=dict)
    task_lag: Mapping[str, int] = field(default_factory=dict)
    time_ms: int = 0
    timers_fired: Mapping[tuple[str, str], int] = field(default_factory=dict)
    stores: Mapping[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    busy_ratio: float | None = None


def snapshot_of(
    tasks: list[Task],
    released: Mapping[str, int],
    ends: Mapping[tuple[str, int], int],
    checkpoints: int,
    rewinds: int,
    cache_bytes: int,
    released_nodes: Mapping[str, tuple[int, int, int]] | None = None,
    stores: Mapping[tuple[str, str], tuple[int, int]] | None = None,
    busy_ratio: float | None = None,
) -> MetricsSnapshot:
    """A :class:`MetricsSnapshot` of ``tasks`` (copies: the snapshot outlives the moment).

    Args:
        released: the summed counters of tasks this process no longer runs.
        ends: end offset per ``(topic, partition)`` as last seen (missing: lag unknown).
        released_nodes: node -> the summed ``(records_in, records_out, late)`` of tasks this
            process no longer runs.
        stores, busy_ratio: see :class:`MetricsSnapshot`.
    """
    counters = {t.id: dict(t.counters) for t in tasks}
    counters["released"] = dict(released)
    lag: dict[tuple[str, int], int] = {}
    task_lag: dict[str, int] = {}
    for task in tasks:
        for task_input in task.inputs:
            tp = (task_input.topic, task.partition)
            end, position = ends.get(tp), task_input.position
            if end is not None:
                lag[tp] = max(end - (position or 0), 0)
                task_lag[task.id] = task_lag.get(task.id, 0) + lag[tp]
    watermarks = {t.id: t.watermark for t in tasks if t.watermark != MIN_WATERMARK}
    nodes: dict[tuple[str, str], tuple[int, int, int]] = {
        ("released", node): counts for node, counts in (released_nodes or {}).items()
    }
    node_marks, sink_times, actions, timers = {}, {}, {}, {}
    for task in tasks:
        executor = task.executor
        for node, fired in executor.timers_fired().items():
            timers[(task.id, node)] = fired
        marks = executor.node_watermarks_ms(task.watermark)
        for node, stats in executor.node_stats.items():
            nodes[(task.id, node)] = stats.as_tuple()
            if marks[node] != MIN_WATERMARK:
                node_marks[(task.id, node)] = marks[node]
            if stats.max_ts is not None:
                sink_times[(task.id, node)] = stats.max_ts
        for window in executor.late_nodes:
            actions[window] = executor.late_action(window)
    return MetricsSnapshot(
        counters,
        watermarks,
        lag,
        checkpoints,
        rewinds,
        cache_bytes,
        nodes,
        node_marks,
        sink_times,
        actions,
        task_lag,
        int(time.time() * 1000),
        timers,
        dict(stores or {}),
        busy_ratio,
    )


class MetricsExporter(Collector):
    """Serves the latest :class:`MetricsSnapshot` and the checkpoint histogram on
    ``http://<host>:<port>/metrics``.

    Args:
        pipeline: the pipeline's name; ``group``: its consumer group (labels of every metric).
    """

    def __init__(self, pipeline: str, group: str) -> None:
        self.labels = {"pipeline": pipeline, "group": group}
        self.registry = CollectorRegistry(auto_describe=False)
        self.snapshot = MetricsSnapshot()
        self.checkpoint_seconds = Histogram(
            "kstream_checkpoint_duration_seconds",
            "Time from the start of a task's checkpoint to its committed transaction.",
            list(self.labels),
            buckets=CHECKPOINT_BUCKETS,
            registry=self.registry,
        ).labels(**self.labels)
        self.checkpoint_bytes = Histogram(
            "kstream_checkpoint_size_bytes",
            "Bytes of state changes (keys and values) a task's checkpoint wrote.",
            list(self.labels),
            buckets=CHECKPOINT_SIZE_BUCKETS,
            registry=self.registry,
        ).labels(**self.labels)
        self.registry.register(self)

    def start(self, port: int, host: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` from a daemon thread.

        Raises:
            UsageError: the port cannot be bound (in use, or privileged).
        """
        try:
            start_http_server(port, host, registry=self.registry)
        except OSError as exc:
            raise UsageError(f"--metrics-port {port}: cannot serve metrics there ({exc})") from exc
        log.info("metrics on http://%s:%d/metrics", host, port)

    def publish(self, snapshot: MetricsSnapshot) -> None:
        """Make ``snapshot`` what the next scrape shows."""
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        """The metric families of the latest snapshot (prometheus-client's collector API)."""
        snap, base = self.snapshot, list(self.labels)
        values = list(self.labels.values())
        for key, (name, text) in COUNTERS.items():
            family = CounterMetricFamily(f"kstream_{name}", text, labels=[*base, "task"])
            for task, counts in sorted(snap.counters.items()):
                family.add_metric([*values, task], counts.get(key, 0))
            yield family
        watermark = GaugeMetricFamily(
            "kstream_watermark_seconds",
            "The task's event-time watermark (seconds since the epoch).",
            labels=[*base, "task"],
        )
        for task, ms in sorted(snap.watermarks_ms.items()):
            watermark.add_metric([*values, task], ms / 1000.0)
        yield watermark
        lag = GaugeMetricFamily(
            "kstream_consumer_lag_records",
            "Records between a task's position and the end of its input partition.",
            labels=[*base, "topic", "partition"],
        )
        for (topic, partition), records in sorted(snap.lag.items()):
            lag.add_metric([*values, topic, str(partition)], records)
        yield lag
        yield _counter(
            "kstream_checkpoints", "Checkpoints committed.", base, values, snap.checkpoints
        )
        yield _counter(
            "kstream_checkpoint_failures",
            "Checkpoints that failed: the task was rewound to its last checkpoint.",
            base,
            values,
            snap.rewinds,
        )
        cache = GaugeMetricFamily(
            "kstream_state_cache_bytes", "Estimated bytes held by the state cache.", labels=base
        )
        cache.add_metric(values, snap.cache_bytes)
        yield cache
        yield from _node_families(snap, base, values)


#: Node counters exported as ``kstream_node_<name>_total``: index in the counts tuple, help.
NODE_COUNTERS = (
    ("records_in", 0, "Records that reached the node."),
    ("records_out", 1, "Records the node delivered to its readers (a sink: records written)."),
)


def _node_families(snap: MetricsSnapshot, base: list[str], values: list[str]) -> Iterator[Metric]:
    """The per-node families: counters, late records by action, watermark, watermark lag and
    a sink's event-time lag (lags against the snapshot's time)."""
    labels = [*base, "node", "task"]
    for name, index, text in NODE_COUNTERS:
        family = CounterMetricFamily(f"kstream_node_{name}", text, labels=labels)
        for (task, node), counts in sorted(snap.nodes.items()):
            family.add_metric([*values, node, task], counts[index])
        yield family
    late = CounterMetricFamily(
        "kstream_node_late_records",
        "Late records of a window or join, by where they went (action).",
        labels=[*labels, "action"],
    )
    for (task, node), counts in sorted(snap.nodes.items()):
        if node in snap.late_actions:
            late.add_metric([*values, node, task, snap.late_actions[node]], counts[2])
    yield late
    mark = GaugeMetricFamily(
        "kstream_node_watermark_seconds",
        "The node's event-time watermark (seconds since the epoch).",
        labels=labels,
    )
    lag = GaugeMetricFamily(
        "kstream_node_watermark_lag_seconds",
        "Processing time minus the node's watermark (seconds).",
        labels=labels,
    )
    for (task, node), ms in sorted(snap.node_watermarks_ms.items()):
        mark.add_metric([*values, node, task], ms / 1000.0)
        lag.add_metric([*values, node, task], (snap.time_ms - ms) / 1000.0)
    yield mark
    yield lag
    sink = GaugeMetricFamily(
        "kstream_sink_event_time_lag_seconds",
        "Processing time minus the highest record timestamp a sink wrote (seconds).",
        labels=labels,
    )
    for (task, node), ms in sorted(snap.sink_times_ms.items()):
        sink.add_metric([*values, node, task], (snap.time_ms - ms) / 1000.0)
    yield sink
    timers = CounterMetricFamily(
        "kstream_node_timers_fired",
        "Event-time and processing-time timers the node fired.",
        labels=labels,
    )
    for (task, node), fired in sorted(snap.timers_fired.items()):
        timers.add_metric([*values, node, task], fired)
    yield timers
    keys = GaugeMetricFamily(
        "kstream_state_keys",
        "RocksDB's estimated number of keys in the store (checkpointed state).",
        labels=[*base, "task", "store"],
    )
    size = GaugeMetricFamily(
        "kstream_state_bytes",
        "Bytes of the store in RocksDB: SST files and memtables.",
        labels=[*base, "task", "store"],
    )
    for (task, store), (n, b) in sorted(snap.stores.items()):
        keys.add_metric([*values, task, store], n)
        size.add_metric([*values, task, store], b)
    yield keys
    yield size
    if snap.busy_ratio is not None:
        busy = GaugeMetricFamily(
            "kstream_busy_ratio",
            "Part of the last second the process was not waiting for records (0 to 1).",
            labels=base,
        )
        busy.add_metric(values, snap.busy_ratio)
        yield busy


def _counter(name: str, text: str, labels: list[str], values: list[str], value: int) -> Metric:
    family = CounterMetricFamily(name, text, labels=labels)
    family.add_metric(values, value)
    return family
