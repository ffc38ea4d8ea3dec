"""A user-defined aggregate for the savepoint tests: the spread (max - min) of ``amount``."""

from __future__ import annotations

from typing import Any


class Spread:
    """Accumulator ``[min, max]`` (JSON-able); result ``max - min`` (None before any value)."""

    def initialize(self) -> list[Any]:
        return [None, None]

    def add(self, acc: list[Any], record: dict[str, Any]) -> list[Any]:
        value = record.get("amount")
        if value is None:
            return acc
        low = value if acc[0] is None else min(acc[0], value)
        high = value if acc[1] is None else max(acc[1], value)
        return [low, high]

    def merge(self, a: list[Any], b: list[Any]) -> list[Any]:
        lows = [v for v in (a[0], b[0]) if v is not None]
        highs = [v for v in (a[1], b[1]) if v is not None]
        return [min(lows, default=None), max(highs, default=None)]

    def result(self, acc: list[Any]) -> Any:
        return None if acc[0] is None else acc[1] - acc[0]
