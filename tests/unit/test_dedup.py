"""The built-in ``dedup`` operator on the driver: a key's first record per interval of event
time, duplicates either side of the kept record, late records on port ``late``, the state's
expiry with the watermark, checkpoint restore; and its validation errors with file:line."""

from __future__ import annotations

from typing import Any

import pytest

from kstream.errors import ConfigError
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import ProcessSpec
from kstream.testing import PipelineDriver

PIPELINE = """\
pipeline: dd
sources:
  - {topic: events, event_time: {field: ts}}
operators:
  - key_by: "[k, day]"
  - id: once
    dedup: {within: 10s}
sinks:
  - {topic: out, from: once}
  - {topic: late, from: once.late}
"""


def send(d: PipelineDriver, k: str, ts: int, partition: int = 0) -> None:
    d.send("events", {"k": k, "day": 1, "ts": ts}, partition=partition)


def kept(d: PipelineDriver, sink: str = "out") -> list[tuple[Any, int]]:
    return [(r.key, r.value["ts"]) for r in d.output(sink)]


def test_the_first_record_of_a_key_per_interval_is_kept() -> None:
    d = PipelineDriver.from_yaml(PIPELINE)
    for k, ts in [("a", 1_000), ("a", 5_000), ("b", 2_000), ("a", 10_999), ("a", 11_000)]:
        send(d, k, ts)
    send(d, "a", 20_000)  # 9 s after the last kept (11_000): a duplicate
    send(d, "a", 21_000)
    assert kept(d) == [
        ('["a",1]', 1_000),
        ('["b",1]', 2_000),
        ('["a",1]', 11_000),
        ('["a",1]', 21_000),
    ]


def test_an_out_of_order_record_near_the_kept_one_is_a_duplicate() -> None:
    d = PipelineDriver.from_yaml(PIPELINE)
    send(d, "a", 30_000)
    send(d, "a", 20_001)  # 9.999 s before: a duplicate
    send(d, "a", 20_000)  # 10 s before: kept, and the kept time stays 30_000
    send(d, "a", 39_999)
    assert kept(d) == [('["a",1]', 30_000), ('["a",1]', 20_000)]


def test_records_older_than_watermark_minus_within_go_to_late() -> None:
    d = PipelineDriver.from_yaml(PIPELINE)
    send(d, "a", 1_000)
    d.watermark("events", 20_000)
    send(d, "b", 10_000)  # 10_000 + 10 s <= 20_000: late
    send(d, "a", 10_001)  # not late, and a's state has expired (1_000 + 10 s <= watermark)
    assert kept(d, "late") == [('["b",1]', 10_000)]
    assert kept(d) == [('["a",1]', 1_000), ('["a",1]', 10_001)]


def test_the_kept_state_expires_with_the_watermark_and_survives_a_restore() -> None:
    d = PipelineDriver.from_yaml(PIPELINE, partitions=2)
    for i, k in enumerate("abcd"):
        send(d, k, 1_000 + i, partition=i % 2)
    stores, marks = {}, {}
    for task in {id(t): t for t in d.tasks.values()}.values():
        key = (task.stage.id, task.partition)
        changes = task.state_changes()
        stores[key] = {n: [(a, b) for a, b in v if b is not None] for n, v in changes.items()}
        marks[key] = task.watermark
    assert sum(len(s.get("op.once", [])) for s in stores.values()) == 8  # 4 values + 4 stamps
    again = PipelineDriver.from_yaml(PIPELINE, partitions=2)
    for task in {id(t): t for t in again.tasks.values()}.values():
        key = (task.stage.id, task.partition)
        task.executor.restore(stores[key], marks[key])
    for i, k in enumerate("abcd"):
        send(again, k, 5_000, partition=i % 2)
    assert kept(again) == []
    nodes = [
        t.executor.nodes["once"]
        for t in {id(t): t for t in again.tasks.values()}.values()
        if "once" in t.executor.nodes
    ]
    assert sum(n.state.keys() for n in nodes) == 4
    again.watermark("events", 11_003, partition=0)
    again.watermark("events", 11_003, partition=1)
    assert sum(n.state.keys() for n in nodes) == 0  # swept: every stamp + 10 s <= watermark


def test_dedup_loads_as_a_process_node_with_an_event_time_ttl() -> None:
    op = load_pipeline_text(PIPELINE).operators[-1]
    assert isinstance(op, ProcessSpec)
    assert op.dedup_within_ms == 10_000 and op.ttl == (("kept", 10_000, "event"),)
    assert op.ports == ("late",)


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("{}", 7, "dedup needs 'within: DURATION'"),
        ("{within: 10 minutes}", 7, "invalid duration"),
        ("{within: 0}", 7, "duration must be positive"),
        ("{within: 1h, key: k}", 7, "put '- key_by: k' before this dedup and remove 'key:'"),
        ("{within: 1h, keep: last}", 7, "unknown key 'keep'"),
    ],
)
def test_dedup_errors_name_the_line(body: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_pipeline_text(PIPELINE.replace("{within: 10s}", body))
    text = str(info.value)
    assert message in text and f"<string>:{line}:" in text, text


def test_dedup_needs_an_id_and_a_key_by() -> None:
    with pytest.raises(ConfigError, match="needs an 'id'"):
        load_pipeline_text(PIPELINE.replace("  - id: once\n    dedup", "  - dedup"))
    unkeyed = PIPELINE.replace('  - key_by: "[k, day]"\n', "")
    with pytest.raises(ConfigError, match="is not keyed"):
        load_pipeline_text(unkeyed)
