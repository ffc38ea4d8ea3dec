"""A keyed process function for ``examples/flights-delay-streak.yaml``: per aircraft (tail
number), an alert when three consecutive flights each left more than 30 minutes late, and a
"streak closed" record when an alerted streak ends because the aircraft has not flown for
12 hours (an event-time timer). Reference: docs/process-functions.md.

Rules, per aircraft, over its flown flights in scheduled-departure order (ties: carrier,
flight number, origin, destination):

- a flight with ``dep_delay > 30`` extends the streak; when the streak reaches 3 flights, one
  alert is emitted (timestamp: the third flight's scheduled departure);
- any other flight ends the streak silently;
- when the aircraft has not flown for 12 hours (its next flight, if any, is scheduled 12 h or
  more after its last one) the streak is cleared; a streak that had alerted emits a
  ``closed`` record on port ``closed`` (timestamp: last flight + 12 h). At the end of a bounded
  input every pending timer fires, so every alerted streak still open is closed then.

Records arrive out of event-time order (by actual departure), so each flight waits in map state
``pending`` for an event-time timer at its scheduled departure: flights are then handled in
scheduled order, whatever the arrival order and the partitioning.
"""

from __future__ import annotations

from typing import Any

from kstream.api import Context, ListState, MapState, ProcessFunction, ValueState

LATE_MINUTES = 30
STREAK = 3
IDLE_MS = 12 * 3_600_000


def flight_order(flight: dict[str, Any]) -> tuple[Any, ...]:
    """Tie order of one aircraft's flights scheduled at the same time."""
    return (flight["carrier"], flight["flight"], flight["origin"], flight["dest"])


class DelayStreak(ProcessFunction):
    """See the module docstring. State: ``pending`` (map: scheduled ms -> flights waiting for
    the watermark), ``streak`` (list: the delayed flights of the current streak), ``last``
    (value: scheduled ms of the last flight handled)."""

    def open(self, ctx: Context) -> None:
        self.pending: MapState = ctx.state("pending")
        self.streak: ListState = ctx.state("streak")
        self.last: ValueState = ctx.state("last")

    def process(self, value: dict[str, Any], ctx: Context) -> None:
        ts = value["sched_dep_ts"]
        flight = {
            "ts": ts,
            "carrier": value["carrier"],
            "flight": value["flight"],
            "origin": value["origin"],
            "dest": value["dest"],
            "dep_delay": value["dep_delay"],
        }
        waiting = self.pending.get(ts, [])
        waiting.append(flight)
        self.pending.put(ts, waiting)
        ctx.timers.register_event_time_timer(ts)

    def on_timer(self, timestamp: int, ctx: Context) -> None:
        last = self.last.value()
        if last is not None and timestamp >= last + IDLE_MS:
            self._close(last, ctx)
        flights = self.pending.get(timestamp)
        if flights is None:
            return
        self.pending.remove(timestamp)
        for flight in sorted(flights, key=flight_order):
            self._fly(flight, ctx)

    def _fly(self, flight: dict[str, Any], ctx: Context) -> None:
        last = self.last.value()
        if last is not None and not self.pending.contains(last + IDLE_MS):
            # a key has one timer per timestamp: keep it when flights wait for it too (a
            # stale idle timer closes nothing: on_timer checks the time since the last flight)
            ctx.timers.delete_event_time_timer(last + IDLE_MS)
        self.last.update(flight["ts"])
        ctx.timers.register_event_time_timer(flight["ts"] + IDLE_MS)
        if flight["dep_delay"] <= LATE_MINUTES:
            self.streak.clear()
            return
        self.streak.add(flight)
        if len(self.streak) == STREAK:
            streak = self.streak.get()
            ctx.emit(
                {
                    "tailnum": ctx.key,
                    "flights": [f"{f['carrier']}{f['flight']}" for f in streak],
                    "delays": [f["dep_delay"] for f in streak],
                    "first_dep": streak[0]["ts"],
                    "alert_dep": flight["ts"],
                }
            )

    def _close(self, last: int, ctx: Context) -> None:
        streak = self.streak.get()
        if len(streak) >= STREAK:
            ctx.emit(
                {
                    "tailnum": ctx.key,
                    "flights": len(streak),
                    "first_dep": streak[0]["ts"],
                    "last_dep": last,
                    "closed_at": last + IDLE_MS,
                },
                port="closed",
            )
        self.streak.clear()
        self.last.clear()
