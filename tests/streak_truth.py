"""Independent ground truth of ``examples/flights-delay-streak.yaml`` (plain Python; no kstream
import): the delay-streak alerts and "streak closed" records of every aircraft.

Rules (the example's, restated): flights with a tail number and a departure delay (not
cancelled); per tail number, sorted by scheduled departure (ties: carrier, flight, origin,
dest). Walk them in order with the previous flight's time ``prev``:

- if ``ts - prev >= 12 h`` the aircraft was idle: an open streak of 3 or more flights is
  closed (record ``{tailnum, flights, first_dep, last_dep: prev, closed_at: prev + 12 h}``),
  and the streak is emptied;
- a flight more than 30 minutes late joins the streak; at exactly 3 flights, an alert
  ``{tailnum, flights: [carrier+flight...], delays, first_dep, alert_dep}``;
- any other flight empties the streak.

After the last flight the timer still fires (end of input): an open streak of 3 or more is
closed at ``last + 12 h``.
"""

from __future__ import annotations

import csv
import io
import zipfile
from typing import Any

from flights_truth import MINUTE_MS, _epoch_ms, flights_zip_path

IDLE_MS = 12 * 60 * MINUTE_MS


def _flights_by_tail() -> dict[str, list[dict[str, Any]]]:
    by_tail: dict[str, list[dict[str, Any]]] = {}
    with zipfile.ZipFile(flights_zip_path()) as archive, archive.open("flights.csv") as raw:
        for row in csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline="")):
            if row["tailnum"] == "NA" or row["dep_delay"] == "NA":
                continue
            by_tail.setdefault(row["tailnum"], []).append(
                {
                    "ts": _epoch_ms(row["time_hour"]) + int(row["minute"]) * MINUTE_MS,
                    "carrier": row["carrier"],
                    "flight": int(row["flight"]),
                    "origin": row["origin"],
                    "dest": row["dest"],
                    "dep_delay": int(row["dep_delay"]),
                }
            )
    return by_tail


def _closed(tail: str, streak: list[dict[str, Any]], prev: int) -> dict[str, Any]:
    return {
        "tailnum": tail,
        "flights": len(streak),
        "first_dep": streak[0]["ts"],
        "last_dep": prev,
        "closed_at": prev + IDLE_MS,
    }


def streak_truth(
    tails: frozenset[str] | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(alerts, closed records)`` of every aircraft, or of those in ``tails`` (see the
    module docstring)."""
    alerts: list[dict[str, Any]] = []
    closed: list[dict[str, Any]] = []
    for tail, flights in _flights_by_tail().items():
        if tails is not None and tail not in tails:
            continue
        flights.sort(key=lambda f: (f["ts"], f["carrier"], f["flight"], f["origin"], f["dest"]))
        streak: list[dict[str, Any]] = []
        prev = None
        for f in flights:
            if prev is not None and f["ts"] - prev >= IDLE_MS:
                if len(streak) >= 3:
                    closed.append(_closed(tail, streak, prev))
                streak = []
            prev = f["ts"]
            if f["dep_delay"] <= 30:
                streak = []
                continue
            streak.append(f)
            if len(streak) == 3:
                alerts.append(
                    {
                        "tailnum": tail,
                        "flights": [f"{s['carrier']}{s['flight']}" for s in streak],
                        "delays": [s["dep_delay"] for s in streak],
                        "first_dep": streak[0]["ts"],
                        "alert_dep": f["ts"],
                    }
                )
        if prev is not None and len(streak) >= 3:
            closed.append(_closed(tail, streak, prev))
    return alerts, closed


if __name__ == "__main__":
    a, c = streak_truth()
    print(f"alerts: {len(a)}, closed: {len(c)}")
