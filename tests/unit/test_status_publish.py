"""What a process publishes to ``<group>.status`` (kstream.runtime.status_publish): a record
made from a snapshot of real tasks run by the broker-free driver, with rates against the
previous record, every node of the job and its kind, and the JSON that readers parse back."""

from __future__ import annotations

from dataclasses import replace

import pytest

from kstream.errors import KStreamError
from kstream.graph.plan import build_plan
from kstream.pipeline.load import load_pipeline
from kstream.runtime.metrics import snapshot_of
from kstream.runtime.status_publish import TaskExtras, node_kinds, status_record
from kstream.runtime.status_record import ProcessStatus
from kstream.testing.driver import PipelineDriver

PIPELINE = """\
pipeline: s
sources:
  - {id: events, topic: events, event_time: t}
operators:
  - {id: big, filter: "n > 1"}
  - id: counts
    window: {type: tumbling, size: 10, aggregate: {n: count}}
sinks:
  - {topic: out}
"""
BASE = ProcessStatus("s", "s", "host-a", 41, 1_000, 0, 2_000)


def test_a_record_has_each_task_and_node_with_rates_against_the_previous_one() -> None:
    d = PipelineDriver.from_yaml(PIPELINE, partitions=2)
    kinds = node_kinds(d.plan)
    for t in (1, 2, 3):
        d.send("events", {"t": t, "n": 2}, partition=0)
    first = snapshot_of(d._all_tasks, {}, {("events", 0): 5}, 1, 0, 100)
    extras = {"events:0": TaskExtras(4096, 7, 1_500)}
    one = status_record(BASE, replace(first, time_ms=10_000), None, kinds, extras)
    for t in (12, 13, 14, 15, 16, 17):
        d.send("events", {"t": t, "n": 2}, partition=0)
    second = snapshot_of(d._all_tasks, {}, {("events", 0): 10}, 2, 0, 100)
    two = status_record(BASE, replace(second, time_ms=12_000), one, kinds, extras)

    task = {t.task: t for t in two.tasks}["events:0"]
    assert (task.records_in, task.in_per_s, task.lag) == (9, 3.0, 1)
    assert (task.state_bytes, task.checkpoint_id, task.checkpoint_ms) == (4096, 7, 1_500)
    assert task.watermark_ms == 16
    nodes = {n.node: n for n in two.nodes}
    assert set(nodes) == {"events", "big", "counts", "sink:out"}
    assert [nodes[n].kind for n in ("events", "big", "counts", "sink:out")] == [
        "source",
        "filter",
        "window",
        "sink",
    ]
    assert nodes["big"].records_in == 9 and nodes["big"].in_per_s == 3.0
    assert nodes["sink:out"].records_out == 1  # [0, 10) fired at watermark 16
    assert two.checkpoints == 2 and two.time_ms == 12_000
    assert ProcessStatus.from_json(two.to_json()) == two


def test_every_node_of_a_graph_has_its_kind() -> None:
    plan = build_plan(load_pipeline("examples/flights-graph.yaml"))
    kinds = node_kinds(plan)
    assert kinds["ewr"] == "source"
    assert kinds["all-flights"] == "union"
    assert kinds["routed"] == "branch"
    assert kinds["delay-hours"] == "flat_map"
    assert kinds["by-carrier"] == "key_by"
    assert kinds["on-time-daily"] == "window"
    assert kinds["sink:flights-delayed-late"] == "sink"


def test_a_record_that_is_not_json_is_refused() -> None:
    with pytest.raises(KStreamError, match="not a kstream status record"):
        ProcessStatus.from_json(b"{oops")
    assert not BASE.is_stale(BASE.time_ms + 6_000)
    assert BASE.is_stale(BASE.time_ms + 6_001)
