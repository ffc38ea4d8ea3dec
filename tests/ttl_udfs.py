"""A process function for the state TTL tests (tests/unit/test_process_ttl.py): ``{"put": x}``
writes ``x`` to every state; every record emits what the states hold then."""

from __future__ import annotations

from typing import Any

from kstream.api import Context, ProcessFunction


class Remember(ProcessFunction):
    def open(self, ctx: Context) -> None:
        self.last = ctx.state("last")
        self.seen = ctx.state("seen")
        self.wall = ctx.state("wall")

    def process(self, value: dict[str, Any], ctx: Context) -> None:
        put = value.get("put")
        if put is not None:
            self.last.update(put)
            self.seen.put(str(put), ctx.timestamp)
            self.wall.update(put)
        if value.get("timer") is not None:
            ctx.timers.register_event_time_timer(value["timer"])
        ctx.emit(
            {"last": self.last.value(), "seen": dict(self.seen.items()), "wall": self.wall.value()}
        )

    def on_timer(self, timestamp: int, ctx: Context) -> None:
        self.last.update(f"timer@{timestamp}")
