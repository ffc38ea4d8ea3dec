"""Watermark markers: how a task tells the tasks downstream of its repartition topics where
event time is (DESIGN.md section 4).

A marker is a record without value whose headers name the origin task, its watermark (epoch ms)
and a status (``active``, ``idle``, ``end``, ``stopped/<request id>``). It goes to every
partition of every repartition topic the task writes, in the same transaction as the data it
follows, when the watermark or status changes, at most every ``interval_ms`` for a rising
watermark of an unchanged status (forced for a status change that matters: idle, end, stop).
"""

from __future__ import annotations

from collections.abc import Callable

from kstream.runtime.executor import Emit
from kstream.runtime.inputs import H_ORIGIN, H_STATUS, H_WATERMARK
from kstream.time.watermarks import ACTIVE, MIN_WATERMARK


class MarkerSender:
    """Sends one task's markers.

    Args:
        origin: the task id.
        topics: ``(repartition topic, partitions)`` the task writes (none: nothing is sent).
        emit: the task's output.
        clock: processing time, epoch ms.
        interval_ms: least time between two markers of the same status (0: every change).

    Attributes:
        last: the last marker sent: ``(watermark ms, status, sent at ms)``.
    """

    def __init__(
        self,
        origin: str,
        topics: list[tuple[str, int]],
        emit: Emit,
        clock: Callable[[], int],
        interval_ms: int,
    ) -> None:
        self.origin, self.topics, self.emit, self.clock = origin, topics, emit, clock
        self.interval_ms = interval_ms
        self.last: tuple[int, str, int] = (MIN_WATERMARK, ACTIVE, 0)

    def send(self, watermark: int, status: str, force: bool = False) -> None:
        """Send ``(watermark, status)`` unless nothing changed or (not ``force``) the last one
        of this status went out less than ``interval_ms`` ago."""
        if not self.topics:
            return
        last_wm, last_status, last_at = self.last
        now = self.clock()
        if not force and watermark <= last_wm and status == last_status:
            return
        if not force and status == last_status and now - last_at < self.interval_ms:
            return
        headers = [
            (H_WATERMARK, str(watermark).encode()),
            (H_ORIGIN, self.origin.encode()),
            (H_STATUS, status.encode()),
        ]
        for topic, partitions in self.topics:
            for p in range(partitions):
                # the watermark travels in the header; the Kafka timestamp is the produce time
                self.emit(topic, None, None, now, headers, p)
        self.last = (watermark, status, now)
