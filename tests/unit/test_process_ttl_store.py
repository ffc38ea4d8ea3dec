"""State TTL of process functions over RocksDB (kstream.operators.process_ttl): the stamps are
store entries and the expiry index is a timer service over the node's ``ttl`` store, so with
more entries than the timer head they expire in order in both time domains while memory holds
no per-entry structure; a restore rebuilds the index only when the ttl declarations changed
(added, changed, removed, re-added), also from state written before the ``ttl`` store existed
(stamps only), and a savepoint keeps the declarations with their task unless it rescales."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from process_kit import KEYS, write_process_savepoint
from process_kit import PIPELINE as PROCESS_KIT

from kstream.graph.plan import build_plan
from kstream.io.partitioner import partition_for
from kstream.operators.process_codec import STATE_CODEC
from kstream.operators.process_state import KeyedStateBackend
from kstream.operators.process_ttl import DECLARED_KEY, declarations
from kstream.pipeline.load import load_pipeline_text
from kstream.savepoint import open_savepoint
from kstream.savepoint.reshard import SavepointSeed
from kstream.state.cache import CacheBudget, KeyValueStore
from kstream.state.store import TaskStore
from kstream.time.valve import MIN_WATERMARK

HEAD = 4
TTL = 1_000
STATES = (("v", "value"), ("m", "map"))


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[TaskStore]:
    store = TaskStore(tmp_path / "task", ["op.fn", "op.fn.ttl"])
    yield store
    store.close()


def backed(db: TaskStore, ttl: Any) -> tuple[KeyedStateBackend, dict[str, int]]:
    """A backend over ``db`` with a small cache and a timer head of :data:`HEAD`."""
    times = {"wm": MIN_WATERMARK, "clock": 0}
    b = KeyedStateBackend("fn", STATES, ttl)
    store: KeyValueStore[Any, Any] = KeyValueStore(
        STATE_CODEC, db.backend("op.fn"), CacheBudget(30_000)
    )
    b.bind(store, db.backend("op.fn.ttl"), HEAD)
    b.watermark = lambda: times["wm"]
    b.clock = lambda: times["clock"]
    return b, times


def checkpoint(db: TaskStore, b: KeyedStateBackend) -> None:
    """What the runtime does: both stores' changes to RocksDB, then the cache trimmed."""
    db.apply({"op.fn": b.changes(), "op.fn.ttl": b.ttl.changes()}, {})
    b.store.trim()


def restored(db: TaskStore, ttl: Any) -> tuple[KeyedStateBackend, dict[str, int]]:
    b, times = backed(db, ttl)
    b.restore(db.items("op.fn"), db.items("op.fn.ttl"))
    return b, times


def write(b: KeyedStateBackend, key: str, ts: int, name: str = "v", value: Any = 1) -> None:
    b.current_key, b.timestamp, b.active = key, ts, True
    handle = b.handle(name)
    if name == "m":
        handle.put_all(value)
    else:
        handle.update(value)
    b.active = False


def largest_container(obj: object) -> int:
    """The size of the largest dict, list or set attribute of ``obj``."""
    sizes = [len(v) for v in vars(obj).values() if isinstance(v, dict | list | set | frozenset)]
    return max(sizes, default=0)


def set_now(times: dict[str, int], time: str, now: int) -> None:
    times["wm" if time == "event" else "clock"] = now


@pytest.mark.parametrize("time", ["event", "processing"])
def test_entries_beyond_the_timer_head_expire_in_order(db: TaskStore, time: str) -> None:
    b, times = backed(db, (("v", TTL, time),))
    rng = random.Random(5)
    stamps: dict[str, int] = {}
    for n in range(300):
        key = f"k{rng.randrange(200)}"  # some keys are written again: their old timer goes
        stamps[key] = at = 10_000 + rng.randrange(5_000)
        times["clock"] = at
        write(b, key, at)
        if n % 50 == 49:
            checkpoint(db, b)
    checkpoint(db, b)
    assert len(b.ttl.timers) == len(stamps)  # one timer per entry: no stale ones
    assert b.ttl.timers.in_memory() <= HEAD
    assert largest_container(b.ttl) <= 2 and largest_container(b) <= 2

    again, times = restored(db, (("v", TTL, time),))  # a restart: nothing rebuilt
    assert again.ttl.saved and not again.store.dirty and again.store.cached() == 0
    left = dict(stamps)
    for expiry in sorted({at + TTL for at in stamps.values()}):
        set_now(times, time, expiry)
        due = {k for k, at in left.items() if at + TTL == expiry}
        assert again.sweep(time) == len(due)
        for key in due:
            del left[key]
        if len(left) % 40 == 0:
            checkpoint(db, again)
            assert set(again.tables["v"]) == set(left)
            assert again.ttl.timers.in_memory() <= HEAD
    assert again.tables["v"] == {} and len(again.ttl.timers) == 0


def test_map_entries_beyond_the_timer_head_expire_one_by_one(db: TaskStore) -> None:
    b, times = backed(db, (("m", TTL, "event"),))
    for i in range(20):
        write(b, "a", 1_000 + 100 * i, "m", {f"e{i}": i})
    checkpoint(db, b)
    assert b.ttl.timers.in_memory() <= HEAD
    again, times = restored(db, (("m", TTL, "event"),))
    for i in range(20):
        times["wm"] = 2_000 + 100 * i
        assert again.sweep("event") == 1
        assert sorted(again.tables["m"].get("a", {})) == sorted(f"e{j}" for j in range(i + 1, 20))
    assert dict(again.changes())[orjson.dumps(["a", "m", "ttl"])] is None


