"""What a task checkpoints besides its operators' stores: its metadata (input positions and
watermarks, the valve, end-of-input and stop flags, the last marker, duplicate detection), and
how a task is rebuilt from it.

:class:`TaskState` is a mixin of :class:`~kstream.runtime.task.Task`: it works on the task's
attributes declared below.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kstream.operators.window.base import WindowOperator
from kstream.runtime.ending import EndOfInput
from kstream.runtime.executor import NodeExecutor
from kstream.runtime.inputs import TaskInput, legacy_input_state
from kstream.runtime.markers import MarkerSender
from kstream.time.valve import WatermarkValve


class TaskState:
    """Checkpoint metadata of a task (a mixin)."""

    executor: NodeExecutor
    inputs: list[TaskInput]
    _first: TaskInput
    valve: WatermarkValve[int] | None
    markers: MarkerSender
    windows: list[WindowOperator]
    finished: bool
    stopped_by: str | None
    ending: EndOfInput | None
    _watermark: int

    @property
    def position(self) -> int | None:
        raise NotImplementedError

    def state_changes(self) -> dict[str, list[tuple[bytes, bytes | None]]]:
        """Per store name, each key changed since the last call, once (None = deleted)."""
        return self.executor.state_changes()

    def meta(self) -> dict[str, Any]:
        """The task's non-window state: input positions, watermarks, finished and stop flags.

        ``position``, ``source``, ``upstream`` and ``seen`` describe the first input (the
        shape older versions wrote and read); ``inputs`` holds every input by topic."""
        first = self._first.to_state()
        return {
            "position": self.position,
            "watermark": self._watermark,
            "source": first.get("source"),
            "upstream": first.get("upstream"),
            "finished": self.finished,
            "stopped_by": self.stopped_by,
            "marker": list(self.markers.last[:2]),
            "seen": first.get("seen", {}),
            "inputs": {i.topic: i.to_state() for i in self.inputs},
            "valve": self.valve.to_state() if self.valve is not None else None,
            "nodes": self.executor.timed_watermarks() if self.valve is not None else None,
            "ending": self.ending.state() if self.ending is not None else None,
        }

    def restore(
        self, meta: dict[str, Any] | None, stores: Mapping[str, Iterable[tuple[bytes, bytes]]]
    ) -> None:
        """Rebuild the task from checkpointed ``meta`` and store entries (None: fresh task)."""
        if meta is None:
            return
        self.finished = bool(meta["finished"])
        self.stopped_by = meta.get("stopped_by")
        self._watermark = int(meta["watermark"])
        states = meta.get("inputs") or {}
        for i in self.inputs:
            state = states.get(i.topic)
            if i is self._first:  # the older shape, completed by what ``inputs`` holds
                state = {**legacy_input_state(meta), **(state or {})}
            if state is not None:
                i.load_state(state)
        if self.valve is not None and meta.get("valve"):
            self.valve.load_state(meta["valve"])
        self.markers.last = (int(meta["marker"][0]), str(meta["marker"][1]), 0)
        self.executor.restore(stores, self._watermark)
        self.executor.restore_timed_watermarks(meta.get("nodes") or {})
        ending = meta.get("ending")
        if self.valve is not None:  # each node's valve starts from its inputs' restored state
            for i in self.inputs:
                if i.finished:  # an end of input (in progress or done) fired already
                    self.executor.input_finish(i.index, refresh=not (ending or self.finished))
                else:
                    self.executor.input_watermark(i.index, i.watermark)
        if ending is not None and not self.finished:
            self.ending = self.executor.end_of_input(ending)

    def open_windows(self) -> int:
        """Windows currently held by the task's operators."""
        return sum(w.open_windows() for w in self.windows)
