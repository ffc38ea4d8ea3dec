"""Local task state in RocksDB (rocksdict) — the only module that imports rocksdict.

One RocksDB instance per task under ``<state-dir>/<group>/<stage id>.p<partition>/db``, a column
family per state store plus ``meta`` (the checkpoint: input position, watermark state, checkpoint
id, pipeline fingerprint). Updates arrive once per checkpoint as one WriteBatch.

Before a checkpoint's Kafka commit, its change set is written to ``prepared.bin`` (framed, with a
CRC32, fsynced, renamed into place). On open, :meth:`TaskStore.recover` applies it if the
committed input offset says the commit happened, and drops it otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import rocksdict

from kstream.errors import StateError, StateLockedError

Changes = dict[str, list[tuple[bytes, bytes | None]]]
META_CF = "meta"
#: Key of a task's checkpoint metadata, in its RocksDB ``meta`` column family and in its
#: changelogs (one key for both; the leading NUL keeps it apart from any window key).
META_KEY = b"\x00kstream.meta"
#: The key local state used for the metadata before 2026-12: still read, replaced on write.
LEGACY_META_KEY = b"checkpoint"
_MAGIC = b"KSPREP1\n"


def task_dir(state_dir: str | Path, pipeline: str, stage_id: str, partition: int) -> Path:
    """Directory of one task's state: ``<state_dir>/<group>/<stage id>.p<partition>`` (named
    after the stage's id, a node id, never its position)."""
    return Path(state_dir) / pipeline / f"{stage_id}.p{partition}"


def legacy_task_dir(state_dir: str | Path, pipeline: str, stage_index: int, partition: int) -> Path:
    """Where versions before stage ids kept a task's state: ``<stage index>-<partition>``."""
    return Path(state_dir) / pipeline / f"{stage_index}-{partition}"


@dataclass(frozen=True)
class SnapshotRef:
    """A task's snapshot written by its owner for a savepoint request: the task directory
    ``path`` (database in ``path/db``) holding checkpoint ``checkpoint_id`` at input
    ``position`` (next offset)."""

    task: str
    path: str
    position: int
    checkpoint_id: int


def snapshots_dir(state_dir: str | Path, pipeline: str, request_id: str) -> Path:
    """Directory of the task snapshots taken for one savepoint request: each task's
    :meth:`TaskStore.snapshot` goes to ``<this>/<stage>-<partition>`` (a database directory,
    readable with :func:`read_task_state` on its parent layout, see :func:`snapshot_path`)."""
    return Path(state_dir) / pipeline / ".snapshots" / request_id


def snapshot_path(state_dir: str | Path, pipeline: str, request_id: str, task_id: str) -> Path:
    """Task directory of task ``task_id`` (``<stage id>:<partition>``) inside the snapshots of
    a request: ``<stage id>-<partition>``; its database is ``<this>/db``, like a task
    directory."""
    stage, _, partition = task_id.rpartition(":")
    return snapshots_dir(state_dir, pipeline, request_id) / f"{stage}-{partition}"


def _open_read_only(path: Path) -> tuple[Any, list[str]] | None:
    """The task's database opened read-only (no lock taken) with its column families, or None
    when the task has no state here.

    Raises:
        StateError: the files exist but cannot be read.
    """
    db_path = path / "db"
    if not (db_path / "CURRENT").exists():
        return None
    try:
        families = rocksdict.Rdict.list_cf(str(db_path), rocksdict.Options(raw_mode=True))
        db = rocksdict.Rdict(
            str(db_path),
            rocksdict.Options(raw_mode=True),
            column_families={name: rocksdict.Options(raw_mode=True) for name in families},
            access_type=rocksdict.AccessType.read_only(),
        )
    except Exception as exc:
        raise StateError(f"state {path} cannot be read: {exc}") from exc
    return db, families


def read_meta(path: Path) -> dict[str, Any] | None:
    """A task's checkpoint metadata read without taking its lock (read-only open), or None when
    the task has no state here.

    Raises:
        StateError: the files exist but cannot be read.
    """
    meta, _stores = read_task_state(path, stores=False)
    return meta


