"""The versioned store (kstream.state.versioned): Kafka Streams' VersionedKeyValueStore
semantics (KIP-889), in memory and over real RocksDB through the cache.

Versions of key ``EWR`` (time in ms)::

    time    0    10   20   30   40   50
    EWR     a---------b---------X         (X: tombstone at 40)
    get as of 5 -> a [0, 20); 20 -> b [20, 40); 45 -> None; latest -> None
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kstream.state.cache import CacheBudget, KeyValueStore
from kstream.state.store import TaskStore
from kstream.state.versioned import VersionedRecord, VersionedStore, versions_codec

CODEC = versions_codec(lambda k: k.encode(), lambda b: b.decode())


def versioned(history_ms: int = 1_000) -> VersionedStore[str]:
    return VersionedStore(KeyValueStore(CODEC), history_ms)


def test_a_lookup_returns_the_version_valid_at_that_time() -> None:
    store = versioned()
    assert store.put("EWR", "a", 0) and store.put("EWR", "b", 20) and store.delete("EWR", 40)
    assert store.get("EWR", 5) == VersionedRecord("a", 0, 20)
    assert store.get("EWR", 20) == VersionedRecord("b", 20, 40)
    assert store.get("EWR", 39) == VersionedRecord("b", 20, 40)
    assert store.get("EWR", 45) is None and store.get("EWR") is None
    assert store.get("EWR", -1) is None and store.get("JFK", 10) is None


def test_out_of_order_puts_and_a_put_at_an_existing_time_replaces_it() -> None:
    store = versioned()
    store.put("k", "late", 30)
    store.put("k", "early", 10)
    store.put("k", "early2", 10)
    assert store.get("k", 15) == VersionedRecord("early2", 10, 30)
    assert store.get("k") == VersionedRecord("late", 30, None)


def test_history_retention_prunes_refuses_and_hides_what_is_older() -> None:
    """history 100 ms: once 250 is observed, the horizon is 150; the version valid at 150
    (put at 100) stays, the one before it goes."""
    store = versioned(history_ms=100)
    store.put("k", "v0", 0)
    store.put("k", "v100", 100)
    store.put("k", "v250", 250)
    assert store.horizon == 150
    assert store.store.get("k") == [[100, "v100"], [250, "v250"]]
    assert store.get("k", 160) == VersionedRecord("v100", 100, 250)
    assert store.get("k", 149) is None  # before the horizon: not answered
    assert not store.put("k", "too-old", 120) and store.get("k", 160).value == "v100"


def test_versions_survive_a_checkpoint_eviction_and_a_restart(tmp_path: Path) -> None:
    db = TaskStore(tmp_path / "task", ["v"])
    try:
        budget = CacheBudget(1)  # every clean entry is evicted at once
        store = VersionedStore(KeyValueStore(CODEC, db.backend("v"), budget), 10_000)
        for hour in range(5):
            store.put("LGA", {"visib": hour}, hour * 3_600)
        db.apply({"v": store.store.changes()}, {"checkpoint_id": 1})
        store.store.trim()
        assert store.store.cached() == 0
        assert store.get("LGA", 7_300) == VersionedRecord({"visib": 2}, 7_200, 10_800)
        restarted = VersionedStore(KeyValueStore(CODEC, db.backend("v")), 10_000)
        restarted.observed = store.observed  # the owner checkpoints it
        assert restarted.get("LGA") == VersionedRecord({"visib": 4}, 14_400, None)
    finally:
        db.close()


def test_negative_history_is_refused() -> None:
    with pytest.raises(ValueError, match="history retention"):
        versioned(-1)
