"""Records fetched but not processed (kstream.runtime.backlog): a task merging several inputs
takes its backlog a budget at a time between polls, and an input buffering BUFFER_HIGH records
is paused at the consumer until it is down to BUFFER_LOW (a bounded merge waiting for one
input never buffers a whole topic of the other in memory)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from test_input_merge import FakeInput, msgs
from test_restore_keep_alive import FakeConsumer

from kstream.runtime.backlog import BacklogDrain
from kstream.runtime.merge import BUFFER_HIGH, BUFFER_LOW, DRAIN_BUDGET, InputMerger


class Loop(BacklogDrain):
    """The runner's part BacklogDrain works on."""

    def __init__(self, task: Any) -> None:
        self._consumer = FakeConsumer()
        self._throttled: set[tuple[str, int]] = set()
        self._held: set[tuple[str, int]] = set()
        self.rt = SimpleNamespace(task=task, outputs_since_commit=0)
        self.tasks: dict[tuple[str, int], Any] = {("join", 0): self.rt}
        self.checkpointed = 0

    def _end_if_done(self, rt: Any) -> None:
        pass

    def _checkpoint_task(self, rt: Any, now: int | None = None) -> None:
        self.checkpointed += 1


class MergingTask:
    """A task of two inputs, ``left`` and ``right``, over a real InputMerger."""

    def __init__(self) -> None:
        self.taken: list[tuple[int, int, int]] = []
        self.inputs = [FakeInput(0, self.taken), FakeInput(1, self.taken)]
        for source, topic in zip(self.inputs, ("left", "right"), strict=True):
            source.topic = topic  # type: ignore[attr-defined]
        self.merger = InputMerger(self.inputs, lambda source: None)  # type: ignore[arg-type]
        self.partition = 0
        self.finished = False
        self.stopped_by = None
        self.ending = None

    @property
    def backlog(self) -> bool:
        return self.merger.more

    def drain_backlog(self) -> None:
        self.merger.drain()


def test_a_backlog_is_taken_a_budget_per_loop_iteration() -> None:
    task = MergingTask()
    task.merger.add(task.inputs[0], msgs(*range(DRAIN_BUDGET * 2 + 10)))
    task.merger.drain()  # what the batch's dispatch takes
    loop = Loop(task)
    assert loop._drain_backlogs() is True
    assert len(task.taken) == DRAIN_BUDGET * 2
    assert loop._drain_backlogs() is False
    assert len(task.taken) == DRAIN_BUDGET * 2 + 10
    assert loop._drain_backlogs() is False  # nothing left: nothing done
    assert loop.rt.outputs_since_commit == 2


def test_an_input_buffering_too_much_is_paused_until_taken_down() -> None:
    task = MergingTask()
    task.merger.bounded = True
    task.inputs[1].end_offset = 1  # right holds a record not fetched yet: the merge waits
    loop = Loop(task)
    task.merger.add(task.inputs[0], msgs(*range(BUFFER_HIGH)))
    task.merger.drain()
    loop._throttle(loop.rt)  # type: ignore[arg-type]
    assert loop._consumer.calls == [("pause", [("left", 0)])]
    assert loop._throttled == {("left", 0)}
    task.merger.add(task.inputs[1], msgs(10**9))  # right's record: the wait is over
    while task.merger.drain():
        loop._throttle(loop.rt)  # type: ignore[arg-type]
        if loop._throttled:
            assert task.merger.buffered(task.inputs[0]) > BUFFER_LOW
    loop._throttle(loop.rt)  # type: ignore[arg-type]
    assert loop._consumer.calls == [("pause", [("left", 0)]), ("resume", [("left", 0)])]
    assert loop._throttled == set()
