"""The resumable ordered scan of a state store (kstream.state.scan) over real RocksDB: committed
and new entries merged in key order, a checkpoint in the middle of the scan, a resume from the
cursor by a fresh store (after a crash)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from statekit import CODEC, task_db

from kstream.state.cache import KeyValueStore
from kstream.state.scan import OrderedScan
from kstream.state.store import TaskStore


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[TaskStore]:
    yield from task_db(tmp_path)


def checkpoint(db: TaskStore, store: KeyValueStore[str, int]) -> None:
    db.apply({"s": store.changes()}, {"checkpoint_id": 1})


def keys_of(batch: list[tuple[bytes, str, int]]) -> list[str]:
    return [key for _, key, _ in batch]


def test_scan_merges_committed_and_new_entries_in_key_order(db: TaskStore) -> None:
    store = KeyValueStore(CODEC, db.backend("s"))
    for key in ("b", "d", "f"):
        store.put(key, 1)
    checkpoint(db, store)
    store.put("a", 2)  # new since the checkpoint
    store.put("e", 2)
    store.put("d", 5)  # committed, changed in the cache
    store.delete("f")  # committed, deleted in the cache
    scan = OrderedScan(store)
    first = scan.take(2)
    assert [(k, v) for _, k, v in first] == [("a", 2), ("b", 1)]
    assert scan.cursor == b"b" and not scan.done
    assert [(k, v) for _, k, v in scan.take(10)] == [("d", 5), ("e", 2)]
    assert scan.done and scan.take(10) == []


def test_a_checkpoint_during_the_scan_takes_each_key_once(db: TaskStore) -> None:
    store = KeyValueStore(CODEC, db.backend("s"))
    for i in range(0, 20, 2):
        store.put(f"k{i:02d}", i)
    checkpoint(db, store)
    for i in range(1, 20, 2):
        store.put(f"k{i:02d}", i)
    scan = OrderedScan(store)
    taken = keys_of(scan.take(5))
    checkpoint(db, store)  # the new keys are committed now: in the backend and the list
    while not scan.done:
        taken += keys_of(scan.take(4))
    assert taken == [f"k{i:02d}" for i in range(20)]


def test_a_fresh_store_resumes_after_the_cursor(db: TaskStore) -> None:
    store = KeyValueStore(CODEC, db.backend("s"))
    for i in range(10):
        store.put(f"k{i}", i)
    checkpoint(db, store)
    scan = OrderedScan(store)
    before = keys_of(scan.take(4))
    restarted = OrderedScan(KeyValueStore(CODEC, db.backend("s")), scan.cursor)
    after = keys_of(restarted.take(100))
    assert before + after == [f"k{i}" for i in range(10)]


def test_an_in_memory_store_scans_in_encoded_key_order() -> None:
    store: KeyValueStore[str, int] = KeyValueStore(CODEC)
    for key in ("c", "a", "b"):
        store.put(key, 0)
    scan = OrderedScan(store, cursor=b"a")
    assert keys_of(scan.take(10)) == ["b", "c"]