def read_task_state(
    path: Path, stores: bool = True
) -> tuple[dict[str, Any] | None, dict[str, list[tuple[bytes, bytes]]]]:
    """A task's checkpoint metadata and (with ``stores``) every store's entries, from one
    read-only open (a consistent snapshot: checkpoints are applied as one WriteBatch). Used by
    tools and tests.

    Raises:
        StateError: the files cannot be read.
    """
    opened = _open_read_only(path)
    if opened is None:
        return None, {}
    db, families = opened
    try:
        meta_raw = _meta_value(db.get_column_family(META_CF)) if META_CF in families else None
        entries = {
            name: list(db.get_column_family(name).items())
            for name in families
            if stores and name not in (META_CF, "default")
        }
    finally:
        db.close()
    meta: dict[str, Any] | None = orjson.loads(meta_raw) if meta_raw else None
    return meta, entries


def iter_store(path: Path, store: str, meta: dict[str, Any]) -> Iterator[tuple[bytes, bytes]]:
    """Every entry of column family ``store`` of the task at ``path``, read lazily (read-only,
    no lock; the database is open while the iterator is), provided the task still holds the
    checkpoint whose metadata is ``meta`` (read earlier, e.g. by :func:`read_meta`).

    Raises:
        StateError: the files cannot be read, or the task holds another checkpoint now (its
            job ran meanwhile).
    """
    opened = _open_read_only(path)
    if opened is None:
        raise StateError(f"state {path} is gone")
    db, families = opened
    try:
        raw = _meta_value(db.get_column_family(META_CF)) if META_CF in families else None
        if raw is None or orjson.loads(raw) != meta:
            raise StateError(
                f"state {path} changed while it was read (its job checkpointed meanwhile); "
                "stop the job or take the savepoint from the running job"
            )
        if store in families:
            yield from db.get_column_family(store).items()
    finally:
        db.close()


def _meta_value(family: Any) -> bytes | None:
    """The metadata bytes of a ``meta`` column family (the legacy key as a fallback)."""
    raw: bytes | None = family.get(META_KEY)
    return raw if raw is not None else family.get(LEGACY_META_KEY)


def is_locked(path: Path) -> bool:
    """True when a live process on this machine holds the task's RocksDB lock."""
    import fcntl

    lock = path / "db" / "LOCK"
    if not lock.exists():
        return False
    with open(lock, "a+b") as fh:
        try:
            fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.lockf(fh, fcntl.LOCK_UN)
    return False


