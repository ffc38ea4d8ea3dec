"""Prometheus metrics of a process (kstream.runtime.metrics; docs/metrics.md): a snapshot of
real tasks run by the broker-free driver, rendered in Prometheus' text format as a scrape sees
it, and the port error users get."""

from __future__ import annotations

import socket

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kstream.errors import UsageError
from kstream.runtime.metrics import MetricsExporter, snapshot_of
from kstream.testing.driver import PipelineDriver

PIPELINE = """\
pipeline: m
sources:
  - {topic: events, event_time: t}
operators:
  - id: counts
    window: {type: tumbling, size: 10, aggregate: {n: count}}
sinks:
  - {topic: out}
"""


def samples(exporter: MetricsExporter) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``(sample name, sorted labels) -> value`` of one scrape."""
    text = generate_latest(exporter.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_scrape_shows_each_tasks_counters_watermark_and_lag() -> None:
    d = PipelineDriver.from_yaml(PIPELINE, partitions=2)
    for t in (1, 5, 12, 25):
        d.send("events", {"t": t}, partition=0)
    d.send("events", {"t": 3}, partition=1)
    tasks = d._all_tasks
    exporter = MetricsExporter("m", "m-group")
    released = {"in": 7, "out": 2, "late": 0, "skipped": 0, "dead_letter": 0}
    ends = {("events", 0): 10, ("events", 1): 1}
    exporter.publish(snapshot_of(tasks, released, ends, 3, 1, 4096))
    exporter.checkpoint_seconds.observe(0.02)
    got = samples(exporter)
    base = (("group", "m-group"), ("pipeline", "m"))

    def labels(**extra: str) -> tuple[tuple[str, str], ...]:
        return tuple(sorted((*base, *extra.items())))

    assert got[("kstream_records_in_total", labels(task="events:0"))] == 4
    assert got[("kstream_records_in_total", labels(task="events:1"))] == 1
    assert got[("kstream_records_in_total", labels(task="released"))] == 7
    assert got[("kstream_records_out_total", labels(task="events:0"))] == 2  # [0, 10), [10, 20)
    assert got[("kstream_watermark_seconds", labels(task="events:0"))] == pytest.approx(0.024)
    assert got[("kstream_consumer_lag_records", labels(topic="events", partition="0"))] == 6
    assert got[("kstream_consumer_lag_records", labels(topic="events", partition="1"))] == 0
    assert got[("kstream_checkpoints_total", labels())] == 3
    assert got[("kstream_checkpoint_failures_total", labels())] == 1
    assert got[("kstream_state_cache_bytes", labels())] == 4096
    assert got[("kstream_checkpoint_duration_seconds_count", labels())] == 1
    assert got[("kstream_checkpoint_duration_seconds_bucket", labels(le="0.025"))] == 1


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=rf"--metrics-port {port}: cannot serve metrics"):
            MetricsExporter("m", "m").start(port, "127.0.0.1")
