"""The global window's ``state_ttl`` over RocksDB: the expiry index lives in the node's ``ttl``
store, so after a checkpoint and a restart (a new operator over the same column families) the
keys expire at the times they were written at, and the sweep's deletes reach RocksDB."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kstream.operators.base import OperatorContext, Output
from kstream.operators.window.global_agg import GlobalOperator
from kstream.operators.window.node import build_window
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import WindowSpec
from kstream.state.cache import CacheBudget, StoreProvider
from kstream.state.store import TaskStore

STORES = ["op.w", "op.w.ttl"]
KEYS = 300


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[TaskStore]:
    store = TaskStore(tmp_path / "task", STORES)
    yield store
    store.close()


class Run:
    """One global window with ``state_ttl: 10s`` over ``db``, its clock in :attr:`now`."""

    def __init__(self, db: TaskStore, now: int) -> None:
        text = (
            "pipeline: t\nsources:\n  - topic: in\noperators:\n  - id: w\n    window: "
            "{type: global, state_ttl: 10s, aggregate: {n: count}}\nsinks:\n  - topic: out\n"
        )
        spec = load_pipeline_text(text)
        window = spec.operators[0]
        assert isinstance(window, WindowSpec)
        self.db, self.now = db, now
        op = build_window(window, spec, clock=lambda: self.now)
        assert isinstance(op, GlobalOperator)
        self.op = op
        self.provider = StoreProvider(db.backend, CacheBudget(20_000))
        op.bind(OperatorContext("w", Output({}), lambda: self.now, self.provider))

    def restore(self) -> None:
        self.op.restore_ttl(self.db.items("op.w.ttl"))
        self.op.restore(self.db.items("op.w"), -(2**63))

    def checkpoint(self) -> None:
        assert self.op.ttl is not None
        changes = {"op.w": self.op.changes(), "op.w.ttl": self.op.ttl.changes()}
        self.db.apply(changes, {"checkpoint_id": 1})
        self.provider.checkpointed()

    def count(self, key: str) -> int:
        (record,) = self.op.process(key, {"k": key}, 1, -(2**63))
        n: int = record[1]["n"]
        return n


def test_the_expiry_index_in_rocksdb_survives_a_restart(db: TaskStore) -> None:
    first = Run(db, now=0)
    for i in range(KEYS):  # key i written at i ms
        first.now = i
        assert first.count(f"k{i}") == 1
    first.checkpoint()
    again = Run(db, now=5_000)
    again.restore()
    assert again.count("k0") == 2  # 5 s old: alive, rewritten at 5 s
    again.now = 10_000 + 149  # keys 1..149 were written 10 s ago or more
    assert again.op.sweep(again.now) == 149
    again.checkpoint()
    assert sum(1 for _ in db.items("op.w")) == KEYS - 149
    assert again.count("k1") == 1  # expired: restarted
    assert again.count("k150") == 2  # written at 150 ms: alive until 10.15 s
    again.now = 15_000  # k0 (written at 5 s) and k151.. expire; k1, k150 written at 10.149 s
    assert again.op.sweep(again.now) == 1 + (KEYS - 151)
    again.checkpoint()
    assert sorted(key for key, _ in again.op.store.items()) == ["k1", "k150"]
