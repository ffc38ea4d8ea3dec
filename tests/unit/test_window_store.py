"""Keyed windows keep their state in a state store (kstream.state.cache): over real RocksDB
with a tiny cache they emit exactly what the in-memory operator emits, restore from the
committed entries without loading them, and hold only a fraction of their windows in memory.

The workload: 300 keys, event time advancing one millisecond per 40 records with up to 40 ms
of disorder, the watermark 10 ms behind the largest event time; a checkpoint every 25 records
and a restart (restore from the committed state) after 3,000 of the 6,000 records.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kstream.operators.base import OperatorContext, Output
from kstream.operators.window.base import WindowOperator
from kstream.operators.window.node import build_window
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import WindowSpec
from kstream.state.cache import CacheBudget, StoreProvider
from kstream.state.store import TaskStore

RECORDS = 6_000
CHECKPOINT_EVERY = 25
RESTART_AT = 3_000
AGG = "aggregate: {n: count, s: {sum: v}}"
STORES = ["op.w", "op.w.timers"]

WINDOWS = {
    "tumbling": "{type: tumbling, size: 10, allowed_lateness: 20, emit: changelog, "
    f"trigger: {{count: 3}}, {AGG}}}",
    "session": f"{{type: session, gap: 5, allowed_lateness: 10, emit: update, {AGG}}}",
    "sliding": "{type: sliding, size: 20, slide: 10, allowed_lateness: 5, "
    f"accumulation: discarding, {AGG}}}",
    "count": f"{{type: count, size: 3, slide: 2, emit: changelog, {AGG}}}",
}


def operator(body: str) -> WindowOperator:
    text = f"pipeline: t\nsources:\n  - topic: in\noperators:\n  - id: w\n    window: {body}\n"
    spec = load_pipeline_text(text + "sinks:\n  - topic: out\n")
    window = spec.operators[0]
    assert isinstance(window, WindowSpec)
    return build_window(window, spec, clock=lambda: 0)


def bind(op: WindowOperator, provider: StoreProvider) -> None:
    op.bind(OperatorContext("w", Output({}), lambda: 0, provider))


def workload() -> Iterator[tuple[str, dict[str, int], int]]:
    rng = random.Random(13)
    for i in range(RECORDS):
        key = f"k{rng.randrange(300)}"
        yield key, {"v": rng.randrange(100)}, max(0, i // 40 - rng.randrange(41))


class Run:
    """Drives one operator: records, watermarks, checkpoints into ``committed`` (a dict per
    store, for the in-memory run) or into RocksDB, and one restart."""

    def __init__(self, body: str, db: TaskStore | None, budget: CacheBudget | None) -> None:
        self.body, self.db, self.budget = body, db, budget
        self.committed: dict[str, dict[bytes, bytes]] = {name: {} for name in STORES}
        self.out: list[Any] = []
        self.late = 0
        self.max_open = self.max_cached = 0
        self.wm = -(2**63)
        self.start()

    def start(self, restore: bool = False) -> None:
        self.op = operator(self.body)
        db = self.db
        self.provider = StoreProvider(db.backend if db else None, self.budget)
        bind(self.op, self.provider)
        if not restore:
            return
        if db is None:
            entries, timers = (sorted(self.committed[n].items()) for n in STORES)
        else:
            entries, timers = (db.items(n) for n in STORES)
        self.op.restore(entries, self.wm, timers)

    def checkpoint(self) -> None:
        timers = self.op.timers.changes() if self.op.timers is not None else []
        changes = {"op.w": self.op.changes(), "op.w.timers": timers}
        if self.db is None:
            for name, rows in changes.items():
                for key, value in rows:
                    if value is None:
                        del self.committed[name][key]
                    else:
                        self.committed[name][key] = value
        else:
            self.db.apply(changes, {"checkpoint_id": 1})
        self.provider.checkpointed()

    def run(self) -> Run:
        for i, (key, value, ts) in enumerate(workload()):
            self.out.extend(self.op.process(key, value, ts, self.wm))
            self.late += len(self.op.late)
            self.op.late.clear()
            if ts - 10 > self.wm:
                self.wm = ts - 10
                self.out.extend(self.op.advance(self.wm))
            self.max_open = max(self.max_open, self.op.open_windows())
            pressure = self.budget is not None and self.budget.pressure
            if (i + 1) % CHECKPOINT_EVERY == 0 or pressure:
                self.checkpoint()
                cached = self.op.store.cached()  # type: ignore[attr-defined]
                self.max_cached = max(self.max_cached, cached)
            if i + 1 == RESTART_AT:
                self.start(restore=True)
        return self


@pytest.mark.parametrize("kind", sorted(WINDOWS))
def test_a_rocksdb_store_with_a_tiny_cache_emits_what_memory_does(
    kind: str, tmp_path: Path
) -> None:
    body = WINDOWS[kind]
    memory = Run(body, None, None).run()
    db = TaskStore(tmp_path / "t", STORES)
    try:
        rocks = Run(body, db, CacheBudget(20_000)).run()
        held = {name: dict(db.items(name)) for name in STORES}
    finally:
        db.close()
    assert memory.out and rocks.out == memory.out
    assert rocks.late == memory.late and (memory.late > 0 or kind == "count")
    assert rocks.max_open == memory.max_open
    # after each checkpoint the cache holds a fraction of the windows (between checkpoints the
    # dirty entries, e.g. the windows purged by one watermark, cannot be evicted)
    assert rocks.max_cached * 4 < rocks.max_open
    assert held == memory.committed  # the same committed state, byte for byte


def test_the_workload_keeps_many_windows_open_and_drops_late_elements() -> None:
    run = Run(WINDOWS["session"], None, None).run()
    assert run.max_open > 300 and run.late > 0
