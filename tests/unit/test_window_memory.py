"""What a time window keeps in memory: nothing per key or window beyond the state cache and the
timers' head. Session windows read each key's open sessions from the window store (its index
entry, kstream.operators.window.sessions); early-firing triggers count unemitted elements in the
window's entry, and ``trigger: {every: ...}`` arms one processing-time timer per window in the
node's timer service, checkpointed and restored with the event-time ones.

The session workload (gap 20 ms, lateness 40 ms): 2,000 keys, event time advancing one
millisecond per 40 records with up to 30 ms of disorder, 120 ms for one record in 97 (merges,
late-but-allowed and dropped elements), the watermark 10 ms behind the largest event time; a
checkpoint every 50 records and a restart after half the records.
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
from kstream.operators.window.operator import TimeWindowOperator
from kstream.operators.window.sessions import is_index_key
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import PipelineSpec, WindowSpec
from kstream.pipeline.view import operator_to_dict
from kstream.savepoint import summarize
from kstream.savepoint.format import StateEntry
from kstream.savepoint.view import decode_windows
from kstream.state.cache import CacheBudget, StoreProvider
from kstream.state.store import TaskStore
from kstream.time.timers import PROCESSING_TIME, decode_timer

STORES = ["op.w", "op.w.timers"]
AGG = "aggregate: {n: count, s: {sum: v}}"
SESSION = f"{{type: session, gap: 20, allowed_lateness: 40, emit: changelog, {AGG}}}"
KEYS = 2_000
RECORDS = 16_000
CHECKPOINT_EVERY = 50


class Clock:
    """Processing time (epoch ms) the test moves by hand."""

    def __init__(self, now: int = 0) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def pipeline(body: str) -> PipelineSpec:
    text = f"pipeline: t\nsources:\n  - topic: in\noperators:\n  - id: w\n    window: {body}\n"
    return load_pipeline_text(text + "sinks:\n  - topic: out\n")


def operator_spec(body: str) -> WindowSpec:
    window = pipeline(body).operators[0]
    assert isinstance(window, WindowSpec)
    return window


def operator(body: str, clock: Clock) -> WindowOperator:
    return build_window(operator_spec(body), pipeline(body), clock=clock)


def session_workload() -> Iterator[tuple[str, dict[str, int], int]]:
    rng = random.Random(29)
    for i in range(RECORDS):
        key = f"k{rng.randrange(KEYS)}"
        delay = rng.randrange(31) if i % 97 else rng.randrange(120)
        yield key, {"v": rng.randrange(100)}, max(0, i // 40 - delay)


class Job:
    """One window operator with its checkpoints: into ``committed`` (in memory, one dict per
    store) or into RocksDB (``db``, behind a cache of ``budget``)."""

    def __init__(
        self, body: str, db: TaskStore | None = None, budget: CacheBudget | None = None
    ) -> None:
        self.body, self.db, self.budget = body, db, budget
        self.clock = Clock()
        self.committed: dict[str, dict[bytes, bytes]] = {name: {} for name in STORES}
        self.out: list[Any] = []
        self.wm = -(2**63)
        self.start()

    def start(self, restore: bool = False, keep: Any = None) -> None:
        """A new operator; ``restore``: from the committed state (``keep(store, key)``: which
        committed entries to restore, e.g. to recreate state of an older version)."""
        self.op = operator(self.body, self.clock)
        db = self.db
        self.provider = StoreProvider(db.backend if db else None, self.budget)
        self.op.bind(OperatorContext("w", Output({}), self.clock, self.provider))
        if not restore:
            return
        if keep is not None:
            for name, rows in self.committed.items():
                for key in [k for k in rows if not keep(name, k)]:
                    del rows[key]
                    if db is not None:
                        db.apply({name: [(key, None)]}, {"checkpoint_id": 1})
        if db is None:
            entries, timers = (sorted(self.committed[n].items()) for n in STORES)
        else:
            entries, timers = (db.items(n) for n in STORES)
        self.op.restore(entries, self.wm, timers)

    def checkpoint(self) -> None:
        assert self.op.timers is not None
        changes = {"op.w": self.op.changes(), "op.w.timers": self.op.timers.changes()}
        for name, rows in changes.items():
            for key, value in rows:
                if value is None:
                    del self.committed[name][key]
                else:
                    self.committed[name][key] = value
        if self.db is not None:
            self.db.apply(changes, {"checkpoint_id": 1})
        self.provider.checkpointed()

    def send(self, key: Any, ts: int, v: int = 1) -> None:
        self.out.extend(self.op.process(key, {"v": v}, ts, self.wm))

    def watermark(self, wm: int) -> None:
        self.wm = wm
        self.out.extend(self.op.advance(wm))

    def tick(self, now: int) -> None:
        self.clock.now = now
        self.out.extend(self.op.on_processing_time(now))

    def new(self) -> list[Any]:
        out, self.out = self.out, []
        return out


class SessionRun(Job):
    """The session workload with a restart half way (``restart``; ``keep`` as in
    :meth:`Job.start`), recording the largest number of keys with open sessions and of entries
    cached right after a checkpoint."""

    def run(self, restart: bool = True, keep: Any = None) -> SessionRun:
        self.late = self.max_keys = self.max_cached = 0
        for i, (key, value, ts) in enumerate(session_workload()):
            self.out.extend(self.op.process(key, value, ts, self.wm))
            self.late += len(self.op.late)
            self.op.late.clear()
            if ts - 10 > self.wm:
                self.watermark(ts - 10)
            if (i + 1) % CHECKPOINT_EVERY == 0 or (self.budget and self.budget.pressure):
                self.checkpoint()
                self.max_cached = max(self.max_cached, self.op.store.cached())
                assert isinstance(self.op, TimeWindowOperator) and self.op.sessions is not None
                self.max_keys = max(self.max_keys, self.op.sessions.count)
            if restart and i + 1 == RECORDS // 2:
                self.start(restore=True, keep=keep)
        return self


def containers(obj: Any) -> dict[str, int]:
    """The sizes of the containers among ``obj``'s attributes."""
    return {
        name: len(value)
        for name, value in vars(obj).items()
        if isinstance(value, dict | list | set | tuple)
    }


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[TaskStore]:
    store = TaskStore(tmp_path / "t", STORES)
    yield store
    store.close()