def test_a_restore_rebuilds_the_index_only_when_the_declarations_changed(db: TaskStore) -> None:
    b, _ = backed(db, (("v", TTL, "event"),))
    write(b, "a", 1_000)
    write(b, "b", 2_000)
    checkpoint(db, b)

    same, _ = restored(db, (("v", TTL, "event"),))
    assert same.ttl.saved and same.changes() == [] and same.ttl.changes() == []

    shorter, times = restored(db, (("v", 500, "event"),))  # the saved stamps are kept
    assert not shorter.ttl.saved and shorter.ttl.stored("v") == {"a": 1_000, "b": 2_000}
    times["wm"] = 1_499
    assert shorter.sweep("event") == 0
    times["wm"] = 1_500
    assert shorter.sweep("event") == 1 and set(shorter.tables["v"]) == {"b"}
    times["wm"] = 3_000  # b at 2_500; the old timers (2_000, 3_000) fire and are ignored
    assert shorter.sweep("event") == 1 and len(shorter.ttl.timers) == 0
    assert dict(shorter.ttl.changes())[DECLARED_KEY] == declarations((("v", 500, "event"),))

    moved, times = backed(db, (("v", TTL, "processing"),))  # restamped at the clock
    times["clock"] = 50_000
    moved.restore(db.items("op.fn"), db.items("op.fn.ttl"))
    assert moved.ttl.stored("v") == {"a": 50_000, "b": 50_000}
    times["wm"] = 10_000
    assert moved.sweep("event") == 0  # the event-time timers left in the store are ignored
    times["clock"] = 51_000
    assert moved.sweep("processing") == 2

    removed, _ = restored(db, ())  # the entries stay, their stamps and declarations go
    changes = dict(removed.changes())
    assert changes == {orjson.dumps([k, "v", "ttl"]): None for k in "ab"}
    assert dict(removed.ttl.changes()) == {DECLARED_KEY: None}
    assert set(removed.tables["v"]) == {"a", "b"} and removed.keys() == 2


def test_a_ttl_removed_then_declared_again_stamps_every_entry(db: TaskStore) -> None:
    ttl = (("v", TTL, "processing"),)
    first, times = backed(db, ttl)
    write(first, "a", 0)
    checkpoint(db, first)
    without, _ = restored(db, ())
    write(without, "b", 0)
    checkpoint(db, without)  # no stamps, no declarations; the old timers stay in the store

    again, times = backed(db, ttl)
    times["clock"] = 9_000
    again.restore(db.items("op.fn"), db.items("op.fn.ttl"))
    assert again.ttl.stored("v") == {"a": 9_000, "b": 9_000}
    times["clock"] = 10_000
    assert again.sweep("processing") == 2 and again.tables["v"] == {}


def test_state_saved_before_the_ttl_store_restores_its_index_from_the_stamps(
    db: TaskStore,
) -> None:
    old = {  # the previous layout: stamps next to the entries, no ttl store
        orjson.dumps(["a", "v"]): b'"x"',
        orjson.dumps(["a", "v", "ttl"]): b'[1000,"event"]',
        orjson.dumps(["a", "m"]): b'[["p",1],["q",2]]',
        orjson.dumps(["a", "m", "ttl"]): b'[[["p",1000],["q",1500]],"event"]',
    }
    db.apply({"op.fn": list(old.items())}, {})
    ttl = (("v", TTL, "event"), ("m", TTL, "event"))
    b, times = backed(db, ttl)
    times["wm"] = 1_200
    b.restore(db.items("op.fn"), db.items("op.fn.ttl"))
    assert not b.ttl.saved and b.changes() == []  # the stamps are kept as they are
    times["wm"] = 1_999
    assert b.sweep("event") == 0
    times["wm"] = 2_000
    assert b.sweep("event") == 2 and b.tables["m"] == {"a": {"q": b"2"}}
    checkpoint(db, b)
    again, times = restored(db, ttl)
    assert again.ttl.saved
    times["wm"] = 2_500
    assert again.sweep("event") == 1 and again.tables["m"] == {} and again.keys() == 0


def test_a_savepoint_keeps_the_declarations_with_their_task_unless_it_rescales(
    tmp_path: Path,
) -> None:
    text = PROCESS_KIT.replace(
        "state: {count: value, seen: list, parity: map, flags: value}",
        "state: {count: {kind: value, ttl: 1h}, seen: list, parity: map, flags: value}",
    )
    saved = write_process_savepoint(tmp_path, text)
    entries = list(open_savepoint(saved).entries("fn", "ttl"))
    declared = [e for e in entries if e.key == DECLARED_KEY]
    assert len(declared) == 2 and {e.routing for e in declared} == {b""}
    timers = [e for e in entries if e.key != DECLARED_KEY]
    assert sorted(orjson.loads(e.routing) for e in timers) == sorted(KEYS)  # one per key

    plan = build_plan(load_pipeline_text(text, "p.yaml"))
    repartition = plan.output_topic_of(plan.stages[0].key_bys[0])
    ttl = (("count", 3_600_000, "event"),)
    for count in (2, 3):
        seed = SavepointSeed(saved, plan, {"events": 2, repartition: count}, False)
        for p in range(count):
            _meta, stores = seed.seed(plan.stages[1].id, p)
            b = KeyedStateBackend("fn", (("count", "value"),), ttl)
            b.restore(stores.get("op.fn", []), stores.get("op.fn.ttl", []))
            assert b.ttl.saved == (count == 2)  # a rescale drops them: the index is rebuilt
            mine = [k for k in KEYS if partition_for(orjson.dumps(k), count) == p]
            assert sorted(t[1] for t in b.ttl.timers.event_timers()) == sorted(mine)
            b.watermark = lambda: 3_602_000
            assert b.sweep("event") == len(mine) and b.tables["count"] == {}
