"""The end of input, a slice at a time.

When every input of a task has ended, event time jumps to +infinity: every event-time timer
fires (every open window, every process-function timer) and a global aggregation emits its
keys. Over millions of keys that is millions of records: done in one step it would outlast the
consumer's ``max.poll.interval.ms`` and fill one transaction. :class:`EndOfInput` does the same
work, in the same order (the task's timed nodes in topological order, each firing its timers in
time order, Flink ``InternalTimerServiceImpl.advanceWatermark``), in slices of at most ``most``
timers or keys; the runner polls and checkpoints between slices.

A checkpoint between slices holds :meth:`EndOfInput.state`: the node being brought to the end
and, for a global aggregation's scan, its cursor. The nodes before it are done; the work done
by timers is in the state already (a fired timer is deleted, a fired window cleared). A task
restored from such a checkpoint resumes where the slice left off: nothing is emitted twice and
nothing is skipped. The task sends its end-of-input marker (watermark +infinity) only after the
last slice, so downstream tasks never see a watermark ahead of what this task still emits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kstream.operators.join.node import JoinNode
from kstream.operators.process import ProcessNode
from kstream.operators.window.node import WindowNode
from kstream.time.watermarks import MAX_WATERMARK

TimedNode = WindowNode | ProcessNode | JoinNode
#: A slice's bound when none is given: everything in one step (the broker-free driver).
UNBOUNDED = 2**62


class EndOfInput:
    """Brings a task's timed nodes to watermark +infinity in slices.

    Args:
        nodes: ``(node id, node)`` of the task's timed nodes, in topological order.
        state: :meth:`state` of a checkpoint taken between slices (None: from the start).

    Raises:
        ValueError: ``state`` names a node the task does not have (a changed pipeline).
    """

    def __init__(
        self, nodes: Sequence[tuple[str, TimedNode]], state: Mapping[str, Any] | None = None
    ) -> None:
        self._nodes = list(nodes)
        self._index = 0
        #: nodes at +infinity already (fed only by inputs that ended before the others)
        self._ended = {node_id for node_id, node in nodes if node.watermark >= MAX_WATERMARK}
        if state is not None:
            ids = [node_id for node_id, _ in self._nodes]
            if state["node"] not in ids:
                raise ValueError(f"end of input was at node {state['node']!r}, not in {ids}")
            self._index = ids.index(state["node"])
            self._ended.discard(state["node"])  # the node in progress goes on
            cursor = state.get("cursor")
            node = self._nodes[self._index][1]
            if cursor is not None and isinstance(node, WindowNode):
                node.window.end_cursor = bytes.fromhex(cursor)

    @property
    def done(self) -> bool:
        """Whether every node has reached the end."""
        return self._index >= len(self._nodes)

    def step(self, most: int | None = None) -> bool:
        """Fire at most ``most`` timers or keys (None: all); True when every node is done."""
        budget = UNBOUNDED if most is None else most
        while self._index < len(self._nodes) and budget > 0:
            node_id, node = self._nodes[self._index]
            if node_id in self._ended:
                self._index += 1
                continue
            used, finished = _end_slice(node, budget)
            budget -= used
            if not finished:
                return False
            self._index += 1
        return self.done

    def state(self) -> dict[str, Any] | None:
        """What a checkpoint keeps: ``{"node": id, "cursor": hex or None}`` (None: done)."""
        if self.done:
            return None
        node_id, node = self._nodes[self._index]
        cursor = node.window.end_cursor if isinstance(node, WindowNode) else None
        return {"node": node_id, "cursor": cursor.hex() if cursor is not None else None}


def _end_slice(node: TimedNode, most: int) -> tuple[int, bool]:
    """Up to ``most`` timers (then, for a window without timers, keys) of ``node`` at watermark
    +infinity; returns ``(how many, whether the node is done)``. As any watermark advance of
    the executor: the timers fire before ``on_watermark``."""
    if isinstance(node, ProcessNode):
        node.watermark = MAX_WATERMARK
    timers = node.timers
    used = 0
    if timers is not None and timers.next_event_time <= MAX_WATERMARK:
        used = timers.advance_event_time(MAX_WATERMARK, node.on_timer, most)
        if timers.next_event_time <= MAX_WATERMARK:
            return used, False
    if isinstance(node, WindowNode):
        emitted, finished = node.end_slice(most - used)
        return used + emitted, finished
    node.on_watermark(MAX_WATERMARK)
    return used, True
