"""The state stores' write-back cache (kstream.state.cache) over real RocksDB and in memory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from statekit import CODEC, task_db

from kstream.state.cache import CacheBudget, KeyValueStore, StoreProvider
from kstream.state.store import TaskStore


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[TaskStore]:
    yield from task_db(tmp_path)


def checkpoint(db: TaskStore, store: KeyValueStore, budget: CacheBudget | None = None) -> list:
    """What the runtime does: take the changes, apply them to RocksDB."""
    changes = store.changes()
    db.apply({"s": changes}, {"checkpoint_id": 1})
    store.trim()
    if budget is not None:
        budget.relieved()
    return changes


def test_memory_store_tracks_changes_once_and_skips_never_written_keys() -> None:
    store = KeyValueStore(CODEC)
    assert store.get("a") is None
    store.put("a", [1])
    store.put("a", [2])
    store.put("b", [3])
    store.delete("b")  # created and deleted between checkpoints: nothing to write
    assert sorted(store.changes()) == [(b"a", b"[2]")]
    assert store.changes() == []
    store.delete("a")  # persisted: a tombstone
    assert store.changes() == [(b"a", None)]
    assert len(store) == 0 and store.get("a") is None


def test_memory_store_restore_keeps_entries_and_counts() -> None:
    store = KeyValueStore(CODEC)
    seen = list(store.restore([(b"x", b"[1]"), (b"y", b"[2]")]))
    assert seen == [("x", [1]), ("y", [2])]
    assert len(store) == 2 and store.get("y") == [2]
    store.delete("x")
    assert store.changes() == [(b"x", None)]


def test_backed_store_reads_committed_state_after_eviction(db: TaskStore) -> None:
    budget = CacheBudget(limit=40_000)
    store = KeyValueStore(CODEC, db.backend("s"), budget)
    for i in range(1_000):
        store.put(f"k{i:04}", [i])
    assert budget.pressure  # 1,000 dirty entries exceed the budget: nothing is evictable
    assert len(checkpoint(db, store, budget)) == 1_000
    assert budget.used <= budget.limit and not budget.pressure
    for i in range(1_000):  # reads load committed entries, evicting older clean ones
        assert store.get(f"k{i:04}") == [i]
    assert budget.used <= budget.limit
    assert store.cached() < 1_000
    assert not budget.pressure
    store.put("k0000", [-1])
    assert store.get("k0000") == [-1]  # dirty entries are never evicted
    assert len(store) == 1_000


def test_backed_store_scan_merges_cache_and_rocksdb(db: TaskStore) -> None:
    store = KeyValueStore(CODEC, db.backend("s"), CacheBudget())
    for key in ("a", "b", "c"):
        store.put(key, [1])
    checkpoint(db, store)
    store.put("b", [2])  # changed in the cache
    store.delete("c")  # deleted in the cache
    store.put("d", [4])  # new
    assert list(store.items()) == [("a", [1]), ("b", [2]), ("d", [4])]
    assert sorted(checkpoint(db, store)) == [(b"b", b"[2]"), (b"c", None), (b"d", b"[4]")]
    fresh = KeyValueStore(CODEC, db.backend("s"), CacheBudget())
    assert list(fresh.restore(db.items("s"))) == [("a", [1]), ("b", [2]), ("d", [4])]
    assert len(fresh) == 3 and fresh.cached() == 0  # a backed store keeps nothing on restore


def test_blind_put_of_a_committed_key_counts_it_once(db: TaskStore) -> None:
    store = KeyValueStore(CODEC, db.backend("s"), CacheBudget())
    store.put("a", [1])
    checkpoint(db, store)
    again = KeyValueStore(CODEC, db.backend("s"), CacheBudget())
    list(again.restore(db.items("s")))
    again.put("a", [2])
    assert len(again) == 1
    again.delete("a")
    assert again.changes() == [(b"a", None)]


def test_entries_created_and_deleted_between_checkpoints_leave_the_cache(db: TaskStore) -> None:
    """A join's buffered records come and go within a checkpoint interval: they must not fill
    the cache (and evict the entries being read) until the next checkpoint."""
    budget = CacheBudget(limit=200_000)
    store = KeyValueStore(CODEC, db.backend("s"), budget)
    store.put("hot", [0])
    checkpoint(db, store, budget)
    assert store.get("hot") == [0]
    held = budget.used
    for i in range(5_000):  # 5,000 entries x ~300 bytes: far beyond the budget if kept
        store.put(f"r{i:05}", [i])
        store.delete(f"r{i:05}")
    assert budget.used == held and not budget.pressure
    assert store.get_cached("hot") == [0]  # never evicted
    assert len(store) == 1 and store.get("r00001") is None
    assert checkpoint(db, store, budget) == []
    store.put("hot", [1])  # a committed key deleted: a tombstone as before
    store.delete("hot")
    assert checkpoint(db, store, budget) == [(b"hot", None)]


def test_provider_reports_dirty_stores_and_releases_the_budget(db: TaskStore) -> None:
    budget = CacheBudget()
    provider = StoreProvider(db.backend, budget)
    store = provider.store("s", CODEC)
    assert not provider.dirty
    store.put("a", [1])
    assert provider.dirty and budget.used > 0
    provider.release()
    assert budget.used == 0


def test_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        CacheBudget(0)
