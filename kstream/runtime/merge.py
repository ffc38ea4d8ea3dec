"""Taking records from a task's several inputs lowest timestamp first (Kafka Streams
``PartitionGroup``), so a task that unions or joins topics sees them in a deterministic order.

Each input's batches are buffered as they are fetched. The merger then repeatedly takes, from
the input whose next record has the lowest Kafka timestamp (ties: the input declared first),
the records that come before every other input's next one. Watermark markers at the head of a
repartition input are taken at once: their Kafka timestamp is the writer's wall clock, which
would otherwise make their input look far ahead and let the others run past it.

It waits while an input that is known to hold more records has none buffered yet: in a bounded
run, a source whose position is below the end offset found at start, or a repartition topic
whose upstream tasks have not all ended (they write records, watermark markers and, last, their
end markers, so it does not wait forever); otherwise it takes from what is buffered (unbounded
runs never wait). So in a bounded run a lookup join's table records come before the left
records they precede in time, whatever the fetch timing (Kafka Streams' ``max.task.idle.ms``
waits the same way, for a while). A bounded input ends right after its last record before the
end offset, so when an input leaves the watermark valve does not depend on fetch timing
either.

**Bounded work.** One :meth:`InputMerger.drain` takes at most ``budget`` records: what a wait
let pile up (a bounded run's left input buffered while the right one had nothing yet) is taken
over several loop iterations, so the runtime polls (``max.poll.interval.ms``) and checkpoints
between them; :attr:`InputMerger.more` says records are ready. An input whose buffer holds
:data:`BUFFER_HIGH` records or more is paused by the runtime until it is down to
:data:`BUFFER_LOW` (Kafka Streams ``buffered.records.per.partition``), so a wait never buffers a
whole topic in memory.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from kstream.runtime.inputs import TaskInput

#: records one :meth:`InputMerger.drain` takes at most (markers included)
DRAIN_BUDGET = 5_000
#: buffered records of one input at which the runtime pauses its partition ...
BUFFER_HIGH = 20_000
#: ... and at which it resumes it
BUFFER_LOW = 5_000


class InputMerger:
    """Lowest-timestamp-first merging of ``inputs`` (see the module docstring).

    Args:
        inputs: the task's inputs, in declaration order.
        on_end: called with an input that reached its end offset.
    """

    def __init__(self, inputs: Sequence[TaskInput], on_end: Callable[[TaskInput], None]) -> None:
        self.inputs = list(inputs)
        self.on_end = on_end
        self.buffers: dict[int, deque[Any]] = {i.index: deque() for i in inputs}
        #: a bounded run: a repartition input that has not ended holds the others back
        self.bounded = False
        #: the last :meth:`drain` stopped at its budget with records ready to take
        self.more = False

    def add(self, source: TaskInput, msgs: Sequence[Any]) -> None:
        """Buffer a fetched batch of ``source`` (offset order), without records at or past its
        end offset."""
        end = source.end_offset
        if end is not None:
            msgs = [m for m in msgs if m.offset() < end]
        self.buffers[source.index].extend(msgs)

    def drain(self, budget: int = DRAIN_BUDGET) -> bool:
        """Push the records that can be taken now, at most ``budget`` of them (see the module
        docstring). Returns :attr:`more`: whether it stopped at the budget with records ready."""
        buffers = self.buffers
        left = budget
        while True:
            for i in self.inputs:
                if i.stopped_by or i.finished:
                    buffers[i.index].clear()  # read again after the restart
            for i in self.inputs:
                left -= self._take_markers(i)
            ready = [i for i in self.inputs if buffers[i.index]]
            waits = self._waits
            if not ready or any(waits(i) for i in self.inputs if not buffers[i.index]):
                self.more = False
                return False
            if left <= 0:
                self.more = True
                return True
            ready.sort(key=lambda i: (buffers[i.index][0].timestamp()[1], i.index))
            pick = ready[0]
            left -= self._take(pick, ready[1] if len(ready) > 1 else None, left)

    def read_to_end(self, source: TaskInput) -> bool:
        """Whether ``source`` has nothing more to take before its end offset: its position
        reached it, or the consumer reached the end of the partition at or past it and every
        record it delivered was taken (the offsets in between hold transaction markers).

        Raises:
            ValueError: ``source`` has no end offset (not a bounded source input).
        """
        end = source.end_offset
        if end is None:
            raise ValueError(f"input {source.topic} has no end offset")
        if (source.position or 0) >= end:
            return True
        eof = source.eof_offset
        return eof is not None and eof >= end and not self.buffers[source.index]

    def buffered(self, source: TaskInput) -> int:
        """Records of ``source`` fetched and not taken yet."""
        return len(self.buffers[source.index])

    def _take_markers(self, source: TaskInput) -> int:
        """Process the watermark markers at the head of a repartition input's buffer at once:
        they carry the writer's wall-clock time, not an event time, so they must not order the
        inputs (and they only move that input's watermark, never past its records)."""
        buffer = self.buffers[source.index]
        if source.kind != "repartition" or not buffer or buffer[0].value() is not None:
            return 0
        chunk = []
        while buffer and buffer[0].value() is None:
            chunk.append(buffer.popleft())
        source.process(chunk)
        return len(chunk)

    def _take(self, pick: TaskInput, runner_up: TaskInput | None, budget: int) -> int:
        """Push ``pick``'s records that come before ``runner_up``'s next one (all of them
        without a runner-up), at most ``budget``; returns how many."""
        buffer = self.buffers[pick.index]
        chunk: list[Any] = []
        if runner_up is None:
            while buffer and len(chunk) < budget:
                chunk.append(buffer.popleft())
        else:
            limit = (self.buffers[runner_up.index][0].timestamp()[1], runner_up.index)
            while buffer and len(chunk) < budget and (buffer[0].timestamp()[1], pick.index) < limit:
                chunk.append(buffer.popleft())
        pick.process(chunk)
        if pick.end_offset is not None and self.read_to_end(pick):
            self.on_end(pick)
        return len(chunk)

    def _waits(self, source: TaskInput) -> bool:
        """Whether an input without buffered records holds the others back: it is known to
        hold more records (its end offset is known and not reached; a bounded run's repartition
        input that has not ended)."""
        if source.finished or source.stopped_by:
            return False
        if source.kind == "repartition":
            return self.bounded
        return source.end_offset is not None and not self.read_to_end(source)
