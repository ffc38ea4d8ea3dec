"""kstream.time.timers.TimerService over a real RocksDB timers store (kstream.time.stored_timers):
a bounded head in memory, the rest in the store, firing what the in-memory service fires (the
same timers per timestamp, in timestamp order), with deletes, re-registrations, restores and
bounded slices."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kstream.graph.plan import store_name
from kstream.operators.base import OperatorContext, Output
from kstream.operators.window.node import build_window
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import WindowSpec
from kstream.state.cache import StoreProvider
from kstream.state.store import TaskStore
from kstream.time import timers as timers_module
from kstream.time.timers import (
    EVENT_TIME,
    NEVER,
    PROCESSING_TIME,
    Timer,
    TimerService,
    encode_timer,
)

HEAD = 3


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[TaskStore]:
    store = TaskStore(tmp_path / "task", ["t"])
    yield store
    store.close()


def backed(db: TaskStore, head: int = HEAD) -> TimerService:
    return TimerService(db.backend("t"), head)


def checkpoint(db: TaskStore, timers: TimerService) -> list[tuple[bytes, bytes | None]]:
    """What the runtime does: take the changes, apply them to RocksDB before anything else."""
    changes = timers.changes()
    db.apply({"t": changes}, {"checkpoint_id": 1})
    return changes


def stored(db: TaskStore) -> set[bytes]:
    return {k for k, _v in db.items("t")}


def fire(timers: TimerService, until: int, domain: str = EVENT_TIME, **kw: Any) -> list[Timer]:
    fired: list[Timer] = []
    if domain == EVENT_TIME:
        count = timers.advance_event_time(until, lambda *t: fired.append(t), **kw)
    else:
        count = timers.advance_processing_time(until, lambda *t: fired.append(t))
    assert count == len(fired)
    return fired


def by_key(fired: list[Timer]) -> list[Timer]:
    """Timers in store key order (timestamp, then key and namespace JSON)."""
    return sorted(fired, key=lambda t: encode_timer(EVENT_TIME, t))


def test_memory_holds_the_head_and_the_timers_since_the_checkpoint(db: TaskStore) -> None:
    timers = backed(db)
    for ts in range(10):
        for key in "abcd":  # four timers per timestamp: the head ends inside a timestamp
            timers.register_event_time(ts * 100, key, (ts, key))
            timers.register_processing_time(ts, key)
    assert timers.in_memory() == 80  # nothing stored yet: everything is in the head
    checkpoint(db, timers)
    assert len(stored(db)) == 80
    assert timers.in_memory() == 2 * HEAD
    assert timers.next_event_time == 0 and timers.next_processing_time == 0
    assert len(timers) == 80  # the store beyond the heads counts too
    for key in "xyz":  # beyond the head: the tail until the next checkpoint
        timers.register_event_time(450, key)
    assert timers.in_memory() == 2 * HEAD + 3
    checkpoint(db, timers)
    assert timers.in_memory() == 2 * HEAD
    assert [t[0] for t in timers.event_timers()] == sorted(
        [t * 100 for t in range(10)] * 4 + [450] * 3
    )
    fired = fire(timers, 450)
    assert [t[0] for t in fired] == [0] * 4 + [100] * 4 + [200] * 4 + [300] * 4 + [400] * 4 + [
        450
    ] * 3
    assert fired[:4] == by_key(fired[:4])  # read from the store: its key order
    assert timers.next_event_time == 500
    assert timers.in_memory() <= 2 * HEAD + 1
    assert [t[0] for t in fire(timers, 3, PROCESSING_TIME)] == [0] * 4 + [1] * 4 + [2] * 4 + [3] * 4
    assert timers.next_processing_time == 4


def test_a_fresh_service_registers_in_memory_and_keeps_the_head_after_a_checkpoint(
    db: TaskStore,
) -> None:
    timers = backed(db)
    assert timers.next_event_time == NEVER and timers.next_processing_time is None
    timers.register_event_time(5, "a")
    timers.register_event_time(5, "a")  # a duplicate: ignored
    assert timers.in_memory() == 1 and timers.has_event_time(5, "a")
    assert checkpoint(db, timers) == [(encode_timer(EVENT_TIME, (5, "a", None)), b"\x01")]
    assert checkpoint(db, timers) == []


def ops(seed: int) -> Iterator[tuple[str, int, str]]:
    """A random mix of registrations, deletions, lookups, checkpoints and watermarks."""
    rng = random.Random(seed)
    now = 0
    for _ in range(3_000):
        what = rng.choices(["reg", "del", "has", "cp", "fire", "preg"], [10, 5, 3, 1, 1, 2])[0]
        if what == "fire":
            now += rng.randrange(30)
        yield what, now + rng.randrange(40), f"k{rng.randrange(3)}"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_operations_fire_what_the_in_memory_service_fires(db: TaskStore, seed: int) -> None:
    memory, timers = TimerService(), backed(db)
    fired_ts: list[int] = []
    for what, ts, key in ops(seed):
        if what == "reg":
            memory.register_event_time(ts, key, ts % 3)
            timers.register_event_time(ts, key, ts % 3)
        elif what == "preg":
            memory.register_processing_time(ts, key)
            timers.register_processing_time(ts, key)
        elif what == "del":
            memory.delete_event_time(ts, key, ts % 3)
            timers.delete_event_time(ts, key, ts % 3)
        elif what == "has":
            assert timers.has_event_time(ts, key, ts % 3) == memory.has_event_time(ts, key, ts % 3)
        elif what == "cp":
            memory.changes()
            checkpoint(db, timers)
            assert stored(db) == {  # the store holds exactly the registered timers
                *(encode_timer(EVENT_TIME, t) for t in memory.event_timers()),
                *(encode_timer(PROCESSING_TIME, t) for t in memory.processing_timers()),
            }
            assert timers.in_memory() <= 2 * HEAD  # the head only, right after a checkpoint
        else:
            limit = ts - 40
            got, want = fire(timers, limit), fire(memory, limit)
            assert by_key(got) == by_key(want)
            assert [t[0] for t in got] == sorted(t[0] for t in got)
            fired_ts.extend(t[0] for t in got)
            got = fire(timers, limit, PROCESSING_TIME)
            assert by_key(got) == by_key(fire(memory, limit, PROCESSING_TIME))
        assert timers.next_event_time == memory.next_event_time
        assert timers.next_processing_time == memory.next_processing_time
    assert len(fired_ts) > 100
    assert by_key(list(timers.event_timers())) == by_key(list(memory.event_timers()))
    assert by_key(fire(timers, NEVER - 1)) == by_key(fire(memory, NEVER - 1))
    checkpoint(db, timers)
    assert {k for k in stored(db) if k[:1] == b"e"} == set()


def test_tail_timers_deleted_and_registered_again_around_checkpoints(db: TaskStore) -> None:
    timers = backed(db)
    for ts in range(1, 11):
        timers.register_event_time(ts, "a")
    checkpoint(db, timers)  # head: 1, 2, 3; 4..10 in the store only
    key = {ts: encode_timer(EVENT_TIME, (ts, "a", None)) for ts in range(1, 30)}
    assert timers.in_memory() == HEAD
    assert timers.has_event_time(2, "a") and timers.has_event_time(8, "a")  # head, store
    assert not timers.has_event_time(8, "b") and not timers.has_event_time(11, "a")

    timers.delete_event_time(8, "a")  # stored, beyond the head
    assert not timers.has_event_time(8, "a")
    timers.register_event_time(8, "a")  # back before the checkpoint: nothing to write
    timers.delete_event_time(7, "a")
    timers.delete_event_time(7, "a")  # twice: one deletion
    timers.register_event_time(20, "b")  # new, beyond the head
    timers.delete_event_time(20, "b")  # and gone: never written
    timers.register_event_time(9, "a")  # stored already: ignored
    timers.register_event_time(21, "c")
    assert timers.has_event_time(21, "c") and not timers.has_event_time(7, "a")
    assert dict(checkpoint(db, timers)) == {
        key[7]: None,
        encode_timer(EVENT_TIME, (21, "c", None)): b"\x01",
    }
    assert key[7] not in stored(db) and key[8] in stored(db)
    assert timers.in_memory() == HEAD

    timers.delete_event_time(5, "a")  # deleted beyond the head, then read past by a refill
    assert [t[0] for t in fire(timers, 4)] == [1, 2, 3, 4]
    assert not timers.has_event_time(5, "a")
    timers.register_event_time(5, "a")  # back: in the head now
    timers.delete_event_time(6, "a")  # a head timer read from the store
    assert timers.next_event_time == 5
    changes = dict(checkpoint(db, timers))
    fired_and_deleted = {key[ts]: None for ts in (1, 2, 3, 4, 6)}
    assert changes == {**fired_and_deleted, key[5]: b"\x01"}  # one put, as in memory
    assert [t[0] for t in fire(timers, 100)] == [5, 8, 9, 10, 21]
    checkpoint(db, timers)
    assert stored(db) == set() and timers.next_event_time == NEVER


def test_a_bounded_advance_fires_slices_in_time_order(db: TaskStore) -> None:
    memory, timers = TimerService(), backed(db)
    for ts in range(20):
        for key in range(5):
            memory.register_event_time(ts // 2, f"k{key}", ts)
            timers.register_event_time(ts // 2, f"k{key}", ts)
    checkpoint(db, timers)
    got: list[Timer] = []
    while timers.next_event_time <= 8:
        part = fire(timers, 8, most=4)
        assert 1 <= len(part) <= 4
        got.extend(part)
    assert [t[0] for t in got] == sorted(t[0] for t in got)
    assert by_key(got) == by_key(fire(memory, 8))
    assert timers.next_event_time == memory.next_event_time == 9


def test_restore_reads_the_head_from_the_store(db: TaskStore) -> None:
    assert backed(db).restore([]) == 0  # an empty store: no timers (windows derive theirs)
    timers = backed(db)
    for ts in range(10):
        timers.register_event_time(ts, "a", (ts, ts + 1))
        timers.register_processing_time(ts, "b")
    checkpoint(db, timers)
    again = backed(db)
    again.register_event_time(99, "x")  # replaced by the restore
    assert again.restore(iter(())) == 2 * HEAD  # the entries are not read: the store is
    assert again.next_event_time == 0 and again.next_processing_time == 0
    assert again.changes() == []  # restored timers are stored already
    fired = fire(again, 100)
    assert fired == [(ts, "a", (ts, ts + 1)) for ts in range(10)]
    assert len(checkpoint(db, again)) == 10


def test_a_head_of_one_and_timers_registered_while_firing(db: TaskStore) -> None:
    timers = backed(db, head=1)
    for ts in (10, 20, 30):
        timers.register_event_time(ts, "a")
    checkpoint(db, timers)
    seen: list[int] = []

    def on_timer(ts: int, key: Any, namespace: Any) -> None:
        seen.append(ts)
        if ts == 10:
            timers.register_event_time(25, "b")  # beyond the head, due in this pass
            timers.register_event_time(15, "c")
            timers.delete_event_time(30, "a")

    timers.advance_event_time(29, on_timer)
    assert seen == [10, 15, 20, 25]
    assert timers.next_event_time == NEVER


def test_window_operator_timers_live_in_the_nodes_timers_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(timers_module, "HEAD_TIMERS", 50)
    text = (
        "pipeline: t\nsources:\n  - topic: in\noperators:\n  - id: w\n    window: "
        "{type: tumbling, size: 10, allowed_lateness: 5, aggregate: {n: count}}\n"
        "sinks:\n  - topic: out\n"
    )
    spec = load_pipeline_text(text)
    assert isinstance(spec.operators[0], WindowSpec)
    families = [store_name("w"), store_name("w", "timers")]
    db = TaskStore(tmp_path / "w", families)
    try:
        provider = StoreProvider(db.backend)
        ctx = OperatorContext("w", Output({}), lambda: 0, provider)
        assert ctx.timer_backend() is db.backend(families[1])
        assert OperatorContext("w", Output({}), lambda: 0).timer_backend() is None
        op = build_window(spec.operators[0], spec, clock=lambda: 0)
        op.bind(ctx)
        for key in range(1_000):  # 1,000 windows, two timers each
            op.process(f"k{key}", {}, 0, -(2**63))
        assert op.timers is not None and op.timers.in_memory() == 2_000
        changes = {families[0]: op.changes(), families[1]: op.timers.changes()}
        db.apply(changes, {"checkpoint_id": 1})
        assert op.timers.in_memory() == 50
        out = list(op.advance(100))
        assert Counter(r[2] for r in out) == {9: 1_000}
        assert op.timers.next_event_time == NEVER and op.open_windows() == 0
    finally:
        db.close()


def test_a_fired_stored_timer_registered_again_is_written_once(db: TaskStore) -> None:
    timers = backed(db)
    for ts in range(1, 6):
        timers.register_event_time(ts, "a")
    checkpoint(db, timers)
    assert [t[0] for t in fire(timers, 3)] == [1, 2, 3]
    timers.register_event_time(2, "a")  # fired (a pending deletion), then back: one put
    timers.register_event_time(3, "a")
    timers.delete_event_time(3, "a")  # back and gone again: one deletion
    key = {ts: encode_timer(EVENT_TIME, (ts, "a", None)) for ts in range(1, 6)}
    changes = checkpoint(db, timers)
    assert len(changes) == 3 and dict(changes) == {key[1]: None, key[2]: b"\x01", key[3]: None}
    assert stored(db) == {key[2], key[4], key[5]}
    assert [t[0] for t in fire(timers, 10)] == [2, 4, 5]
