"""User-defined aggregations for the flights examples (``aggregate: {name: {python: ...}}``).

A user aggregation is a class (instantiated once per window operator) or an object with four
methods; the accumulator must survive a JSON round trip because it is checkpointed as JSON:

- ``initialize() -> acc``: the accumulator of an empty window;
- ``add(acc, record) -> acc``: fold in one record (the whole value dict);
- ``merge(acc_a, acc_b) -> acc``: combine two accumulators (session windows merging);
- ``result(acc) -> value``: the output field's value.
"""

from __future__ import annotations

import statistics
from typing import Any


class MedianDelay:
    """Median ``dep_delay`` (minutes) of a window's flights; None when no flight has one."""

    def initialize(self) -> list[float]:
        return []

    def add(self, acc: list[float], record: dict[str, Any]) -> list[float]:
        delay = record.get("dep_delay")
        if delay is not None:
            acc.append(delay)
        return acc

    def merge(self, a: list[float], b: list[float]) -> list[float]:
        return a + b

    def result(self, acc: list[float]) -> float | None:
        return statistics.median(acc) if acc else None


class DelayHistogram:
    """Flights per departure-delay bucket, e.g. ``{"early": 3, "0-15": 5, "15-60": 1}``
    (a dict accumulator: its keys are strings, so it survives the JSON round trip)."""

    BUCKETS = ((0, "early"), (15, "0-15"), (60, "15-60"))

    def initialize(self) -> dict[str, int]:
        return {}

    def add(self, acc: dict[str, int], record: dict[str, Any]) -> dict[str, int]:
        delay = record.get("dep_delay")
        if delay is not None:
            bucket = next((name for limit, name in self.BUCKETS if delay < limit), "60+")
            acc[bucket] = acc.get(bucket, 0) + 1
        return acc

    def merge(self, a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
        return {k: a.get(k, 0) + b.get(k, 0) for k in sorted({*a, *b})}

    def result(self, acc: dict[str, int]) -> dict[str, int]:
        return dict(acc)
