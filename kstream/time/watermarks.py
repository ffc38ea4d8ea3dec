"""Watermark generation and combination (Flink ``WatermarkStrategy`` semantics, DESIGN.md 2-3).

- :class:`PartitionWatermark`: one source partition. watermark = max event ts seen -
  max_out_of_orderness - 1 (``monotonous``: bound 0). Records more than ``max_future_skew_ms``
  ahead of the highest timestamp seen so far are *absurd*: they do not advance the watermark.
- :class:`UpstreamWatermarks`: a downstream task's input watermark = min over the latest marker
  of every upstream task that is neither idle nor ended; it never regresses. All upstream tasks
  ended means +infinity.
"""

from __future__ import annotations

from typing import Any

MIN_WATERMARK = -(2**63)
MAX_WATERMARK = 2**63 - 1

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
    """Input watermark of a task that reads a repartition topic.

    Args:
        upstream_tasks: number of upstream tasks (the upstream stage's input partitions); the
            watermark stays at its minimum until every one of them has sent a marker (or been
            declared idle or ended).
    """

    def __init__(self, upstream_tasks: int) -> None:
        self.upstream_tasks = upstream_tasks
        self.latest: dict[str, tuple[int, str]] = {}
        self.watermark = MIN_WATERMARK

    def update(self, origin: str, watermark: int, status: str) -> int:
        """Record the marker of upstream task ``origin``; returns the combined watermark."""
        previous = self.latest.get(origin)
        if previous is not None and previous[1] == END:
            return self.watermark
        if previous is not None and status != IDLE and watermark < previous[0]:
            watermark = previous[0]
        self.latest[origin] = (watermark, status)
        return self._combine()

    def _combine(self) -> int:
        if len(self.latest) < self.upstream_tasks:
            return self.watermark
        active = [
            wm
            for wm, status in self.latest.values()
            if status == ACTIVE or status.startswith(STOPPED)
        ]
        if active:
            candidate = min(active)
        elif all(status == END for _, status in self.latest.values()):
            candidate = MAX_WATERMARK
        else:
            return self.watermark  # every input idle (or idle/ended): hold, as Flink does
        if candidate > self.watermark:
            self.watermark = candidate
        return self.watermark

    @property
    def ended(self) -> bool:
        """True when every upstream task has signalled end of input."""
        return len(self.latest) >= self.upstream_tasks and all(
            status == END for _, status in self.latest.values()
        )

    def stopped_by(self) -> str | None:
        """The savepoint request id once every upstream task has stopped (or ended) for it."""
        if len(self.latest) < self.upstream_tasks:
            return None
        ids = {
            status[len(STOPPED) :]
            for _, status in self.latest.values()
            if status.startswith(STOPPED)
        }
        others = [s for _, s in self.latest.values() if not s.startswith(STOPPED) and s != END]
        return ids.pop() if len(ids) == 1 and not others else None

    def to_state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints."""
        return {"watermark": self.watermark, "latest": {k: list(v) for k, v in self.latest.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`to_state` output."""
        self.watermark = int(state["watermark"])
        self.latest = {k: (int(v[0]), str(v[1])) for k, v in state["latest"].items()}
