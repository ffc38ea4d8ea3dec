"""Shared pieces of the state-store tests: a JSON codec with text keys, and a real RocksDB task
store with one column family ``s`` (for a module's fixture: ``yield from task_db(tmp_path)``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from kstream.state.cache import Codec
from kstream.state.store import TaskStore

#: text keys, JSON values
CODEC: Codec[str, Any] = Codec(
    encode_key=lambda k: k.encode(),
    decode_key=lambda b: b.decode(),
    encode_value=orjson.dumps,
    decode_value=orjson.loads,
)


def task_db(tmp_path: Path) -> Iterator[TaskStore]:
    """A task's RocksDB with one store ``s`` under ``tmp_path``, closed after use."""
    store = TaskStore(tmp_path / "task", ["s"])
    yield store
    store.close()
