"""The runner's live :class:`~kstream.runtime.lifecycle.Status`: counters, per-stage watermarks
(:mod:`kstream.runtime.watermark_watch`), lag, part done and ETA
(:mod:`kstream.runtime.progress`), and what the runner is doing.

:class:`RunStatus` is a mixin of :class:`~kstream.runtime.runner.Runner`: it reads the runner's
attributes declared below.
"""

from __future__ import annotations

import time
from typing import Any

from kstream.checkpoint.steps import TaskRuntime
from kstream.io import kafka
from kstream.runtime.lifecycle import RunnerState, RunOptions, Status, run_phase
from kstream.runtime.metrics import MetricsExporter, snapshot_of
from kstream.runtime.progress import ProgressMeter, source_positions
from kstream.runtime.status_publish import StatusPublisher, TaskExtras
from kstream.runtime.watermark_watch import WatermarkWatch
from kstream.state.store import dir_size


class RunStatus:
    """:meth:`status` for the runner (a mixin)."""

    options: RunOptions
    state: RunnerState
    tasks: dict[tuple[str, int], TaskRuntime]
    totals: dict[str, int]
    node_totals: dict[str, tuple[int, int, int]]
    end_offsets: dict[tuple[str, int], int]
    checkpoints: int
    assigned_once: bool
    stop_requested: bool
    watch: WatermarkWatch
    progress: ProgressMeter
    _pending: dict[tuple[str, int], tuple[float, float]]
    _consumer: Any
    _started: float
    metrics: MetricsExporter | None
    status_publisher: StatusPublisher | None
    idle_s: float
    _busy_mark: tuple[float, float] | None = None
    rewinds: int
    budget: Any

    def status(self) -> Status:
        """The current :class:`Status` (counters of live tasks plus those released). An
        unbounded run's lag uses the end offsets its consumer last saw (no broker request)."""
        sums = dict(self.totals)
        for rt in self.tasks.values():
            for key, value in rt.task.counters.items():
                sums[key] += value
        tasks = [rt.task for rt in self.tasks.values()]
        positions = source_positions(tasks)
        if self.options.bounded:
            ends = self.end_offsets
        elif positions and self._consumer is not None:
            ends = kafka.cached_end_offsets(self._consumer, list(positions))
        else:
            ends = {}
        progress = self.progress.measure(positions, ends, self.options.bounded, time.monotonic())
        return Status(
            time.monotonic() - self._started,
            sums["in"],
            sums["out"],
            sums["late"],
            sums["skipped"],
            sums["dead_letter"],
            len(tasks),
            sum(1 for t in tasks if t.finished),
            {t.id: t.watermark for t in tasks},
            progress.lag,
            self.checkpoints,
            self._phase(),
            progress.done,
            progress.eta_s,
            list(self.watch.stages),
        )

    def _phase(self) -> str:
        return run_phase(
            self.state,
            self.options.bounded,
            self.stop_requested,
            self.assigned_once,
            len(self._pending),
        )

    def _publish_snapshot(self, now: int) -> None:
        """Hand a snapshot of the tasks to the metrics exporter (``--metrics-port``) and, every
        few seconds, to the status topic; the end offsets are those the consumer last saw (no
        broker request)."""
        publisher = self.status_publisher
        if self.metrics is None and (publisher is None or not publisher.due(now)):
            return
        tasks = [rt.task for rt in self.tasks.values()]
        partitions = [(i.topic, t.partition) for t in tasks for i in t.inputs]
        ends = kafka.cached_end_offsets(self._consumer, partitions) if self._consumer else {}
        stores = {
            (rt.task.id, name): size
            for rt in self.tasks.values()
            for name, size in rt.store.store_sizes().items()
        }
        snapshot = snapshot_of(
            tasks,
            self.totals,
            ends,
            self.checkpoints,
            self.rewinds,
            self.budget.used,
            self.node_totals,
            stores,
            self._busy_ratio(),
        )
        if self.metrics is not None:
            self.metrics.publish(snapshot)
        if publisher is not None and publisher.due(now):
            publisher.publish(snapshot, self._phase(), self._task_extras())

    def _busy_ratio(self) -> float | None:
        """The part of the time since the previous call the loop did not wait for records."""
        now, mark = time.monotonic(), self._busy_mark
        self._busy_mark = (now, self.idle_s)
        if mark is None or now <= mark[0]:
            return None
        return max(0.0, 1.0 - (self.idle_s - mark[1]) / (now - mark[0]))

    def _task_extras(self) -> dict[str, TaskExtras]:
        """Each task's state directory size and last checkpoint (the status topic)."""
        extras = {}
        for rt in self.tasks.values():
            extras[rt.task.id] = TaskExtras(
                dir_size(rt.store.path),
                rt.checkpoint_id or None,
                rt.last_checkpoint_ms or None,
            )
        return extras
