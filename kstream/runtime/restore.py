"""Activating a task on assignment: open its store, decide which state is valid, restore it.

Decision (DESIGN.md section 4), with C = the group's committed offsets of the task's input
topic-partitions (one per input; positions are compared input by input):

- a prepared change set whose position equals C was committed but not applied: apply it;
  any other prepared set was never committed: drop it;
- local metadata whose position equals C (and pipeline fingerprint matches): use local state;
- local metadata ahead of C, or C missing: local state is applied only after its transaction
  committed, so it is committed work whose offset commit the broker lost or has not made
  visible yet: use it (so resetting a group also means deleting its state directory);
- no committed offset and no usable local state: the task starts fresh;
- otherwise (no directory, wiped, corrupt, foreign or stale state): clear it and restore from the
  changelog topics, all read in one pass with ``isolation.level=read_committed``: the task
  metadata from the stage's task changelog (or, for checkpoints written before it existed,
  from the first window's changelog), the entries from each store's changelog (a window's
  and its timers').
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from kstream import faults
from kstream.checkpoint.meta import META_KEY, initial_meta
from kstream.errors import StateError, StateLockedError
from kstream.graph.plan import Stage, task_changelog_topic, task_id
from kstream.io.kafka import OnRecords
from kstream.pipeline.checks import (
    DEFAULT_TRANSACTION_TIMEOUT_MS,
    RESTART_ALLOWANCE_MS,
    TIMEOUT_KEY,
)
from kstream.state.store import RocksTuning, TaskStore, legacy_task_dir, task_dir

log = logging.getLogger("kstream.runtime.restore")

#: ``(topics, partition, on_records)``: a changelog reader handing each topic's records, from
#: its beginning up to its end in offset order, batch by batch to ``on_records(topic,
#: records)`` (one read for all of a task's changelogs).
ChangelogReader = Callable[[list[str], int, OnRecords], None]


def open_store(
    state_dir: str,
    pipeline: str,
    stage: Stage,
    partition: int,
    wait_s: float = 20.0,
    tuning: RocksTuning | None = None,
) -> TaskStore:
    """Open the task's RocksDB, waiting up to ``wait_s`` while another local process holds its
    lock (a task moving between processes on one machine).

    Raises:
        StateLockedError: still locked after ``wait_s``.
        StateError: unreadable.
    """
    path = task_dir(state_dir, pipeline, stage.id, partition)
    _migrate(legacy_task_dir(state_dir, pipeline, stage.index, partition), path)
    stores = [ref.column_family for ref in stage.stores]
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return TaskStore(path, stores, tuning)
        except StateLockedError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.2)


Positions = dict[str, int | None]


def meta_positions(meta: dict[str, Any], stage: Stage) -> Positions:
    """The input positions a checkpoint's metadata holds, by topic (``inputs`` since tasks read
    several topics; before, ``position`` of the one input)."""
    inputs = meta.get("inputs")
    if inputs:
        return {t: (inputs.get(t) or {}).get("position") for t in stage.input_topics}
    return {t: meta.get("position") if i == 0 else None for i, t in enumerate(stage.input_topics)}


def with_positions(meta: dict[str, Any], positions: Positions, stage: Stage) -> dict[str, Any]:
    """``meta`` (changed in place and returned) with its input positions set to ``positions``."""
    meta["position"] = positions.get(stage.input_topic)
    for topic, state in (meta.get("inputs") or {}).items():
        state["position"] = positions.get(topic)
    return meta


def _ahead(local: Positions, committed: Positions) -> bool:
    """Local positions at or past the committed ones, and past at least one (or none known)."""
    if any(p is None for p in local.values()):
        return False
    pairs = [(p, committed.get(t)) for t, p in local.items()]
    return all(c is None or (p or 0) >= c for p, c in pairs) and any(
        c is None or (p or 0) > c for p, c in pairs
    )


def _migrate(legacy: Path, path: Path) -> None:
    """Move a task directory named by stage position (older versions) to its stage-id name."""
    if legacy.is_dir() and not path.exists():
        try:
            legacy.rename(path)
        except OSError as exc:
            raise StateError(f"cannot move {legacy} to {path}: {exc}") from exc
        log.info("moved task state %s to %s (directories are named by stage id)", legacy, path)


def recover(
    store: TaskStore,
    committed: Positions,
    fingerprint: str,
    read_changelog: ChangelogReader,
    pipeline: str,
    stage: Stage,
    partition: int,
) -> tuple[dict[str, Any] | None, str]:
    """Bring ``store`` to the committed checkpoint (``committed``: the group's offset of each
    input topic, this partition); returns ``(meta, how)`` where ``how`` is ``fresh``,
    ``local``, ``local-ahead``, ``repaired`` or ``changelog``."""
    faults.point("restore_start")
    known = any(c is not None for c in committed.values())
    prepared = store.read_prepared()
    if prepared is not None:
        changes, meta = prepared
        if known and meta_positions(meta, stage) == committed:
            store.apply(changes, meta)
            store.drop_prepared()
            return meta, "repaired"
        store.drop_prepared()
    try:
        local = store.meta()
    except StateError:
        local = None
    if local is not None and local.get("fingerprint") == fingerprint:
        positions = meta_positions(local, stage)
        if positions == committed:
            return local, "local"
        if _ahead(positions, committed):
            # Local state is applied only after its transaction committed, so it is committed
            # work; a group offset behind it means the broker lost the offset commit (seen on
            # Tansu when a commit races a rebalance). Resume from the local state.
            log.warning(
                "task %s: group offset %s is behind the local checkpoint at %s; "
                "resuming from the local checkpoint",
                task_id(stage, partition),
                committed,
                positions,
            )
            return local, "local-ahead"
    if not known:
        if local is not None:
            store.clear()
        return None, "fresh"
    return _from_changelog(
        store, committed, read_changelog, pipeline, stage, partition
    ), "changelog"


def _from_changelog(
    store: TaskStore,
    committed: Positions,
    read: ChangelogReader,
    pipeline: str,
    stage: Stage,
    partition: int,
) -> dict[str, Any] | None:
    """Rebuild the task's RocksDB from its changelogs, streamed batch by batch into it (the
    state is never held in memory; records applied in order leave the latest value per key),
    then write the checkpoint metadata last: a crash before that leaves no metadata, so the
    next start restores again."""
    faults.point("restore_changelog")
    store.clear()
    task_log = task_changelog_topic(pipeline, stage.id)
    families = {ref.changelog(pipeline): ref.column_family for ref in stage.stores}
    metas: dict[str, bytes | None] = {}

    def on_records(topic: str, records: list[tuple[bytes, bytes | None]]) -> None:
        if topic == task_log:
            metas.update(("task", v) for k, v in records if k == META_KEY)
            return
        # written before the task changelog existed: the metadata travelled with the stores
        metas.update(("store", v) for k, v in records if k == META_KEY)
        store.write_entries(families[topic], [(k, v) for k, v in records if k != META_KEY])

    read([task_log, *families], partition, on_records)
    raw = metas["task"] if "task" in metas else metas.get("store")
    meta: dict[str, Any] | None = orjson.loads(raw) if raw else None
    if meta is None:
        meta = initial_meta(committed.get(stage.input_topic))
        meta["inputs"] = {t: {"position": p} for t, p in committed.items()}
    elif meta_positions(meta, stage) != committed:
        log.warning(
            "changelog of task %s ends at position %s, committed offsets are %s",
            task_id(stage, partition),
            meta_positions(meta, stage),
            committed,
        )
        if not meta.get("inputs"):
            meta["inputs"] = {stage.input_topic: {"position": meta.get("position")}}
        for topic in committed:
            meta["inputs"].setdefault(topic, {})
        with_positions(meta, committed, stage)
    store.apply({}, meta)
    faults.point("restore_done")
    return meta


def store_entries(store: TaskStore, stage: Stage) -> dict[str, Iterator[tuple[bytes, bytes]]]:
    """Every stored entry of the stage's stores, read lazily in key order (operators rebuild
    their small in-memory indexes from them; the state itself stays in RocksDB)."""
    return {ref.column_family: store.items(ref.column_family) for ref in stage.stores}


def check_transaction_timeout(
    settings: dict[str, Any], interval_ms: int, restart_allowance_ms: int = RESTART_ALLOWANCE_MS
) -> None:
    """Refuse a ``transaction.timeout.ms`` that does not comfortably exceed the checkpoint
    interval plus restart time.

    Raises:
        StateError: with the value to configure.
    """
    timeout = int(settings.get(TIMEOUT_KEY, DEFAULT_TRANSACTION_TIMEOUT_MS))
    needed = interval_ms + restart_allowance_ms
    if timeout < needed:
        raise StateError(
            f"kafka transaction.timeout.ms={timeout} is too small for checkpoint interval "
            f"{interval_ms} ms; set it to at least {needed} in the pipeline's kafka: section"
        )