def test_session_windows_over_rocksdb_keep_no_per_key_structure(db: TaskStore) -> None:
    memory = SessionRun(SESSION).run()
    rocks = SessionRun(SESSION, db, CacheBudget(20_000)).run()
    assert memory.out and rocks.out == memory.out
    assert rocks.late == memory.late > 0
    merges = [r for r in memory.out if r[1].get("op") == "-D"]
    assert merges  # sessions merged after they had fired
    assert {name: dict(db.items(name)) for name in STORES} == memory.committed
    # thousands of keys with open sessions, a few hundred cached entries and no Python
    # structure of the operator holding anything per key
    assert rocks.max_keys > 1_000 and rocks.max_cached * 4 < rocks.max_keys
    op = rocks.op
    assert isinstance(op, TimeWindowOperator) and op.sessions is not None
    assert all(size < 10 for size in containers(op).values()), containers(op)
    assert all(size < 10 for size in containers(op.sessions).values())


def test_a_restart_continues_exactly_like_an_uninterrupted_run() -> None:
    """The session index is state: the restored operator merges the same sessions, in the same
    order (retractions and accumulators), as one that never stopped. (Windows firing at the
    same time may fire in another order: restored timers fire in store order.)"""
    restarted, uninterrupted = SessionRun(SESSION).run(), SessionRun(SESSION).run(restart=False)
    assert by_window(restarted.out) == by_window(uninterrupted.out)


def by_window(records: list[Any]) -> dict[Any, list[Any]]:
    """The records of each upsert key (window), in order."""
    out: dict[Any, list[Any]] = {}
    for key, value, ts in records:
        out.setdefault(key, []).append((value, ts))
    return out


@pytest.mark.parametrize("backed", [False, True])
def test_session_state_without_index_entries_is_indexed_on_restore(
    backed: bool, tmp_path: Path
) -> None:
    """State written before the session index existed: the restore derives it from the
    windows; the results are those of the state with its index (up to the order of the
    retractions of one merge, which follows the store's order then)."""
    db = TaskStore(tmp_path / "t", STORES) if backed else None
    try:
        expected = SessionRun(SESSION).run().out
        old = SessionRun(SESSION, db, CacheBudget(50_000) if backed else None)
        old.run(keep=lambda name, key: name != "op.w" or not is_index_key(key))
        assert sorted(map(repr, old.out)) == sorted(map(repr, expected))
        assert old.committed == SessionRun(SESSION).run().committed  # the index is back
    finally:
        if db is not None:
            db.close()


EVERY = f"{{type: tumbling, size: 1000000, trigger: {{every: 10s}}, emit: changelog, {AGG}}}"


def processing_timers(committed: dict[bytes, bytes]) -> list[tuple[int, Any, Any]]:
    decoded = (decode_timer(raw) for raw in committed)
    return sorted(timer for domain, timer in decoded if domain == PROCESSING_TIME)


