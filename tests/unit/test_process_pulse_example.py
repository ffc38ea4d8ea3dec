"""examples/flights-origin-pulse.yaml (a processing-time timer) on the broker-free driver with
its controllable clock: the first 6,000 flights arrive at 500 flights per second of
processing time over 2 partitions; every origin gets a pulse every 10 s while flights arrive,
and the pulses add up to the flights of each origin (counted independently here)."""

from __future__ import annotations

from collections import Counter
from itertools import islice
from pathlib import Path

from kstream.testing.driver import PipelineDriver
from kstream.tools.datasets import flights_records

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flights-origin-pulse.yaml"
START_MS = 1_700_000_000_000
FLIGHTS, PER_SECOND, PULSE_MS = 6_000, 500, 10_000


def test_pulses_every_10_s_of_processing_time_add_up_to_the_flights() -> None:
    driver = PipelineDriver.from_yaml(EXAMPLE, partitions=2, start_time_ms=START_MS)
    flights: Counter[str] = Counter()
    delayed: Counter[str] = Counter()
    for n, (key, value, ts) in enumerate(islice(flights_records(), FLIGHTS)):
        if n and n % PER_SECOND == 0:
            driver.advance_processing_time(1_000)
        driver.send("flights", value, key=key, timestamp_ms=ts, partition=n % 2)
        flights[value["origin"]] += 1
        delayed[value["origin"]] += (value["dep_delay"] or 0) > 60
    # 12 s of arrivals: one pulse per origin at 10 s; nothing more until the clock moves on
    pulses = driver.take_output("flights-origin-pulse")
    assert sorted(r.key for r in pulses) == sorted(flights)
    assert all(r.value["until_ms"] == START_MS + PULSE_MS for r in pulses)
    driver.advance_processing_time(PULSE_MS)
    pulses += driver.take_output("flights-origin-pulse")
    assert len(pulses) == 2 * len(flights)
    for origin in flights:
        mine = [r.value for r in pulses if r.key == origin]
        assert sum(p["flights"] for p in mine) == flights[origin]
        assert sum(p["delayed"] for p in mine) == delayed[origin]
        assert all(p["until_ms"] - p["since_ms"] == PULSE_MS for p in mine)
    driver.advance_processing_time(PULSE_MS)  # no flight since: no pulse
    assert driver.take_output("flights-origin-pulse") == []
