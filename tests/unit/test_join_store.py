"""An interval join's buffers in a RocksDB-backed store with a small cache
(kstream.operators.join over kstream.state.cache): through checkpoints and a restart from the
committed state, the outputs equal an in-memory run's, while the cache holds few entries."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kstream.operators.base import OperatorContext, Output
from kstream.operators.join.node import JoinNode
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import JoinSpec
from kstream.state.cache import CacheBudget, StoreProvider
from kstream.state.store import TaskStore

PIPELINE = """\
pipeline: store
sources:
  - {id: a, topic: a, event_time: t}
  - {id: b, topic: b, event_time: t}
operators:
  - id: j
    from: a
    join: {type: interval, right: b, on: k, between: [-200, 100], how: full}
sinks:
  - {topic: out}
"""
FAMILIES = ["op.j", "op.j.timers"]
KEYS = 2_000
Record = tuple[str, str, dict[str, Any], int]


def records() -> list[Record]:
    """Both sides over 2,000 keys, 1 ms apart with up to 50 ms of disorder."""
    rng = random.Random(11)
    out = []
    for n in range(10_000):
        k = f"k{rng.randrange(KEYS)}"
        side = rng.choice(("left", "right"))
        out.append((side, k, {"k": k, "n": n}, 1_000 + n + rng.randrange(50)))
    return out


def node_with(provider: StoreProvider, out: list[Any]) -> JoinNode:
    spec = load_pipeline_text(PIPELINE, "p.yaml")
    op = next(o for o in spec.operators if isinstance(o, JoinSpec))
    node = JoinNode(op, spec, lambda *late: out.append(("late", *late)))
    emit = Output({"main": [lambda k, v, ts: out.append((k, v, ts))]})
    node.open(OperatorContext("j", emit, lambda: 0, provider))
    return node


def advance(node: JoinNode, watermark: int) -> None:
    """What the executor does when the node's watermark moves: timers, then on_watermark."""
    if node.timers.next_event_time <= watermark:
        node.timers.advance_event_time(watermark, node.on_timer)
    node.on_watermark(watermark)


def feed(node: JoinNode, batch: list[Record], checkpoint: Any = None) -> None:
    """Send ``batch``; every 100 records the watermark moves to 20 ms behind the last record
    and ``checkpoint`` runs."""
    receive = {side: node.receiver(side) for side in ("left", "right")}
    for i, (side, k, value, ts) in enumerate(batch, 1):
        receive[side](k, value, ts)
        if i % 100 == 0:
            advance(node, ts - 20)
            if checkpoint is not None:
                checkpoint()


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[TaskStore]:
    store = TaskStore(tmp_path / "t", FAMILIES)
    yield store
    store.close()


def test_backed_buffers_give_the_in_memory_outputs_across_a_restart(db: TaskStore) -> None:
    data = records()
    expected: list[Any] = []
    memory = node_with(StoreProvider(), expected)
    feed(memory, data)
    advance(memory, 2**62)

    got: list[Any] = []
    cached: list[int] = []

    def checkpointer(node: JoinNode, provider: StoreProvider) -> Any:
        def checkpoint() -> None:
            changes = node.prepare_checkpoint()
            db.apply({f"op.j.{n}" if n else "op.j": c for n, c in changes.items()}, {})
            provider.checkpointed()
            assert node.join.store is not None
            cached.append(node.join.store.cached())

        return checkpoint

    provider = StoreProvider(db.backend, CacheBudget(20_000))
    node = node_with(provider, got)
    half = len(data) // 2
    feed(node, data[:half], checkpointer(node, provider))
    held = node.join.buffered()
    assert held > 100

    provider = StoreProvider(db.backend, CacheBudget(20_000))
    again = node_with(provider, got)
    again.restore({"": db.items("op.j"), "timers": db.items("op.j.timers")}, node.watermark)
    assert again.join.buffered() == held
    feed(again, data[half:], checkpointer(again, provider))
    advance(again, 2**62)
    # the same records; within a timestamp, timers read back from RocksDB fire in key order
    assert sorted(map(repr, got)) == sorted(map(repr, expected))
    assert sum(1 for g in got if g[0] == "late") > 10  # the disorder makes some records late
    assert sum(1 for g in got if g[0] != "late" and g[1].get("b") is None) > 100  # outer rows
    assert max(cached) < held
    assert again.join.buffered() == 0  # everything released at the end


def test_a_key_with_many_buffered_records_writes_small_entries() -> None:
    """A day of flights of one origin (hundreds of records of ~1 KB) must not become one
    changelog record larger than a broker accepts (1 MB by default)."""
    got: list[Any] = []
    node = node_with(StoreProvider(), got)
    left = node.receiver("left")
    for n in range(5_000):
        left("EWR", {"k": "EWR", "n": n, "pad": "x" * 1_000}, 1_000 + n)
    entries = node.prepare_checkpoint()[""]
    assert len(entries) == 5_000 + 17  # one per record, one index per 300 ms bucket
    assert max(len(value or b"") for _, value in entries) < 10_000
