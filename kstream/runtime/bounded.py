"""Bounded runs (``kstream run --bounded``): the end offsets of the sources, found at start,
and ending each source input of a task once it has read up to them.

:class:`BoundedRun` is a mixin of :class:`~kstream.runtime.runner.Runner`: it works on the
runner's options and tasks (the attributes declared below).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from kstream import faults
from kstream.checkpoint.steps import TaskRuntime
from kstream.errors import TransactionError
from kstream.io import kafka
from kstream.runtime.lifecycle import RunOptions
from kstream.runtime.start_checks import finished_group_note
from kstream.runtime.topology import TopicLayout

#: seconds a bounded run that read nothing waits for its end offsets to say why
PROBE_WAIT_S = 30.0

log = logging.getLogger("kstream.runtime.runner")


class BoundedRun:
    """End offsets and end of input for the runner (a mixin)."""

    options: RunOptions
    plan: Any
    tasks: dict[tuple[str, int], TaskRuntime]
    start_positions: dict[tuple[str, int], int]
    end_offsets: dict[tuple[str, int], int]
    _ends_known: bool
    _probe: threading.Thread | None
    _callback_error: Exception | None

    def _checkpoint_task(self, rt: TaskRuntime, now: int | None = None) -> None:
        raise NotImplementedError

    # provided by the runner's other mixins (declared here, not defined: the MRO finds theirs)
    _rewind: Callable[[tuple[str, int], TaskRuntime, Exception], None]
    status: Callable[[], Any]

    def _start_probe(self, settings: dict[str, Any], layout: TopicLayout) -> None:
        """Find the end offset of every source partition in a thread, while the consumer joins
        the group (the join takes seconds)."""
        sources = {s.topic: layout.partitions[s.topic] for s in self.plan.spec.sources}
        self._probe = threading.Thread(
            target=self._probe_ends, args=(settings, sources), daemon=True
        )
        self._probe.start()

    def _probe_ends(self, settings: dict[str, Any], sources: dict[str, int]) -> None:
        ends: dict[tuple[str, int], int] = {}
        try:
            for topic, count in sources.items():
                found = kafka.probe_end_offsets(
                    self.options.bootstrap, settings, topic, list(range(count))
                )
                ends.update(((topic, p), offset) for p, offset in found.items())
        except Exception as exc:  # surfaced by the main loop
            self._callback_error = exc
            return
        self.end_offsets = ends
        self._ends_known = True

    def _end_if_done(self, rt: TaskRuntime) -> None:
        """Bounded: end each source input of the task that reached its end offset; a task whose
        inputs have all ended checkpoints at once (downstream tasks see its last outputs)."""
        task = rt.task
        if (
            self.options.bounded
            and task.stage.is_source
            and not task.finished
            and not task.stopped_by
            and self._ends_known
            and task.end_sources_at(self.end_offsets)
        ):
            rt.outputs_since_commit += 1
            if task.finished:
                self._checkpoint_task(rt)

    def _set_ends(self, rt: TaskRuntime) -> None:
        """Give a task the end offsets of its source inputs before its first records, waiting
        for the probe (normally done while the group was joined): a bounded merge of several
        inputs waits for an input known to hold more records."""
        if self._probe is not None and not self._ends_known:
            self._probe.join()
            if self._callback_error is not None:
                raise self._callback_error
        rt.extra["ends"] = True
        rt.task.merger.bounded = True
        self._end_if_done(rt)

    def _end_slices(self) -> bool:
        """A slice of the end of input of each task whose inputs all ended (its timers and
        keys at +infinity, :mod:`kstream.runtime.ending`): polls and checkpoints go on between
        slices. Returns whether a task still has more."""
        more = False
        for key, rt in list(self.tasks.items()):
            if rt.task.ending is None:
                continue
            faults.point("end_slice")
            try:
                finished = rt.task.drain_end()
            except TransactionError as exc:
                self._rewind(key, rt, exc)
                continue
            rt.outputs_since_commit += 1
            if finished:
                self._checkpoint_task(rt)  # downstream tasks see the last outputs now
            more = more or not finished
        return more

    def _note_finished_group(self) -> None:
        """A bounded run that read nothing because the group had read its sources to the end
        says so (:func:`~kstream.runtime.start_checks.finished_group_note`)."""
        if not self.options.bounded or self.status().records_in:
            return
        if self._probe is not None and not self._ends_known:
            # tasks restored as finished end the loop before the end-offset probe is done
            self._probe.join(PROBE_WAIT_S)
        if self._ends_known:
            note = finished_group_note(self.plan.prefix, self.start_positions, self.end_offsets)
            if note:
                log.warning("%s", note)
