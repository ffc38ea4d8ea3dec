"""User functions for the ``flat_map: {python: ...}`` tests (unit and integration): each gets a
record (a dict) and returns the records to emit for it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any


def delay_hours(flight: dict[str, Any]) -> list[dict[str, Any]]:
    """One record per started hour of departure delay: ``ceil(dep_delay / 60)`` copies of the
    flight with ``delay_hour`` = 1..n; none for a flight on time, early or cancelled."""
    delay = flight.get("dep_delay")
    if delay is None or delay <= 0:
        return []
    return [{**flight, "delay_hour": hour} for hour in range(1, math.ceil(delay / 60) + 1)]


def copies(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """``record["n"]`` copies, numbered by ``i`` (a generator); raises ValueError for a
    negative ``n`` after yielding nothing."""
    if record["n"] < 0:
        raise ValueError(f"negative n: {record['n']}")
    for i in range(record["n"]):
        yield {**record, "i": i}


def wrong_result(record: dict[str, Any]) -> Any:
    """What ``record["kind"]`` asks for: ``none``, ``int``, ``dict``, ``strings`` or ``ok``."""
    return {
        "none": None,
        "int": 42,
        "dict": {"a": 1},
        "strings": ["a", "b"],
        "ok": [record],
    }[record["kind"]]
