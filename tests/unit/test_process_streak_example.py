"""examples/flights-delay-streak.yaml on the broker-free driver, against the plain-Python truth
(tests/streak_truth.py), on the flights of a sample of aircraft spread over 3 partitions."""

from __future__ import annotations

from pathlib import Path

import orjson
from streak_truth import streak_truth

from kstream.testing.driver import PipelineDriver
from kstream.tools.datasets import flights_records

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flights-delay-streak.yaml"


def _canon(rows: list[dict]) -> list[bytes]:
    return sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in rows)


def test_streak_example_matches_truth_on_a_sample_of_aircraft() -> None:
    driver = PipelineDriver.from_yaml(EXAMPLE, partitions=3, keep_repartition=False)
    tails: set[str] = set()
    for n, (key, value, ts) in enumerate(flights_records()):
        tail = value.get("tailnum")
        if tail is None or sum(tail.encode()) % 16:  # about one aircraft in 16
            continue
        tails.add(tail)
        driver.send("flights", value, key=key, timestamp_ms=ts, partition=n % 3)
    driver.end_of_input()
    alerts, closed = streak_truth(frozenset(tails))
    got_alerts = driver.output("delay-streak-alerts")
    got_closed = driver.output("delay-streak-closed")
    assert len(alerts) > 15 and len(closed) > 10  # the sample exercises both outputs
    assert _canon([r.value for r in got_alerts]) == _canon(alerts)
    assert _canon([r.value for r in got_closed]) == _canon(closed)
    assert all(r.key == r.value["tailnum"] for r in got_alerts + got_closed)
    assert all(r.timestamp_ms == r.value["alert_dep"] for r in got_alerts)
    assert all(r.timestamp_ms == r.value["closed_at"] for r in got_closed)
