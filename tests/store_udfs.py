"""A process function for the store-backed state test (tests/unit/test_process_store.py): per
key, a count (value), the last three numbers (list), the last number per parity (map), the
last number under an event-time TTL (value), and an event-time timer every fifth record."""

from __future__ import annotations

from typing import Any

from kstream.api import Context, ProcessFunction


class Tally(ProcessFunction):
    def open(self, ctx: Context) -> None:
        self.count = ctx.state("count")
        self.recent = ctx.state("recent")
        self.parity = ctx.state("parity")
        self.last = ctx.state("last")

    def process(self, value: dict[str, Any], ctx: Context) -> None:
        n = value["n"]
        count = self.count.value(0) + 1
        self.count.update(count)
        self.recent.add(n)
        if len(self.recent) > 3:
            self.recent.update(self.recent.get()[-3:])
        self.parity.put(n % 2, n)
        before = self.last.value()
        self.last.update(n)
        if count % 5 == 0:
            ctx.timers.register_event_time_timer(int(ctx.timestamp or 0) + 1_000)
        ctx.emit(
            {
                "count": count,
                "recent": self.recent.get(),
                "parity": dict(self.parity.items()),
                "before": before,
            }
        )

    def on_timer(self, timestamp: int, ctx: Context) -> None:
        if self.count.value(0) % 2:
            self.parity.remove(1)
        ctx.emit({"timer": timestamp, "count": self.count.value(), "last": self.last.value()})
