"""Records fetched but not yet processed, for the runner: the backlog of a task that merges
several inputs (:mod:`kstream.runtime.merge`) is taken a budget at a time between polls, and an
input whose buffer grows past :data:`~kstream.runtime.merge.BUFFER_HIGH` records is paused at
the consumer until it is down to :data:`~kstream.runtime.merge.BUFFER_LOW`.

Without this, records that piled up while a bounded merge waited for another input were taken
in one step: a step longer than ``max.poll.interval.ms`` got the member evicted from its group
and its tasks fenced, again at every restart (the livelock of a temporal join's run on a slow
machine). Pausing keeps the memory of a wait bounded: librdkafka drops the paused partition's
prefetched records and fetches again from the position after the last record it returned, so
nothing is skipped.

:class:`BacklogDrain` is a mixin of :class:`~kstream.runtime.runner.Runner`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kstream.checkpoint.steps import TaskRuntime
from kstream.errors import TransactionError
from kstream.io import kafka
from kstream.runtime.merge import BUFFER_HIGH, BUFFER_LOW


class BacklogDrain:
    """Backlog drains and input throttling for the runner (a mixin)."""

    tasks: dict[tuple[str, int], TaskRuntime]
    _consumer: Any
    #: input topic-partitions paused because their task's buffer is full (a restore of the
    #: task forgets them: :class:`~kstream.runtime.membership.GroupMembership`)
    _throttled: set[tuple[str, int]]
    _held: set[tuple[str, int]]

    # provided by the runner's other mixins (declared here, not defined: the MRO finds theirs)
    _rewind: Callable[[tuple[str, int], TaskRuntime, Exception], None]
    _end_if_done: Callable[[TaskRuntime], None]
    _checkpoint_task: Callable[..., None]

    def _drain_backlogs(self) -> bool:
        """Take the next budget of records of every task with a backlog. Returns whether a
        task still has one (the loop then polls without waiting)."""
        more = False
        for key, rt in list(self.tasks.items()):
            task = rt.task
            if not task.backlog or task.stopped_by:
                continue
            try:
                task.drain_backlog()
            except TransactionError as exc:
                self._rewind(key, rt, exc)
                continue
            rt.outputs_since_commit += 1
            self._after_batch(key, rt)
            more = more or task.backlog
        return more

    def _after_batch(self, key: tuple[str, int], rt: TaskRuntime) -> None:
        """After records of task ``key`` were processed: its end, its input throttling."""
        self._end_if_done(rt)
        if self.tasks.get(key) is not rt:
            return  # rewound while ending: the fresh task resumes from its checkpoint
        if rt.task.finished or rt.task.stopped_by:
            # commit a finished task's last outputs now: under read_committed, downstream
            # tasks see them only then (no waiting for the checkpoint interval)
            self._checkpoint_task(rt)
        self._throttle(rt)

    def _throttle(self, rt: TaskRuntime) -> None:
        """Pause each input of ``rt`` buffering :data:`BUFFER_HIGH` records or more, resume
        each paused one down to :data:`BUFFER_LOW` (tasks of one input buffer nothing)."""
        task = rt.task
        if len(task.inputs) < 2:
            return
        for source in task.inputs:
            tp = (source.topic, task.partition)
            buffered = task.merger.buffered(source)
            if tp in self._held:
                continue
            if tp in self._throttled:
                if buffered <= BUFFER_LOW or source.finished or source.stopped_by:
                    self._throttled.discard(tp)
                    kafka.resume(self._consumer, [tp])
            elif buffered >= BUFFER_HIGH:
                self._throttled.add(tp)
                kafka.pause(self._consumer, [tp])
