"""Process functions for the unit tests of ``process:`` nodes (tests/unit/test_process_*.py)."""

from __future__ import annotations

from typing import Any

from kstream.api import Context, ProcessFunction


class Everything(ProcessFunction):
    """Value, list and map state, both timer domains, deletes and a side port.

    Per record ``{"k", "n", "ts", "cmd"?}``: count (value), the ``n`` seen (list), the count
    per parity (map); emits ``{"count", "seen", "parity"}`` on main, odd ``n`` also on ``odd``.
    Registers an event-time timer at ``ts + 10`` and a processing-time timer at now + 100;
    ``cmd: cancel`` deletes both of the record's timers; ``cmd: boom`` raises; ``cmd: bad``
    stores a set; ``cmd: undeclared`` asks for undeclared state; ``cmd: boom-timer`` makes the
    key's timers raise."""

    def open(self, ctx: Context) -> None:
        self.count = ctx.state("count")
        self.seen = ctx.state("seen")
        self.parity = ctx.state("parity")
        self.flags = ctx.state("flags")
        self.opened_key = ctx.key

    def process(self, value: dict[str, Any], ctx: Context) -> None:
        cmd = value.get("cmd")
        if cmd == "boom":
            raise ValueError("boom")
        if cmd == "bad":
            self.count.update({1, 2})
        if cmd == "undeclared":
            ctx.state("nope")
        if cmd == "boom-timer":
            self.flags.update("boom")
        n = value["n"]
        count = self.count.value(0) + 1
        self.count.update(count)
        self.seen.add(n)
        side = "odd" if n % 2 else "even"
        self.parity.put(side, self.parity.get(side, 0) + 1)
        event_at, proc_at = ctx.timestamp + 10, ctx.timers.current_processing_time() + 100
        ctx.timers.register_event_time_timer(event_at)
        ctx.timers.register_processing_time_timer(proc_at)
        if cmd == "cancel":
            ctx.timers.delete_event_time_timer(event_at)
            ctx.timers.delete_processing_time_timer(proc_at)
        out = {"count": count, "seen": self.seen.get(), "parity": dict(self.parity.items())}
        ctx.emit(out)
        if n % 2:
            ctx.emit({"odd": n}, port="odd")

    def on_timer(self, timestamp: int, ctx: Context) -> None:
        if self.flags.value() == "boom":
            raise RuntimeError("timer boom")
        ctx.emit(
            {
                "timer": timestamp,
                "domain": ctx.time_domain,
                "watermark": ctx.watermark,
                "count": self.count.value(),
            },
            port="timers",
        )


class NoProcess:
    """Not a process function (no ``process`` method)."""
