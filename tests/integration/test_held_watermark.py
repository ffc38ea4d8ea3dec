"""The README tour without ``--bounded`` (issue 12): the flights loaded into 4 partitions keyed by
origin leave one partition empty (3 origins).

- Without ``idle_timeout`` the unbounded flights-hourly job emits nothing, and ``kstream run``
  says why: the window stage's watermark is held at -inf by the source task of the empty
  partition, logged once per episode, with the ``idle_timeout`` hint.
- With the examples' ``idle_timeout`` the same unbounded job emits its hourly windows, each equal
  to the truth.

Both wait on the job's log or output, bounded by timeouts; no sleep decides an outcome.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from clikit import LoggedRun, hourly_pipeline_copy, unique
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from flights_truth import hourly_truth
from flightskit import RESULT_FIELDS, produce_flights
from ruamel.yaml import YAML

from kstream.io.partitioner import partition_for

pytestmark = pytest.mark.integration

#: seconds the job may take to hold back long enough, or to emit its first windows
WAIT_S = 240
WARNING = "stage {stage}: watermark held at -inf for"


@pytest.fixture(scope="module")
def flights_4p(broker: str) -> str:
    return produce_flights(broker, 4, "held")


def empty_partition() -> int:
    """The one partition of 4 no origin is keyed to."""
    (empty,) = set(range(4)) - {partition_for(o.encode(), 4) for o in ("EWR", "JFK", "LGA")}
    return empty


def without_idle_timeout(path: Path) -> None:
    yaml = YAML()
    doc = yaml.load(path)
    del doc["sources"][0]["watermark"]["idle_timeout"]
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(doc, fh)


def test_a_partition_without_records_is_named_and_idle_timeout_suggested(
    broker: str, flights_4p: str, tmp_path: Path
) -> None:
    path, _name, _sink = hourly_pipeline_copy(tmp_path, flights_4p, "held")
    without_idle_timeout(path)
    empty = empty_partition()
    job = LoggedRun(
        tmp_path / "job.log", str(path), "--state-dir", str(tmp_path / "state"),
        "--bootstrap-servers", broker, "--held-watermark-warning", "10",
    )  # fmt: skip
    try:
        pattern = (
            rf"WARNING kstream\.runtime\.watermark: stage by-origin: watermark held at -inf for "
            rf"\d+ s by task {re.escape(flights_4p)}:{empty} \(topic {re.escape(flights_4p)} "
            rf"partition {empty}: no records for \d+ s\) while others advanced to "
            r"2013-\d\d-\d\d \d\d:\d\d:\d\d; a partition that gets no records needs "
            r"`idle_timeout` on its source watermark, see docs/time-and-windows\.md"
        )
        assert job.wait_for(pattern, timeout_s=WAIT_S), job.text()[-4000:]
        # the source stage (case a) is held by the same task
        assert job.wait_for(WARNING.format(stage=re.escape(flights_4p)), timeout_s=30)
        # once per episode: 3 more status lines (one every 5 s) and no second warning
        status = r"s\] running: in=\d+"
        assert job.wait_for(status, job.count(status) + 3, 60), job.text()[-4000:]
        assert job.count(WARNING.format(stage="by-origin")) == 1, job.text()[-4000:]
    finally:
        job.kill()


def sink_windows(
    broker: str, topic: str, at_least: int, timeout_s: float
) -> list[tuple[tuple[str, int], dict[str, Any]]]:
    """``((origin, window_start), results)`` of the sink's committed records, read until at
    least ``at_least`` arrived or ``timeout_s`` passed."""
    consumer = Consumer({
        "bootstrap.servers": broker, "group.id": unique("held-reader"),
        "isolation.level": "read_committed", "enable.auto.commit": False,
    })  # fmt: skip
    out: list[tuple[tuple[str, int], dict[str, Any]]] = []
    try:
        deadline = time.monotonic() + timeout_s
        partitions: list[int] = []
        while not partitions and time.monotonic() < deadline:  # the job creates the sink
            meta = consumer.list_topics(topic, timeout=5).topics[topic]
            partitions = [] if meta.error else sorted(meta.partitions)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        while len(out) < at_least and time.monotonic() < deadline:
            for msg in consumer.consume(1_000, 1.0):
                if msg.error() is None and msg.value():
                    v = orjson.loads(msg.value())
                    out.append(((v["key"], v["window_start"]), {f: v[f] for f in RESULT_FIELDS}))
    finally:
        consumer.close()
    return out


def test_with_the_examples_idle_timeout_the_unbounded_job_emits_results(
    broker: str, flights_4p: str, tmp_path: Path
) -> None:
    path, _name, sink = hourly_pipeline_copy(tmp_path, flights_4p, "idle")
    assert "idle_timeout: 10s" in path.read_text()
    job = LoggedRun(
        tmp_path / "job.log", str(path), "--state-dir", str(tmp_path / "state"),
        "--bootstrap-servers", broker,
    )  # fmt: skip
    try:
        got = sink_windows(broker, sink, 1_000, WAIT_S)
        assert len(got) >= 1_000, f"{len(got)} windows; log:\n{job.text()[-4000:]}"
        truth = hourly_truth()
        wrong = [(w, v, truth.get(w)) for w, v in got if truth.get(w) != v]
        assert not wrong, wrong[:5]
        assert job.proc.poll() is None, job.text()[-4000:]  # still running: unbounded
        assert job.count(WARNING.format(stage="by-origin")) == 0, job.text()[-4000:]
    finally:
        job.kill()
