"""Publishing a process's status to ``<group>.status`` (:mod:`kstream.runtime.status_record`).

The runner hands :class:`StatusPublisher` a :class:`~kstream.runtime.metrics.MetricsSnapshot`
at each status interval; every ``interval_ms`` (2 s by default) the publisher turns it into a
:class:`~kstream.runtime.status_record.ProcessStatus` — rates against the previous record's
counts — and queues it on a plain producer (never blocking the loop). At a clean stop it writes
the process's tombstone.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from kstream.graph.plan import Plan
from kstream.io import kafka
from kstream.runtime.metrics import MetricsSnapshot
from kstream.runtime.node_stats import node_kind, sink_node_id
from kstream.runtime.status_record import NodeRow, ProcessStatus, TaskRow, status_topic

#: how often a process publishes its status (ms)
PUBLISH_INTERVAL_MS = 2_000


@dataclass(frozen=True)
class TaskExtras:
    """What the snapshot lacks of a task: its state directory's size (bytes) and its last
    checkpoint (id, epoch ms; None: none yet in this process)."""

    state_bytes: int = 0
    checkpoint_id: int | None = None
    checkpoint_ms: int | None = None


def node_kinds(plan: Plan) -> dict[str, str]:
    """Node id -> kind (:func:`~kstream.runtime.node_stats.node_kind`) of every node of the
    job; sinks as ``sink:<name>``."""
    spec = plan.spec
    kinds = {s.id: "source" for s in spec.sources}
    kinds.update({op.id: node_kind(op) for op in spec.operators})
    kinds.update({sink_node_id(s): "sink" for s in spec.sinks})
    return kinds


def status_record(
    base: ProcessStatus,
    snap: MetricsSnapshot,
    previous: ProcessStatus | None,
    kinds: Mapping[str, str],
    extras: Mapping[str, TaskExtras],
) -> ProcessStatus:
    """The record of ``snap``: ``base`` gives the process fields (pipeline, group, host, pid,
    started_ms, interval_ms, phase); rates are per second against ``previous`` (0 without)."""
    seconds = (snap.time_ms - previous.time_ms) / 1000 if previous else 0.0
    old_tasks = {t.task: t for t in previous.tasks} if previous else {}
    old_nodes = {n.node: n for n in previous.nodes} if previous else {}
    tasks = []
    for task, counts in sorted(snap.counters.items()):
        if task == "released":
            continue
        extra, old = extras.get(task, TaskExtras()), old_tasks.get(task)
        n_in = counts.get("in", 0) + counts.get("in_repartition", 0)
        n_out = counts.get("out", 0)
        tasks.append(
            TaskRow(
                task,
                n_in,
                n_out,
                counts.get("late", 0),
                _rate(n_in, old.records_in if old else None, seconds),
                _rate(n_out, old.records_out if old else None, seconds),
                snap.watermarks_ms.get(task),
                snap.task_lag.get(task),
                extra.state_bytes,
                extra.checkpoint_id,
                extra.checkpoint_ms,
            )
        )
    nodes = []
    for node, (n_in, n_out, late, mark) in sorted(_node_sums(snap).items()):
        old_node = old_nodes.get(node)
        nodes.append(
            NodeRow(
                node,
                kinds.get(node, "?"),
                n_in,
                n_out,
                late,
                _rate(n_in, old_node.records_in if old_node else None, seconds),
                _rate(n_out, old_node.records_out if old_node else None, seconds),
                mark,
            )
        )
    return replace(
        base,
        time_ms=snap.time_ms,
        checkpoints=snap.checkpoints,
        checkpoint_failures=snap.rewinds,
        cache_bytes=snap.cache_bytes,
        tasks=tuple(tasks),
        nodes=tuple(nodes),
        busy_ratio=None if snap.busy_ratio is None else round(snap.busy_ratio, 3),
    )


def _node_sums(snap: MetricsSnapshot) -> dict[str, tuple[int, int, int, int | None]]:
    """Node -> (records in, out, late, lowest watermark) over the snapshot's tasks, released
    ones included in the counts."""
    sums: dict[str, tuple[int, int, int, int | None]] = {}
    for (task, node), (n_in, n_out, late) in snap.nodes.items():
        a, b, c, mark = sums.get(node, (0, 0, 0, None))
        own = snap.node_watermarks_ms.get((task, node))
        if task != "released" and own is not None:
            mark = own if mark is None else min(mark, own)
        sums[node] = (a + n_in, b + n_out, c + late, mark)
    return sums


def _rate(now: int, before: int | None, seconds: float) -> float:
    """Records per second between two counts (0 without an earlier one or elapsed time)."""
    if before is None or seconds <= 0:
        return 0.0
    return round(max(now - before, 0) / seconds, 1)


class StatusPublisher:
    """Publishes a process's status every :data:`PUBLISH_INTERVAL_MS` ms.

    Args:
        plan: the job graph (names the topic and the nodes' kinds).
        bootstrap, settings: the broker and the pipeline's ``kafka:`` settings.

    Raises:
        BrokerError: the producer cannot be created.
    """

    def __init__(
        self,
        plan: Plan,
        bootstrap: str,
        settings: Mapping[str, Any],
        interval_ms: int = PUBLISH_INTERVAL_MS,
    ) -> None:
        self.kinds = node_kinds(plan)
        self.base = ProcessStatus(
            plan.spec.name,
            plan.prefix,
            socket.gethostname(),
            os.getpid(),
            int(time.time() * 1000),
            0,
            interval_ms,
        )
        self.last: ProcessStatus | None = None
        self._publisher = kafka.KeyedPublisher(bootstrap, settings, status_topic(plan.prefix))

    def due(self, now_ms: int) -> bool:
        """Whether a record is due at ``now_ms`` (epoch ms)."""
        return self.last is None or now_ms - self.last.time_ms >= self.base.interval_ms

    def publish(self, snap: MetricsSnapshot, phase: str, extras: Mapping[str, TaskExtras]) -> None:
        """Queue the record of ``snap`` (see :func:`status_record`)."""
        record = status_record(replace(self.base, phase=phase), snap, self.last, self.kinds, extras)
        self._publisher.publish(record.key, record.to_json())
        self.last = record

    def close(self) -> None:
        """Write this process's tombstone and deliver what is queued (a clean stop)."""
        self._publisher.publish(self.base.key, None)
        self._publisher.close()
