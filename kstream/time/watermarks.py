"""Watermark generation and combination (Flink ``WatermarkStrategy`` semantics, DESIGN.md 2-3).

- :class:`PartitionWatermark`: one source partition. watermark = max event ts seen -
  max_out_of_orderness - 1 (``monotonous``: bound 0). Records more than ``max_future_skew_ms``
  ahead of the highest timestamp seen so far are *absurd*: they do not advance the watermark.
- :class:`UpstreamWatermarks`: a downstream task's input watermark, combined from the in-band
  markers of its upstream tasks by a :class:`~kstream.time.valve.WatermarkValve` (Flink
  ``StatusWatermarkValve``: min over active, aligned upstream tasks, never regressing; all idle:
  the max). An ended upstream task is left out for good; all ended means +infinity.
"""

from __future__ import annotations

from typing import Any

from kstream.time.valve import MAX_WATERMARK, MIN_WATERMARK, ChannelStatus, WatermarkValve

ACTIVE = "active"
IDLE = "idle"
END = "end"
#: prefix of the status of an upstream task stopped for a savepoint: ``stopped/<request id>``;
#: its watermark counts like an active one, and it will send nothing more in this run.
STOPPED = "stopped/"


class PartitionWatermark:
    """Watermark of one source partition.

    Args:
        bound_ms: max out-of-orderness in ms (0 for monotonous timestamps).
        max_future_skew_ms: how far ahead of the highest timestamp seen a record may be before
            it is treated as absurd (ignored while nothing has been seen).
    """

    __slots__ = ("bound_ms", "max_future_skew_ms", "max_ts", "watermark")

    def __init__(self, bound_ms: int, max_future_skew_ms: int) -> None:
        self.bound_ms = bound_ms
        self.max_future_skew_ms = max_future_skew_ms
        self.max_ts = MIN_WATERMARK
        self.watermark = MIN_WATERMARK

    def is_absurd(self, ts: int) -> bool:
        """True when ``ts`` is further than the allowed skew ahead of everything seen so far."""
        return self.max_ts != MIN_WATERMARK and ts > self.max_ts + self.max_future_skew_ms

    def observe(self, ts: int) -> int:
        """Account for a record with event time ``ts``; returns the (possibly new) watermark."""
        if ts > self.max_ts:
            self.max_ts = ts
            candidate = ts - self.bound_ms - 1
            if candidate > self.watermark:
                self.watermark = candidate
        return self.watermark

    def force(self, watermark: int) -> int:
        """Set the watermark explicitly (tests, end of input); it never regresses."""
        if watermark > self.watermark:
            self.watermark = watermark
        return self.watermark

    def to_state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints."""
        return {"max_ts": self.max_ts, "watermark": self.watermark}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`to_state` output."""
        self.max_ts = int(state["max_ts"])
        self.watermark = int(state["watermark"])


class UpstreamWatermarks:
    """Input watermark of a task that reads a repartition topic: a :class:`WatermarkValve`
    (Flink ``StatusWatermarkValve``) over the upstream tasks, fed by their in-band markers.

    A marker ``(origin, watermark, status)`` is fed to the valve as Flink's upstream would send
    it: ``active`` and ``stopped/<id>``: status ACTIVE, then the watermark; ``idle``: the
    watermark, then status IDLE (the task emitted its last watermark, then went idle); ``end``:
    the channel finishes (:meth:`WatermarkValve.finish`: at +infinity, left out for good; all
    ended: ``MAX_WATERMARK``). Markers after an ``end`` are ignored.

    Args:
        upstream_tasks: number of upstream tasks (the upstream stage's input partitions); until
            every one of them has sent a marker the missing ones count as active channels at
            the minimum watermark, so the watermark stays at its minimum.
    """

    def __init__(self, upstream_tasks: int) -> None:
        self.upstream_tasks = upstream_tasks
        self.valve: WatermarkValve[str] = WatermarkValve(upstream_tasks)
        #: the status of the latest marker of each upstream task (``active``, ``idle``,
        #: ``end`` or ``stopped/<request id>``)
        self.statuses: dict[str, str] = {}

    @property
    def watermark(self) -> int:
        """The combined input watermark (epoch ms; -2**63 before any); never regresses."""
        return self.valve.output

    @property
    def latest(self) -> dict[str, tuple[int, str]]:
        """Per upstream task: its watermark in the valve (epoch ms) and latest marker status."""
        channels = self.valve.channels
        return {o: (channels[o].watermark, s) for o, s in self.statuses.items()}

    def update(self, origin: str, watermark: int, status: str) -> int:
        """Feed the marker of upstream task ``origin`` (its watermark in epoch ms and status);
        returns the combined watermark."""
        if self.statuses.get(origin) == END:
            return self.valve.output
        self.statuses[origin] = status
        valve = self.valve
        if status == IDLE:
            valve.input_watermark(origin, watermark)
            return valve.input_status(origin, active=False)
        if status == END:
            return valve.finish(origin)
        valve.input_status(origin, active=True)
        return valve.input_watermark(origin, watermark)

    @property
    def ended(self) -> bool:
        """True when every upstream task has signalled end of input."""
        return len(self.statuses) >= self.upstream_tasks and all(
            status == END for status in self.statuses.values()
        )

    def stopped_by(self) -> str | None:
        """The savepoint request id once every upstream task has stopped (or ended) for it."""
        if len(self.statuses) < self.upstream_tasks:
            return None
        ids = {s[len(STOPPED) :] for s in self.statuses.values() if s.startswith(STOPPED)}
        others = [s for s in self.statuses.values() if not s.startswith(STOPPED) and s != END]
        return ids.pop() if len(ids) == 1 and not others else None

    def resume_after_stop(self) -> None:
        """Forget a stop of an earlier run: upstream tasks that had stopped count as active (as
        they did in the valve) until their next marker."""
        self.statuses = {
            o: ACTIVE if s.startswith(STOPPED) else s for o, s in self.statuses.items()
        }

    def to_state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints: ``{"watermark": ms, "latest": {origin: [watermark_ms,
        status, aligned]}}`` (``aligned`` was added later: older states have two fields)."""
        channels = self.valve.channels
        return {
            "watermark": self.valve.output,
            "latest": {
                o: [channels[o].watermark, s, channels[o].aligned] for o, s in self.statuses.items()
            },
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`to_state` output, or from the older shape without ``aligned``:
        then an active channel is aligned iff its watermark is at least the output, as the
        valve's rules keep it."""
        output = int(state["watermark"])
        self.statuses = {}
        channels = []
        for origin, entry in state["latest"].items():
            watermark, status = int(entry[0]), str(entry[1])
            self.statuses[origin] = status
            if status == END:
                channels.append((origin, ChannelStatus(MAX_WATERMARK, False, False, True)))
                continue
            active = status != IDLE
            aligned = bool(entry[2]) if len(entry) > 2 else watermark >= output
            channels.append((origin, ChannelStatus(watermark, active, active and aligned)))
        self.valve.restore(output, channels)


__all__ = [
    "ACTIVE",
    "END",
    "IDLE",
    "MAX_WATERMARK",
    "MIN_WATERMARK",
    "STOPPED",
    "PartitionWatermark",
    "UpstreamWatermarks",
]