@pytest.mark.parametrize("backed", [False, True])
def test_every_trigger_fires_after_a_restore(backed: bool, tmp_path: Path) -> None:
    """Elements at clock 3 s arm one processing-time timer per window at 10 s; the timers are
    checkpointed with the window's and fire after a restart."""
    db = TaskStore(tmp_path / "t", STORES) if backed else None
    try:
        job = Job(EVERY, db, CacheBudget(50_000) if backed else None)
        job.clock.now = 3_000
        for key in ("a", "b", "c"):
            job.send(key, 5)
        job.send("a", 6)
        job.checkpoint()
        assert processing_timers(job.committed["op.w.timers"]) == [
            (10_000, key, (0, 1_000_000)) for key in ("a", "b", "c")
        ]
        job.start(restore=True)
        job.tick(9_999)
        assert job.new() == []
        job.tick(10_000)
        fired = [(v["key"], v["op"], v["n"]) for _k, v, _ts in job.new()]
        assert sorted(fired) == [("a", "+I", 2), ("b", "+I", 1), ("c", "+I", 1)]
        job.tick(20_000)  # nothing new
        assert job.new() == []
        job.send("b", 7)  # at clock 20 s: fires at 30 s
        job.checkpoint()
        job.start(restore=True)
        job.tick(29_999)
        assert job.new() == []
        job.tick(30_000)
        assert [(v["key"], v["op"], v["n"]) for _k, v, _ts in job.new()] == [
            ("b", "-U", 1),
            ("b", "+U", 2),
        ]
        assert processing_timers(job.committed["op.w.timers"]) == [(30_000, "b", (0, 1_000_000))]
    finally:
        if db is not None:
            db.close()


@pytest.mark.parametrize("backed", [False, True])
def test_state_without_processing_time_timers_still_fires_early(
    backed: bool, tmp_path: Path
) -> None:
    """State written before the every trigger had timers (windows with unemitted elements, no
    processing-time timer): the restore arms one for each such window that has not fired, at
    the next multiple of ``every`` after the clock."""
    db = TaskStore(tmp_path / "t", STORES) if backed else None
    try:
        job = Job(EVERY, db, CacheBudget(50_000) if backed else None)
        job.clock.now = 3_000
        job.send("a", 5)
        job.send("b", 5)
        job.tick(10_000)
        job.new()
        job.send("a", 6)  # a: one unemitted element, b: none
        job.checkpoint()
        job.clock.now = 14_000
        job.start(restore=True, keep=lambda name, key: name != "op.w.timers" or key[:1] != b"p")
        job.tick(19_999)
        assert job.new() == []
        job.tick(20_000)
        assert [(v["key"], v["op"], v["n"]) for _k, v, _ts in job.new()] == [
            ("a", "-U", 1),
            ("a", "+U", 2),
        ]
    finally:
        if db is not None:
            db.close()


def test_a_merged_session_keeps_its_every_timer_and_the_merged_ones_are_ignored() -> None:
    job = Job(f"{{type: session, gap: 10, trigger: {{every: 10s}}, {AGG}}}")
    job.clock.now = 1_000
    job.send("a", 0)
    job.send("a", 20)
    job.clock.now = 12_000
    job.send("a", 10)  # merges [0, 10), [10, 20), [20, 30): 3 unemitted elements
    job.tick(10_000)  # the timers of the merged-away sessions: ignored
    assert job.new() == []
    job.tick(20_000)
    assert [(k, v["window_start"], v["window_end"], v["n"]) for k, v, _ts in job.new()] == [
        ("a", 0, 30, 3)
    ]


@pytest.mark.parametrize("backed", [False, True])
def test_count_trigger_counts_across_a_restore(backed: bool, tmp_path: Path) -> None:
    db = TaskStore(tmp_path / "t", STORES) if backed else None
    try:
        job = Job(f"{{type: tumbling, size: 100, trigger: {{count: 3}}, {AGG}}}", db)
        job.send("a", 1)
        job.send("a", 2)
        job.send("b", 3)
        job.checkpoint()
        job.start(restore=True)
        job.send("a", 4)
        assert [(k, v["n"]) for k, v, _ts in job.new()] == [("a", 3)]
        job.send("b", 5)
        job.send("a", 6)
        job.checkpoint()
        job.start(restore=True)
        job.send("b", 7)
        assert [(k, v["n"]) for k, v, _ts in job.new()] == [("b", 3)]
        job.send("a", 8)
        job.send("a", 9)
        assert [(k, v["n"]) for k, v, _ts in job.new()] == [("a", 6)]
    finally:
        if db is not None:
            db.close()


def test_savepoint_tools_do_not_show_index_entries_as_windows() -> None:
    job = Job(f"{{type: session, gap: 10, {AGG}}}")
    for key, ts in (("a", 0), ("a", 30), ("b", 5)):
        job.send(key, ts)
    job.checkpoint()
    rows = job.committed["op.w"]
    assert sum(map(is_index_key, rows)) == 2  # a and b
    saved = [StateEntry("s", 0, k, v, k[16:]) for k, v in sorted(rows.items())]
    definition = operator_to_dict(operator_spec(f"{{type: session, gap: 10, {AGG}}}"))
    windows = [
        (w["key"], w["window_start"], w["window_end"]) for w in decode_windows(definition, saved)
    ]
    assert sorted(windows) == [("a", 0, 10), ("a", 30, 40), ("b", 5, 15)]
    summary = summarize(definition, "s", 0, saved)
    assert (summary.entries, summary.windows, summary.keys) == (5, 3, 2)
