"""The keyed process function of the chaos suite's process workload
(tests/chaos/process_workload.py has the rules and their independent truth).

Per key: each record's ``v`` is added to its 10 s window's ``[count, sum]`` in map state
``windows`` and an event-time timer is registered at the window's last millisecond; when the
timer fires, the window leaves the map, its sum is added to value state ``running``, its count
to list state ``recent`` (the last three kept), and one record is emitted.
"""

from __future__ import annotations

from typing import Any

from kstream.api import Context, ListState, MapState, ProcessFunction, ValueState

WINDOW_MS = 10_000


class RunningSums(ProcessFunction):
    """See the module docstring."""

    def open(self, ctx: Context) -> None:
        self.windows: MapState = ctx.state("windows")
        self.running: ValueState = ctx.state("running")
        self.recent: ListState = ctx.state("recent")

    def process(self, value: dict[str, Any], ctx: Context) -> None:
        start = value["ts"] - value["ts"] % WINDOW_MS
        acc = self.windows.get(start, [0, 0])
        self.windows.put(start, [acc[0] + 1, acc[1] + value["v"]])
        ctx.timers.register_event_time_timer(start + WINDOW_MS - 1)

    def on_timer(self, timestamp: int, ctx: Context) -> None:
        start = timestamp + 1 - WINDOW_MS
        acc = self.windows.get(start)
        if acc is None:
            return
        self.windows.remove(start)
        running = self.running.value(0) + acc[1]
        self.running.update(running)
        self.recent.add(acc[0])
        recent = self.recent.get()[-3:]
        self.recent.update(recent)
        ctx.emit(
            {
                "key": ctx.key,
                "window_start": start,
                "n": acc[0],
                "total": acc[1],
                "running": running,
                "last3": recent,
            }
        )
