"""The on-disk routing of savepoint entries to new tasks (kstream.savepoint.spill): every entry
comes back once, in order, for its target only, across buffer flushes."""

from __future__ import annotations

from pathlib import Path

from kstream.savepoint import spill
from kstream.savepoint.spill import EntrySpill


def test_entries_come_back_by_target_in_order_across_flushes() -> None:
    store = EntrySpill()
    value = b"v" * 1000  # ~65 entries per flush of a 64 KB buffer
    for i in range(500):
        store.add(("by-key", i % 3, "op.w"), f"k{i}".encode(), value + str(i).encode())
    store.add(("by-key", 0, "op.w.timers"), b"t", b"")
    store.finish()
    for p in range(3):
        got = list(store.read(("by-key", p, "op.w")))
        assert [k for k, _ in got] == [f"k{i}".encode() for i in range(p, 500, 3)]
        assert all(v == value + k[1:] for k, v in got)
    assert list(store.read(("by-key", 0, "op.w.timers"))) == [(b"t", b"")]
    assert store.column_families("by-key", 0) == ["op.w", "op.w.timers"]
    assert store.column_families("by-key", 7) == [] and list(store.read(("x", 0, "y"))) == []
    assert sum(1 for _ in store.read(("by-key", 1, "op.w"))) == 167


def test_close_removes_the_files() -> None:
    store = EntrySpill()
    store.add(("s", 0, "cf"), b"k", b"v" * spill.BUFFER_BYTES)
    store.finish()
    directory = Path(store._dir.name)
    assert any(directory.iterdir())
    store.close()
    assert not directory.exists()
