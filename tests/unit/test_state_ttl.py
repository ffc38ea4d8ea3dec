"""Idle state retention (``state_ttl``; Flink SQL's ``table.exec.state.ttl``) of the global
window: a key idle for the ttl in processing time restarts its aggregate, a key written within
it keeps it, expired entries leave the store and the checkpoint, and the expiry index survives
a restore (also under a changed ttl)."""

from __future__ import annotations

from typing import Any

import pytest

from kstream.errors import ConfigError
from kstream.graph.plan import TTL_STORE, build_plan
from kstream.pipeline.load import load_pipeline_text
from kstream.testing import PipelineDriver

PIPELINE = """\
pipeline: ttl
sources:
  - {topic: events, event_time: {field: ts}}
operators:
  - key_by: k
  - id: counts
    window: {type: global, emit: changelog, state_ttl: 10s, aggregate: {n: count}}
sinks:
  - {topic: out, from: counts}
"""


def send(d: PipelineDriver, k: str, ts: int = 1_000, partition: int = 0) -> None:
    d.send("events", {"k": k, "ts": ts}, partition=partition)


def rows(d: PipelineDriver) -> list[tuple[Any, int, str]]:
    return [(r.key, r.value["n"], r.value["op"]) for r in d.take_output("out")]


def nodes(d: PipelineDriver, node: str = "counts") -> list[Any]:
    tasks = {id(t): t for t in d.tasks.values()}.values()
    return [t.executor.nodes[node] for t in tasks if node in t.executor.nodes]


def held(d: PipelineDriver) -> int:
    return sum(len(n.window.store) for n in nodes(d))


def test_a_key_idle_for_the_ttl_restarts_its_count() -> None:
    d = PipelineDriver.from_yaml(PIPELINE, start_time_ms=1_000_000)
    send(d, "a")
    send(d, "a")
    d.advance_processing_time(9_999)  # written at 1_000_000: alive until 1_010_000
    send(d, "a")
    assert rows(d) == [
        ("a", 1, "+I"),
        ("a", 1, "-U"),
        ("a", 2, "+U"),
        ("a", 2, "-U"),
        ("a", 3, "+U"),
    ]
    d.advance_processing_time(10_000)  # 10 s after the last write: expired, swept
    assert held(d) == 0
    send(d, "a")
    assert rows(d) == [("a", 1, "+I")]  # a new aggregate: a first result again


def test_a_key_written_within_the_ttl_keeps_its_state_and_others_expire() -> None:
    d = PipelineDriver.from_yaml(PIPELINE, start_time_ms=0)
    send(d, "a")
    send(d, "b")
    for _ in range(5):  # a is written every 6 s: never idle for 10 s
        d.advance_processing_time(6_000)
        send(d, "a")
    assert held(d) == 1  # b expired at 10 s
    send(d, "b")
    out = rows(d)
    assert out[-1] == ("b", 1, "+I")
    assert out[-3:-1] == [("a", 5, "-U"), ("a", 6, "+U")]


def test_an_expired_entry_is_not_read_before_the_sweep() -> None:
    d = PipelineDriver.from_yaml(PIPELINE, start_time_ms=0)
    send(d, "a")
    d.now_ms = 10_000  # the clock moved, no tick ran the sweep yet
    send(d, "a")
    assert rows(d)[-1] == ("a", 1, "+I")


def test_an_unchanged_result_is_emitted_again_under_a_ttl() -> None:
    body = PIPELINE.replace("n: count", "top: {max: v}")
    d = PipelineDriver.from_yaml(body)
    d.send("events", {"k": "a", "ts": 1, "v": 5})
    d.send("events", {"k": "a", "ts": 2, "v": 3})  # max unchanged: Flink still emits -U/+U
    out = [(r.value["top"], r.value["op"]) for r in d.output("out")]
    assert out == [(5, "+I"), (5, "-U"), (5, "+U")]
    plain = PipelineDriver.from_yaml(body.replace(", state_ttl: 10s", ""))
    plain.send("events", {"k": "a", "ts": 1, "v": 5})
    plain.send("events", {"k": "a", "ts": 2, "v": 3})
    assert [r.value["op"] for r in plain.output("out")] == ["+I"]


def checkpoint(d: PipelineDriver) -> tuple[dict[Any, Any], dict[Any, int]]:
    """Each task's store entries (the changes since the start: nothing was committed) and
    watermark."""
    stores, marks = {}, {}
    for task in {id(t): t for t in d.tasks.values()}.values():
        key = (task.stage.id, task.partition)
        changes = task.state_changes()
        stores[key] = {n: [(a, b) for a, b in v if b is not None] for n, v in changes.items()}
        marks[key] = task.watermark
    return stores, marks


def restored(body: str, saved: tuple[dict[Any, Any], dict[Any, int]], now: int) -> PipelineDriver:
    stores, marks = saved
    again = PipelineDriver.from_yaml(body, partitions=2, start_time_ms=now)
    for task in {id(t): t for t in again.tasks.values()}.values():
        key = (task.stage.id, task.partition)
        task.executor.restore(stores[key], marks[key])
    return again


def test_the_expiry_index_survives_a_checkpoint_and_restore() -> None:
    d = PipelineDriver.from_yaml(PIPELINE, partitions=2, start_time_ms=0)
    for i, k in enumerate("abcd"):
        send(d, k, partition=i % 2)
    d.advance_processing_time(5_000)
    send(d, "a")  # a: stamped at 5 s, the others at 0 s
    saved = checkpoint(d)
    assert sum(len(s.get("op.counts.ttl", [])) for s in saved[0].values()) >= 4
    again = restored(PIPELINE, saved, now=8_000)
    assert held(again) == 4
    again.advance_processing_time(2_000)  # 10 s: b, c, d expire (stamped at 0)
    assert held(again) == 1
    send(again, "b")
    send(again, "a")
    assert rows(again) == [("b", 1, "+I"), ("a", 2, "-U"), ("a", 3, "+U")]
    checkpoint(again)  # commits c's and d's deletes, and a's and b's new entries
    again.advance_processing_time(10_000)  # every key idle for 10 s
    assert held(again) == 0
    deleted = [
        value
        for task in {id(t): t for t in again.tasks.values()}.values()
        for value in dict(task.state_changes().get("op.counts", [])).values()
    ]
    assert deleted == [None, None]  # a and b: the sweep's deletes reach the checkpoint


def test_a_restore_under_a_new_ttl_reindexes_and_stamps_unstamped_state() -> None:
    plain = PIPELINE.replace(", state_ttl: 10s", "")
    d = PipelineDriver.from_yaml(plain, partitions=2, start_time_ms=0)
    for i, k in enumerate("ab"):
        send(d, k, partition=i % 2)
    again = restored(PIPELINE, checkpoint(d), now=50_000)  # stamped at the restore
    again.advance_processing_time(9_999)
    assert held(again) == 2
    again.advance_processing_time(1)
    assert held(again) == 0


def test_state_ttl_adds_a_ttl_store_and_is_refused_where_flink_has_none() -> None:
    plan = build_plan(load_pipeline_text(PIPELINE))
    assert [r.store for r in plan.stages[-1].stores if r.node == "counts"] == ["", TTL_STORE]
    body = PIPELINE.replace("type: global,", "type: tumbling, size: 1m,")
    with pytest.raises(ConfigError, match="state_ttl"):
        load_pipeline_text(body)
