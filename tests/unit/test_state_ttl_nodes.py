"""Idle state retention (``state_ttl``) of ``top_n`` and interval joins, in processing time
(Flink SQL's ``table.exec.state.ttl`` on its rank functions and regular joins)."""

from __future__ import annotations

from typing import Any

import pytest

from kstream.errors import ConfigError
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import ProcessSpec
from kstream.testing import PipelineDriver

TOP_N = """\
pipeline: ranks
sources:
  - {topic: scores, event_time: {field: ts}}
operators:
  - key_by: k
  - id: best
    top_n: {n: 2, row_key: row, order: [score DESC], state_ttl: 10s}
sinks:
  - {topic: out, from: best}
"""


def score(d: PipelineDriver, row: str, value: int) -> None:
    d.send("scores", {"k": "a", "row": row, "score": value, "ts": 1})


def ranks(d: PipelineDriver) -> list[tuple[int, str, int]]:
    return [(r.value["rn"], r.value["row"], r.value["score"]) for r in d.take_output("out")]


def test_top_n_declares_processing_time_ttls_on_its_states() -> None:
    op = load_pipeline_text(TOP_N).operators[-1]
    assert isinstance(op, ProcessSpec)
    assert op.ttl == (("rows", 10_000, "processing"), ("emitted", 10_000, "processing"))


def test_top_n_forgets_rows_idle_for_the_ttl() -> None:
    d = PipelineDriver.from_yaml(TOP_N, start_time_ms=0)
    score(d, "x", 5)
    score(d, "y", 3)
    assert ranks(d) == [(1, "x", 5), (2, "y", 3)]
    d.advance_processing_time(6_000)
    score(d, "x", 5)  # x rewritten: alive until 16 s; y until 10 s
    assert ranks(d) == []
    d.advance_processing_time(4_000)
    score(d, "z", 1)  # y forgotten: z ranks second
    assert ranks(d) == [(2, "z", 1)]
    d.advance_processing_time(10_000)  # the whole key idle for 10 s
    score(d, "w", 0)
    assert ranks(d) == [(1, "w", 0)]


def test_top_n_without_a_ttl_remembers_every_row() -> None:
    d = PipelineDriver.from_yaml(TOP_N.replace(", state_ttl: 10s", ""), start_time_ms=0)
    score(d, "x", 5)
    score(d, "y", 3)
    d.advance_processing_time(60_000)
    score(d, "z", 1)
    assert ranks(d) == [(1, "x", 5), (2, "y", 3)]


def rows_of(d: PipelineDriver) -> list[Any]:
    return [r.value for r in d.take_output("out")]


JOIN = """\
pipeline: pairs
sources:
  - {topic: orders, id: orders, event_time: {field: ts}}
  - {topic: payments, id: payments, event_time: {field: ts}}
operators:
  - id: paid
    from: orders
    join: {type: interval, right: payments, on: id, between: [-1d, 1d], state_ttl: 10s}
sinks:
  - {topic: out, from: paid}
"""


def order(d: PipelineDriver, key: str, ts: int = 1_000) -> None:
    d.send("orders", {"id": key, "ts": ts})


def pay(d: PipelineDriver, key: str, ts: int = 1_000) -> None:
    d.send("payments", {"id": key, "ts": ts})


def join_node(d: PipelineDriver) -> Any:
    tasks = {id(t): t for t in d.tasks.values()}.values()
    return next(t.executor.nodes["paid"] for t in tasks if "paid" in t.executor.nodes)


def test_a_buffered_record_older_than_the_ttl_matches_nothing_and_leaves_the_buffer() -> None:
    d = PipelineDriver.from_yaml(JOIN, start_time_ms=0)
    order(d, "o1")
    order(d, "o2")
    d.advance_processing_time(9_999)
    pay(d, "o1")  # o1 buffered 9.999 s ago: alive
    assert [r["id"] for r in rows_of(d)] == ["o1"]
    assert join_node(d).join.buffered() == 6  # 3 records, 3 indexes
    d.advance_processing_time(1)  # o1 and o2 expire (10 s); the payment lives until 19.999 s
    assert join_node(d).join.buffered() == 2
    pay(d, "o2")
    assert rows_of(d) == []
    order(d, "o1")  # the payment of o1, buffered 0.001 s ago, still matches
    assert [r["id"] for r in rows_of(d)] == ["o1"]


def test_an_expired_record_matches_nothing_before_the_sweep() -> None:
    d = PipelineDriver.from_yaml(JOIN, start_time_ms=0)
    order(d, "o1")
    d.now_ms = 10_000  # no tick yet
    pay(d, "o1")
    assert rows_of(d) == []


def test_the_join_ttl_index_survives_a_restore() -> None:
    d = PipelineDriver.from_yaml(JOIN, start_time_ms=0)
    order(d, "o1")
    d.advance_processing_time(5_000)
    order(d, "o2")
    stores: dict[str, list[tuple[bytes, bytes]]] = {}
    task = next(t for t in d.tasks.values() if "paid" in t.executor.nodes)
    for name, changes in task.state_changes().items():
        stores[name] = [(k, v) for k, v in changes if v is not None]
    assert stores["op.paid.ttl"]
    again = PipelineDriver.from_yaml(JOIN, start_time_ms=7_000)
    task = next(t for t in again.tasks.values() if "paid" in t.executor.nodes)
    task.executor.restore(stores, task.watermark)
    again.advance_processing_time(3_000)  # 10 s: o1 (buffered at 0 s) expires, o2 not
    pay(again, "o1")
    pay(again, "o2")
    assert [r["id"] for r in rows_of(again)] == ["o2"]
    plain = PipelineDriver.from_yaml(JOIN.replace(", state_ttl: 10s", ""), start_time_ms=0)
    order(plain, "o1")
    plain.advance_processing_time(60_000)
    pay(plain, "o1")
    assert [r["id"] for r in rows_of(plain)] == ["o1"]  # without a ttl: kept


def test_records_buffered_without_a_ttl_are_stamped_at_a_restore_that_adds_one() -> None:
    d = PipelineDriver.from_yaml(JOIN.replace(", state_ttl: 10s", ""), start_time_ms=0)
    order(d, "o1")
    task = next(t for t in d.tasks.values() if "paid" in t.executor.nodes)
    stores = {n: [(k, v) for k, v in c if v is not None] for n, c in task.state_changes().items()}
    again = PipelineDriver.from_yaml(JOIN, start_time_ms=50_000)
    task = next(t for t in again.tasks.values() if "paid" in t.executor.nodes)
    task.executor.restore(stores, task.watermark)
    again.advance_processing_time(9_999)
    assert join_node(again).join.buffered() == 2
    again.advance_processing_time(1)  # stamped at the restore (50 s): expired at 60 s
    assert join_node(again).join.buffered() == 0


def test_state_ttl_is_refused_on_outer_and_non_interval_joins() -> None:
    left = JOIN.replace("between: [-1d, 1d]", "how: left, between: [-1d, 1d]")
    with pytest.raises(ConfigError, match="'state_ttl' is for inner interval joins, not left"):
        load_pipeline_text(left)
    window = JOIN.replace("interval", "window").replace(
        "between: [-1d, 1d]", "window: {type: tumbling, size: 1h}"
    )
    with pytest.raises(ConfigError, match="not inner window joins"):
        load_pipeline_text(window)
