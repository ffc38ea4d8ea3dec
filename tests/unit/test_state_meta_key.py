"""One key for a task's checkpoint metadata, in RocksDB and in the changelogs; local state
written with the key used before (``checkpoint``) is still read, and replaced on the next
checkpoint."""

from __future__ import annotations

from pathlib import Path

import orjson

from kstream.checkpoint import meta as checkpoint_meta
from kstream.state.store import LEGACY_META_KEY, META_CF, META_KEY, TaskStore, read_task_state


def test_changelog_and_local_state_share_the_key() -> None:
    assert checkpoint_meta.META_KEY == META_KEY == b"\x00kstream.meta"


def test_state_written_with_the_legacy_key_is_read_and_migrated(tmp_path: Path) -> None:
    store = TaskStore(tmp_path / "t", ["op.w"])
    try:
        old = {"position": 41, "checkpoint_id": 3}
        store._families[META_CF].put(LEGACY_META_KEY, orjson.dumps(old))
        assert store.meta() == old
        store.apply({"op.w": [(b"k", b"v")]}, {"position": 42, "checkpoint_id": 4})
        assert store._families[META_CF].get(LEGACY_META_KEY) is None
        assert store.meta() == {"position": 42, "checkpoint_id": 4}
    finally:
        store.close()
    meta, stores = read_task_state(tmp_path / "t")
    assert meta == {"position": 42, "checkpoint_id": 4} and stores["op.w"] == [(b"k", b"v")]
