"""How far a run is through its source partitions: the lag (records behind their end offsets),
and for bounded runs the part done and an ETA.

Offsets count records (a transactional topic's commit markers take offsets too, so the counts
are close, not exact). A run counts only the source partitions of the tasks it runs; the first
position seen of each is where it started (no committed offset: 0, the earliest offset of a
topic never truncated). A bounded run's end offsets are those captured at start; an unbounded
run's are the latest the consumer saw (:func:`kstream.io.kafka.cached_end_offsets`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from kstream.runtime.inputs import SourceInput
from kstream.runtime.task import Task

TopicPartition = tuple[str, int]


@dataclass(frozen=True)
class Progress:
    """``lag`` in records (None: no end offset known yet), ``done`` 0.0 to 1.0 and ``eta_s``
    in seconds (bounded runs; None when unknown)."""

    lag: int | None = None
    done: float | None = None
    eta_s: float | None = None


def source_positions(tasks: Iterable[Task]) -> dict[TopicPartition, int | None]:
    """The next offset to read of every source partition of ``tasks`` (None: not known yet)."""
    return {
        (i.topic, t.partition): i.position
        for t in tasks
        for i in t.inputs
        if isinstance(i, SourceInput)
    }


class ProgressMeter:
    """Measures :class:`Progress` from positions and end offsets over time.

    Args:
        window_s: the reading rate of the ETA is taken over about this many seconds.
    """

    def __init__(self, window_s: float = 10.0) -> None:
        self.window_s = window_s
        self._start: dict[TopicPartition, int] = {}
        self._samples: deque[tuple[float, int]] = deque()
        #: the latest measurement
        self.last = Progress()

    def measure(
        self,
        positions: Mapping[TopicPartition, int | None],
        ends: Mapping[TopicPartition, int],
        bounded: bool,
        t_s: float,
    ) -> Progress:
        """The progress at time ``t_s`` (monotonic seconds) of the source partitions at
        ``positions`` (next offsets) toward ``ends`` (end offsets; partitions without one are
        left out)."""
        lag = total = done = 0
        known = False
        for tp, position in positions.items():
            end = ends.get(tp)
            if end is None:
                continue
            known = True
            pos = position or 0
            start = self._start.setdefault(tp, min(pos, end))
            lag += max(end - pos, 0)
            total += max(end - start, 0)
            done += max(min(pos, end) - start, 0)
        if not known:
            return self.last
        done_eta = self._bounded(total, done, lag, t_s) if bounded else (None, None)
        self.last = Progress(lag, *done_eta)
        return self.last

    def _bounded(self, total: int, done: int, lag: int, t_s: float) -> tuple[float, float | None]:
        """The part done and the ETA (records left at the rate over the last ``window_s``)."""
        samples = self._samples
        samples.append((t_s, done))
        while len(samples) > 2 and t_s - samples[1][0] >= self.window_s:
            samples.popleft()
        first_t, first_done = samples[0]
        rate = (done - first_done) / (t_s - first_t) if t_s > first_t else 0.0
        eta = 0.0 if lag == 0 else (lag / rate if rate > 0 else None)
        return (done / total if total else 1.0), eta
