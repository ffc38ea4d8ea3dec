"""Process-function state in a RocksDB-backed state store with a tiny cache
(kstream.operators.process_state over kstream.state.cache): the outputs equal an in-memory
run's, through checkpoints, TTL sweeps, timers and a restore, while the cache holds a small
fraction of the entries."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kstream.operators.base import OperatorContext, Output
from kstream.operators.process import ProcessNode
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import ProcessSpec
from kstream.state.cache import CacheBudget, StoreProvider
from kstream.state.store import TaskStore

PIPELINE = """\
pipeline: store
sources:
  - {topic: events, event_time: {field: ts}}
operators:
  - key_by: k
  - id: fn
    process:
      python: store_udfs:Tally
      state:
        count: value
        recent: list
        parity: map
        last: {kind: value, ttl: 40s}
sinks:
  - {topic: out, from: fn}
"""
FAMILIES = ["op.fn", "op.fn.timers", "op.fn.ttl"]
KEYS = 3_000
RECORDS = 12_000
Record = tuple[Any, dict[str, Any], int]


def records() -> list[Record]:
    """Keys drawn at random (some revisit after the 40 s TTL), 10 ms apart."""
    rng = random.Random(7)
    out = []
    for n in range(RECORDS):
        k = f"k{rng.randrange(KEYS)}"
        out.append((k, {"k": k, "n": n}, 1_000_000 + n * 10 + rng.randrange(50)))
    return out


def node_with(provider: StoreProvider, out: list[Any]) -> ProcessNode:
    spec = load_pipeline_text(PIPELINE, "p.yaml")
    op = next(o for o in spec.operators if isinstance(o, ProcessSpec))
    node = ProcessNode(op, spec)
    emit = Output({"main": [lambda k, v, ts: out.append((k, v, ts))]})
    node.open(OperatorContext("fn", emit, lambda: 0, provider))
    return node


def advance(node: ProcessNode, watermark: int) -> None:
    """What the executor does when the node's watermark moves: timers, then the sweep."""
    node.watermark = max(node.watermark, watermark)
    if node.timers.next_event_time <= watermark:
        node.timers.advance_event_time(watermark, node.on_timer)
    node.on_watermark(watermark)


def feed(node: ProcessNode, batch: list[Record], every: Callable[[int], None]) -> None:
    """Send ``batch``; every 100 records the watermark moves to 500 ms behind, and ``every``
    runs (a checkpoint)."""
    receive = node.receiver()
    for i, (k, value, ts) in enumerate(batch, 1):
        receive(k, value, ts)
        if i % 100 == 0:
            advance(node, ts - 500)
            every(i)


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[TaskStore]:
    store = TaskStore(tmp_path / "t", FAMILIES)
    yield store
    store.close()


def checkpointer(
    db: TaskStore, node: ProcessNode, provider: StoreProvider, seen: list[int]
) -> Callable[[int], None]:
    """A checkpoint as the runtime takes it; records the cached entries after it in ``seen``."""

    def checkpoint(_: int) -> None:
        changes = node.prepare_checkpoint()
        db.apply({f"op.fn.{n}" if n else "op.fn": c for n, c in changes.items()}, {})
        provider.checkpointed()
        seen.append(node.state.store.cached())

    return checkpoint


def test_backed_state_gives_the_in_memory_outputs_with_a_bounded_cache(db: TaskStore) -> None:
    data = records()
    expected: list[Any] = []
    memory = node_with(StoreProvider(), expected)
    feed(memory, data, lambda _: None)
    advance(memory, 2**62)

    got: list[Any] = []
    provider = StoreProvider(db.backend, CacheBudget(20_000))
    node = node_with(provider, got)
    cached: list[int] = []
    half = RECORDS // 2
    feed(node, data[:half], checkpointer(db, node, provider, cached))
    entries = len(node.state.store)
    assert entries > 2 * KEYS  # count, recent, parity, last and stamps of most keys
    assert max(cached) < entries // 20

    # a restart: a new node restores the committed state from RocksDB and continues
    provider = StoreProvider(db.backend, CacheBudget(20_000))
    again = node_with(provider, got)
    again.restore({"": db.items("op.fn"), "timers": db.items("op.fn.timers")}, node.watermark)
    assert again.state.store.cached() < 100 and len(again.state.store) == entries
    feed(again, data[half:], checkpointer(db, again, provider, cached))
    advance(again, 2**62)
    assert max(cached) < entries // 20
    assert got == expected
    assert sum(1 for v in expected if "timer" in v[1]) > 1_000
    assert sum(1 for v in expected if v[1].get("before") is None) > KEYS  # some TTL expiry
    assert again.state.keys() == memory.state.keys()
