"""Unions of inputs that need not be co-partitioned (kstream.pipeline.rebalance): the planner
repartitions the inputs reading another source topic, keeping their keys, when only stateless
operators and sinks follow the union in its stage; the stage then reads topics of one partition
count."""

from __future__ import annotations

import textwrap
from collections import Counter

from kstream.graph.plan import build_plan
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import KeyBySpec, PipelineSpec, PortRef, UnionSpec
from kstream.runtime.topology import wanted_topics
from kstream.testing import PipelineDriver

HEAD = """\
pipeline: u
sources:
  - {topic: flights, event_time: ts}
  - {topic: weather, event_time: ts}
"""


def load(body: str) -> PipelineSpec:
    return load_pipeline_text(HEAD + textwrap.dedent(body), "u.yaml")


def node(spec: PipelineSpec, node_id: str) -> object:
    return next(op for op in spec.operators if op.id == node_id)


def test_a_union_of_two_sources_repartitions_the_other_source_keeping_keys() -> None:
    spec = load(
        """\
        operators:
          - {id: slow, from: flights, filter: "delay > 10"}
          - {id: both, union: [slow, weather]}
        sinks:
          - {topic: out, from: both}
        """
    )
    inserted = node(spec, "both.input1")
    assert isinstance(inserted, KeyBySpec) and inserted.keep_key
    assert inserted.inputs == (PortRef("weather"),)
    union = node(spec, "both")
    assert isinstance(union, UnionSpec)
    assert union.inputs == (PortRef("slow"), PortRef("both.input1"))
    plan = build_plan(spec)
    stage = plan.stage_by_id("flights")
    assert stage.input_topics == ["flights", "u.both.input1.repartition"]
    counts = {t.name: t.partitions for t in wanted_topics(plan, {"flights": 4, "weather": 1})}
    assert counts["u.both.input1.repartition"] == 4  # the union's stage input count


def test_no_repartition_for_one_source_or_a_key_by_or_keyed_state_after_the_union() -> None:
    one = load(
        """\
        operators:
          - {id: routed, from: flights, branch: {odd: "x % 2 == 1", default: even}}
          - {id: both, union: [routed.odd, routed.even]}
        sinks:
          - {topic: out}
          - {topic: weather-copy, from: weather}
        """
    )
    assert [op.id for op in one.operators] == ["routed", "both"]
    keyed = load(
        """\
        operators:
          - {id: both, union: [flights, weather]}
          - {id: hourly, window: {type: tumbling, size: 1h, aggregate: {n: count}}}
        sinks:
          - {topic: out}
        """
    )
    assert [op.id for op in keyed.operators] == ["both", "hourly"]  # co-partitioned, as before
    rekeyed = load(
        """\
        operators:
          - {id: both, union: [flights, weather]}
          - {id: by-x, key_by: x}
          - {id: hourly, window: {type: tumbling, size: 1h, aggregate: {n: count}}}
        sinks:
          - {topic: out}
        """
    )
    assert [op.id for op in rekeyed.operators] == ["both", "by-x", "hourly"]


def test_every_record_keeps_its_key_value_and_time_across_partition_counts() -> None:
    spec = load(
        """\
        operators:
          - {id: both, union: [flights, weather]}
        sinks:
          - {topic: out, from: both}
        """
    )
    driver = PipelineDriver(spec, {"flights": 4, "weather": 1})
    sent = []
    for i in range(20):
        topic = "flights" if i % 3 else "weather"
        record = {"i": i, "ts": 1_000 * i}
        driver.send(topic, record, key=f"k{i % 5}", partition=i % 4 if topic == "flights" else 0)
        sent.append((f"k{i % 5}", i, 1_000 * i))
    driver.end_of_input()
    got = [(r.key, r.value["i"], r.timestamp_ms) for r in driver.topic("out")]
    assert Counter(got) == Counter(sent)


def test_the_union_watermark_is_the_min_of_its_inputs() -> None:
    """The union's task takes the min of the source's watermark and the repartitioned
    source's (Flink: a union's watermark is the min of its inputs')."""
    spec = load(
        """\
        operators:
          - {id: both, union: [flights, weather]}
        sinks:
          - {topic: out, from: both}
        """
    )
    driver = PipelineDriver(spec, {"flights": 2, "weather": 1})
    hour = 3_600_000
    for p in range(2):
        driver.send("flights", {"k": "a", "ts": 2 * hour}, partition=p)
    driver.send("weather", {"k": "a", "ts": hour})
    union_tasks = [driver.tasks[("flights", p)] for p in range(2)]
    assert [t.watermark for t in union_tasks] == [hour - 1] * 2  # weather's (bound 0, - 1)
    driver.send("weather", {"k": "a", "ts": 3 * hour})
    assert [t.watermark for t in union_tasks] == [2 * hour - 1] * 2  # now flights'
