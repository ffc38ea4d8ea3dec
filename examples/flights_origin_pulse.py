"""A keyed process function with a processing-time timer, for
``examples/flights-origin-pulse.yaml``: per origin airport, a "pulse" record every
``PULSE_MS`` of wall-clock time while flights arrive, with how many flights (and how many left
more than 60 minutes late) arrived since the previous pulse. Reference:
docs/process-functions.md.

The pulse follows processing time, not event time: it reports what the job has seen in the
last 10 seconds of its run (a live feed for a dashboard), so its counts depend on how fast the
input arrives; every flight is counted in exactly one pulse, so the pulses' ``flights`` of an
airport add up to its flights once the last pulse has fired. As in Flink, processing-time
timers do not fire at the end of a bounded input: run it unbounded (the pulse pending when a
``--bounded`` run ends is not emitted).
"""

from __future__ import annotations

from typing import Any

from kstream.api import Context, ProcessFunction, ValueState

#: wall-clock milliseconds between two pulses of an airport
PULSE_MS = 10_000
#: a departure this many minutes late counts as delayed
DELAYED_MINUTES = 60


class OriginPulse(ProcessFunction):
    """State: ``counts`` (value: ``{"flights": n, "delayed": n, "since": ms}`` since the last
    pulse, None when no flight arrived since); a processing-time timer ``PULSE_MS`` after the
    first flight of a pulse."""

    def open(self, ctx: Context) -> None:
        self.counts: ValueState = ctx.state("counts")

    def process(self, value: dict[str, Any], ctx: Context) -> None:
        counts = self.counts.value()
        if counts is None:
            now = ctx.timers.current_processing_time()
            counts = {"flights": 0, "delayed": 0, "since": now}
            ctx.timers.register_processing_time_timer(now + PULSE_MS)
        counts["flights"] += 1
        delay = value.get("dep_delay")
        if delay is not None and delay > DELAYED_MINUTES:
            counts["delayed"] += 1
        self.counts.update(counts)

    def on_timer(self, timestamp: int, ctx: Context) -> None:
        counts = self.counts.value()
        if counts is None:
            return
        self.counts.clear()
        ctx.emit(
            {
                "origin": ctx.key,
                "since_ms": counts["since"],
                "until_ms": timestamp,
                "flights": counts["flights"],
                "delayed": counts["delayed"],
            }
        )
