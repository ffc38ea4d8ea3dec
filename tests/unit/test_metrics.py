"""Prometheus metrics of a process (kstream.runtime.metrics; docs/metrics.md): a snapshot of
real tasks run by the broker-free driver, rendered in Prometheus' text format as a scrape sees
it, and the port error users get."""

from __future__ import annotations

import socket
from functools import partial
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from kstream.errors import UsageError
from kstream.runtime.metrics import MetricsExporter, snapshot_of
from kstream.state.store import TaskStore
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


def labeled(group: str, pipeline: str, **extra: str) -> tuple[tuple[str, str], ...]:
    """A sample's labels as :func:`samples` keys them: ``group``, ``pipeline`` and ``extra``."""
    return tuple(sorted({"group": group, "pipeline": pipeline, **extra}.items()))


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
    exporter.checkpoint_bytes.observe(5000)
    got = samples(exporter)
    labels = partial(labeled, "m-group", "m")

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
    assert got[("kstream_checkpoint_size_bytes_bucket", labels(le="4000.0"))] == 0
    assert got[("kstream_checkpoint_size_bytes_bucket", labels(le="16000.0"))] == 1


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=rf"--metrics-port {port}: cannot serve metrics"):
            MetricsExporter("m", "m").start(port, "127.0.0.1")


GRAPH = """\
pipeline: g
sources:
  - {id: a, topic: a-events, event_time: t}
  - {id: b, topic: b-events, event_time: t}
operators:
  - {id: both, union: [a, b]}
  - {id: big, filter: "n > 1"}
  - id: counts
    window: {type: tumbling, size: 10, aggregate: {n: count}}
  - {id: by-n, from: big, key_by: n}
sinks:
  - {topic: out, from: counts}
  - {topic: late-out, from: counts.late}
  - {topic: regrouped, from: by-n}
"""


def test_each_node_is_counted_on_its_edges_with_its_watermark_and_late_action() -> None:
    #   a ─┐
    #      ├─► both ─► big ─► counts ─► out          (window [0, 10) fires at watermark 9)
    #   b ─┘            │        └── late ─► late-out (t=2 after watermark 24: late)
    #                   └─► by-n ═► regrouped
    d = PipelineDriver.from_yaml(GRAPH)
    for t, n in ((1, 2), (5, 1), (12, 3)):
        d.send("a-events", {"t": t, "n": n})
    d.send("b-events", {"t": 25, "n": 5})
    d.send("b-events", {"t": 26, "n": 5})
    d.send("a-events", {"t": 30, "n": 5})
    d.send("a-events", {"t": 2, "n": 7})  # watermark 24 by now: late for [0, 10)
    snap = snapshot_of(d._all_tasks, {}, {}, 0, 0, 0, {"counts": (4, 1, 2)})
    nodes: dict[str, tuple[int, ...]] = {}
    for (task, node), counts in snap.nodes.items():  # summed over both stages' tasks
        if task != "released":
            before = nodes.get(node, (0, 0, 0))
            nodes[node] = tuple(a + b for a, b in zip(before, counts, strict=True))
    assert nodes["a"] == (5, 5, 0)
    assert nodes["b"] == (2, 2, 0)
    assert nodes["both"] == (7, 7, 0)
    assert nodes["big"] == (7, 6, 0)  # n = 1 filtered out; 6 reach counts and by-n each
    assert nodes["counts"][0] == 6 and nodes["counts"][2] == 1
    assert nodes["by-n"] == (6, 6, 0)  # 6 written to its repartition topic, 6 read from it
    assert snap.counters["by-n:0"]["in"] == 0  # records_in: source records only
    assert snap.counters["by-n:0"]["in_repartition"] == 6
    assert nodes["sink:regrouped"] == (6, 6, 0)
    assert nodes["sink:late-out"] == (1, 1, 0)
    assert nodes["sink:out"][0] == nodes["sink:out"][1] == 2  # [0, 10) and [10, 20)
    assert nodes["counts"][1] == 3  # out on every port: 2 results, 1 late
    assert snap.nodes[("released", "counts")] == (4, 1, 2)
    assert snap.late_actions == {"counts": "side_output"}
    assert snap.sink_times_ms[("a:0", "sink:late-out")] == 2

    exporter = MetricsExporter("g", "g")
    exporter.publish(snap)
    got = samples(exporter)
    labels = partial(labeled, "g", "g")

    task = "a:0"
    assert got[("kstream_node_records_in_total", labels(node="big", task=task))] == 7
    assert got[("kstream_node_records_out_total", labels(node="both", task=task))] == 7
    late = labels(node="counts", task=task, action="side_output")
    assert got[("kstream_node_late_records_total", late)] == 1
    watermark = got[("kstream_node_watermark_seconds", labels(node="counts", task=task))]
    assert watermark == pytest.approx(snap.node_watermarks_ms[(task, "counts")] / 1000)
    lag = got[("kstream_node_watermark_lag_seconds", labels(node="counts", task=task))]
    assert lag == pytest.approx((snap.time_ms - snap.node_watermarks_ms[(task, "counts")]) / 1000)


def test_timers_store_sizes_and_the_busy_ratio_are_exported() -> None:
    d = PipelineDriver.from_yaml(PIPELINE)
    for t in (1, 12, 25):  # watermark 24: [0, 10) and [10, 20) fired
        d.send("events", {"t": t})
    stores = {("events:0", "op.counts"): (3, 4096)}
    snap = snapshot_of(d._all_tasks, {}, {}, 0, 0, 0, None, stores, 0.25)
    assert snap.timers_fired == {("events:0", "counts"): 2}
    exporter = MetricsExporter("m", "m")
    exporter.publish(snap)
    got = samples(exporter)
    labels = partial(labeled, "m", "m")

    fired = labels(node="counts", task="events:0")
    assert got[("kstream_node_timers_fired_total", fired)] == 2
    assert got[("kstream_state_keys", labels(task="events:0", store="op.counts"))] == 3
    assert got[("kstream_state_bytes", labels(task="events:0", store="op.counts"))] == 4096
    assert got[("kstream_busy_ratio", labels())] == 0.25


def test_a_stores_size_comes_from_rocksdb(tmp_path: Path) -> None:
    store = TaskStore(tmp_path / "task", ["op.a", "op.b"])
    try:
        store.apply({"op.a": [(f"k{i}".encode(), b"v" * 100) for i in range(500)]}, {"n": 1})
        sizes = store.store_sizes()
        assert set(sizes) == {"op.a", "op.b"}  # the metadata's column family left out
        assert sizes["op.a"][0] == 500 and sizes["op.a"][1] > 500 * 100
        assert sizes["op.b"][0] == 0
    finally:
        store.close()
