"""Savepoints: portable, versioned snapshots of a job's state (DESIGN.md section 4,
docs/savepoints.md). This package's top level is the public API; the work is done in ``format``
(layout, schemas, manifest), ``write``, ``read``, ``view`` (decoding windows), ``compat``
(restore rules) and ``reshard`` (seeding tasks from a savepoint).

Writing (used by ``kstream savepoint create``)::

    tasks, entries = snapshot_local(spec, ".kstream-state")
    # or, from any machine, the job's changelog topics (processes on several machines):
    tasks, entries = snapshot_changelogs(spec, "broker:9092")
    manifest = write_savepoint(Path("savepoints/sp1"), spec, tasks, entries)

Reading, e.g. from a notebook::

    from kstream.savepoint import open_savepoint

    sp = open_savepoint("savepoints/flights-hourly-20240101T120000Z")
    print(sp.manifest.sources["flights"].offsets)   # source id -> {partition: next offset}
    for window in sp.windows("hourly", key="JFK"):
        print(window)   # {"key": "JFK", "window_start": ..., "window_end": ..., "flights": 12, ...}

Restoring (used by ``kstream run --from-savepoint``)::

    sp = open_savepoint(path)                   # verifies every file's SHA-256
    notes = check_restore(sp.manifest, spec, allow_non_restored_state=False)
    for task in sp.tasks(): ...                 # TaskSnapshot(stage id, partition, inputs, meta)
    for entry in sp.entries("hourly"): ...      # SavedEntry(stage, partition, key, value, routing)
    for timer in sp.entries("hourly", "timers"): ...
"""

from __future__ import annotations

from kstream.savepoint.changelog_snapshot import (
    behind_committed,
    group_offsets,
    snapshot_changelogs,
)
from kstream.savepoint.compat import check_restore, definition_changes
from kstream.savepoint.format import (
    ENTRY_SCHEMA,
    FORMAT_VERSION,
    MANIFEST,
    READ_VERSIONS,
    TASK_SCHEMA,
    FileInfo,
    Manifest,
    NodeInfo,
    SavedEntry,
    SourceInfo,
    StageInfo,
    StateEntry,
    TaskSnapshot,
    is_partial,
)
from kstream.savepoint.read import (
    Savepoint,
    SavepointSummary,
    dispose,
    list_savepoints,
    load_manifest,
    open_savepoint,
)
from kstream.savepoint.snapshot import local_checkpoints, snapshot_local
from kstream.savepoint.view import OperatorSummary, aggregator_for, summarize
from kstream.savepoint.write import write_savepoint

__all__ = [
    "ENTRY_SCHEMA",
    "FORMAT_VERSION",
    "MANIFEST",
    "READ_VERSIONS",
    "TASK_SCHEMA",
    "FileInfo",
    "Manifest",
    "NodeInfo",
    "OperatorSummary",
    "SavedEntry",
    "Savepoint",
    "SavepointSummary",
    "SourceInfo",
    "StageInfo",
    "StateEntry",
    "TaskSnapshot",
    "aggregator_for",
    "behind_committed",
    "check_restore",
    "definition_changes",
    "dispose",
    "group_offsets",
    "is_partial",
    "list_savepoints",
    "load_manifest",
    "local_checkpoints",
    "open_savepoint",
    "snapshot_changelogs",
    "snapshot_local",
    "summarize",
    "write_savepoint",
]