def dir_size(path: Path) -> int:
    """Bytes under ``path``."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.path.getsize(os.path.join(root, name))
    return total


@dataclass(frozen=True)
class RocksTuning:
    """The RocksDB knobs kstream exposes (``state: {rocksdb: {...}}``, docs/state.md), in
    bytes, each shared by every task database of the process: ``block_cache`` (reads of state
    not in the Python cache) and ``write_buffer`` (all memtables together, through a RocksDB
    WriteBufferManager; a store's memtable is at most half of it). A bloom filter (10 bits per
    key) makes a miss for an absent key cheap."""

    block_cache: int = 16_000_000
    write_buffer: int = 16_000_000


@functools.cache
def _shared_memory(tuning: RocksTuning) -> tuple[Any, Any]:
    """The process's block cache and write buffer manager for ``tuning`` (one of each, so the
    limits hold for all task databases together, however many tasks the process runs)."""
    return rocksdict.Cache(tuning.block_cache), rocksdict.WriteBufferManager(
        tuning.write_buffer, False
    )


def _options(tuning: RocksTuning) -> rocksdict.Options:
    cache, buffers = _shared_memory(tuning)
    opts = rocksdict.Options(raw_mode=True)
    opts.create_if_missing(True)
    opts.create_missing_column_families(True)
    opts.set_write_buffer_size(max(tuning.write_buffer // 2, 1_000_000))
    opts.set_max_write_buffer_number(2)
    opts.set_write_buffer_manager(buffers)
    table = rocksdict.BlockBasedOptions()
    table.set_bloom_filter(10, False)
    table.set_block_cache(cache)
    opts.set_block_based_table_factory(table)
    return opts


class TaskStore:
    """The RocksDB instance of one task.

    Args:
        path: the task directory (created if missing).
        stores: column families to open besides ``meta``.
        tuning: RocksDB memory knobs (defaults: :class:`RocksTuning`).

    Raises:
        StateError: when another process holds the RocksDB lock (never two writers), or the
            files are corrupt.
    """

    def __init__(self, path: Path, stores: list[str], tuning: RocksTuning | None = None) -> None:
        self.path = path
        self.stores = list(stores)
        path.mkdir(parents=True, exist_ok=True)
        options = _options(tuning or RocksTuning())
        families = {name: options for name in [META_CF, *self.stores]}
        try:
            self._db = rocksdict.Rdict(str(path / "db"), options, column_families=families)
        except Exception as exc:  # rocksdict raises plain Exception subclasses
            text = str(exc)
            if "lock" in text.lower():
                raise StateLockedError(
                    f"state {path} is in use by another process ({text})"
                ) from exc
            raise StateError(f"state {path} cannot be opened: {text}") from exc
        self._handles = {name: self._db.get_column_family_handle(name) for name in families}
        self._families = {name: self._db.get_column_family(name) for name in families}

    def meta(self) -> dict[str, Any] | None:
        """The last applied checkpoint's metadata, or None for a fresh store."""
        raw = _meta_value(self._families[META_CF])
        if raw is None:
            return None
        try:
            meta: dict[str, Any] = orjson.loads(raw)
            return meta
        except orjson.JSONDecodeError as exc:
            raise StateError(f"state {self.path}: checkpoint metadata is corrupt") from exc

    def store_sizes(self) -> dict[str, tuple[int, int]]:
        """Per store (column family): RocksDB's estimated number of keys and its bytes (SST
        files plus memtables), from the properties ``rocksdb.estimate-num-keys``,
        ``rocksdb.total-sst-files-size`` and ``rocksdb.cur-size-all-mem-tables``. Entries still
        in the state cache (not yet checkpointed) are not counted."""
        sizes = {}
        for name, family in self._families.items():
            if name == META_CF:
                continue
            keys = family.property_int_value("rocksdb.estimate-num-keys") or 0
            sst = family.property_int_value("rocksdb.total-sst-files-size") or 0
            mem = family.property_int_value("rocksdb.cur-size-all-mem-tables") or 0
            sizes[name] = (keys, sst + mem)
        return sizes

    def items(self, store: str) -> Iterator[tuple[bytes, bytes]]:
        """Every entry of ``store`` in key order (time order for window stores)."""
        yield from self._families[store].items()

    def backend(self, store: str) -> Any:
        """The committed entries of ``store`` for a :class:`~kstream.state.cache.KeyValueStore`
        (``get(key) -> bytes | None``, ``items()`` in key order): the column family itself,
        read without a copy. Valid until :meth:`close`."""
        return self._families[store]

    def apply(self, changes: Changes, meta: dict[str, Any]) -> None:
        """Apply one checkpoint's changes and metadata atomically (one WriteBatch)."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for store, entries in changes.items():
            self._add(batch, store, entries)
        batch.put(META_KEY, orjson.dumps(meta), self._handles[META_CF])
        batch.delete(LEGACY_META_KEY, self._handles[META_CF])
        self._db.write(batch)

    def clear(self) -> None:
        """Delete every entry (before a restore from the changelog): one range deletion per
        store, from the empty key to just past its last key, without reading the entries."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        for name in [META_CF, *self.stores]:
            cursor = self._families[name].iter()
            cursor.seek_to_last()
            if cursor.valid():
                batch.delete_range(b"", cursor.key() + b"\x00", self._handles[name])
            del cursor
        self._db.write(batch)

    def write_entries(self, store: str, entries: list[tuple[bytes, bytes | None]]) -> None:
        """Apply changelog records of ``store`` in order (None deletes) in one WriteBatch,
        without metadata: a restore streams the changelog through this, then writes the
        metadata last with :meth:`apply`."""
        batch = rocksdict.WriteBatch(raw_mode=True)
        self._add(batch, store, entries)
        self._db.write(batch)

    def _add(self, batch: Any, store: str, entries: list[tuple[bytes, bytes | None]]) -> None:
        """Add ``entries`` of ``store`` to ``batch`` (None: a deletion)."""
        handle = self._handles[store]
        for key, value in entries:
            if value is None:
                batch.delete(key, handle)
            else:
                batch.put(key, value, handle)

    def size_bytes(self) -> int:
        """Approximate on-disk size of the task's state."""
        return dir_size(self.path)

    def snapshot(self, target: Path) -> None:
        """Write a consistent point-in-time copy of the whole database (every store and the
        checkpoint metadata) to the new directory ``target``: a RocksDB checkpoint, made by
        the process that owns the database (hard links to its SST files where possible), so a
        reader never sees a database that is being written or flushed. ``target`` must not
        exist; its parent is created.

        Raises:
            StateError: the checkpoint cannot be written.
        """
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            rocksdict.Checkpoint(self._db).create_checkpoint(str(target))
        except Exception as exc:  # rocksdict raises plain Exception subclasses
            raise StateError(f"state {self.path}: snapshot to {target} failed: {exc}") from exc

    def close(self) -> None:
        """Close the database and release its lock. Column-family objects share the database,
        so they are closed and dropped first; otherwise RocksDB keeps the lock in this process."""
        for family in self._families.values():
            with contextlib.suppress(Exception):
                family.close()
        self._families = {}
        self._handles = {}
        with contextlib.suppress(Exception):
            self._db.close()

    # -- prepared change set ------------------------------------------------------------------

    @property
    def prepared_path(self) -> Path:
        return self.path / "prepared.bin"

    def write_prepared(self, changes: Changes, meta: dict[str, Any]) -> None:
        """Write the change set durably (fsync + atomic rename) before the Kafka commit."""
        body = _encode_changes(changes, meta)
        tmp = self.path / "prepared.tmp"
        with open(tmp, "wb") as fh:
            fh.write(_MAGIC + struct.pack(">I", zlib.crc32(body)) + body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.prepared_path)

    def read_prepared(self) -> tuple[Changes, dict[str, Any]] | None:
        """The prepared change set, or None if absent. A torn or corrupt file counts as absent
        (it was never renamed into place, so its commit cannot have been attempted)."""
        try:
            data = self.prepared_path.read_bytes()
        except FileNotFoundError:
            return None
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 4:
            return None
        (crc,) = struct.unpack(">I", data[len(_MAGIC) : len(_MAGIC) + 4])
        body = data[len(_MAGIC) + 4 :]
        if zlib.crc32(body) != crc:
            return None
        return _decode_changes(body)

    def drop_prepared(self) -> None:
        """Remove the prepared change set (after apply, or when its commit did not happen)."""
        with contextlib.suppress(FileNotFoundError):
            self.prepared_path.unlink()


def _encode_changes(changes: Changes, meta: dict[str, Any]) -> bytes:
    parts = [_frame(orjson.dumps(meta))]
    for store, entries in changes.items():
        parts.append(_frame(store.encode()) + struct.pack(">I", len(entries)))
        for key, value in entries:
            parts.append(_frame(key))
            parts.append(b"\x00" if value is None else b"\x01" + _frame(value))
    return b"".join(parts)


def _frame(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def _decode_changes(body: bytes) -> tuple[Changes, dict[str, Any]]:
    view = memoryview(body)
    pos = 0

    def take() -> bytes:
        nonlocal pos
        (size,) = struct.unpack_from(">I", view, pos)
        pos += 4 + size
        return bytes(view[pos - size : pos])

    meta = orjson.loads(take())
    changes: Changes = {}
    while pos < len(view):
        store = take().decode()
        (count,) = struct.unpack_from(">I", view, pos)
        pos += 4
        entries: list[tuple[bytes, bytes | None]] = []
        for _ in range(count):
            key = take()
            flag = view[pos]
            pos += 1
            entries.append((key, take() if flag else None))
        changes[store] = entries
    return changes, meta
