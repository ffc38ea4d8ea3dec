"""The savepoint directory format (version 2): file names, Avro schemas, records and manifest.

A savepoint is a directory (docs/savepoints.md)::

    manifest.json          written last: what the savepoint holds, with a SHA-256 per file
    tasks.avro             one SavepointTask record per task (its checkpoint metadata)
    node-<id>.avro         one SavepointEntry record per entry of node <id>'s default store
    <store>-<id>.avro      the same for another store of the node (``timers-<id>.avro``)

Everything is named by stable ids (DESIGN.md section 5): nodes by node id, stages by stage id
(the id of the stage's first input node), tasks as ``<stage id>:<partition>``; sources by
source id, each with its topic's next offsets. Version 1 (one source, stages by position,
``op-<id>.avro`` files, no timers) is still read: :mod:`kstream.savepoint.v1` converts its
manifest into this model, and readers convert its records.

The Avro schemas are embedded here and mirrored in ``schemas/savepoint_task.avsc`` and
``schemas/savepoint_entry.avsc`` (a unit test keeps them identical).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from kstream.errors import SavepointError

FORMAT_VERSION = 2
#: Versions this kstream reads (it writes :data:`FORMAT_VERSION`).
READ_VERSIONS = (1, 2)
MANIFEST = "manifest.json"
TASKS_FILE = "tasks.avro"
#: Marker in the name of the temporary directory a savepoint is written into.
PARTIAL = ".partial-"
#: Length of the time prefix of a window store key (biased end + biased start, 8 bytes each).
KEY_PREFIX = 16
#: The ``routing`` of an entry that belongs to its task, not to a record key (a process
#: function's TTL declarations): it stays with its task when a restore keeps the partition
#: count, and is dropped on a rescale (:mod:`kstream.savepoint.reshard`).
TASK_ROUTING = b""

TASK_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "SavepointTask",
    "namespace": "kstream.savepoint",
    "doc": "One task (stage, partition of its input topics) of a kstream savepoint.",
    "fields": [
        {"name": "stage", "type": "string", "doc": "stage id (the id of its first input node)"},
        {"name": "partition", "type": "int", "doc": "partition of the task's input topics"},
        {
            "name": "inputs",
            "type": {"type": "array", "items": "string"},
            "doc": "the topics the task's stage reads, in input order",
        },
        {"name": "meta", "type": "string", "doc": "the task's checkpoint metadata, JSON text"},
    ],
}

ENTRY_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "SavepointEntry",
    "namespace": "kstream.savepoint",
    "doc": "One entry of one state store of a node of a kstream savepoint.",
    "fields": [
        {"name": "stage", "type": "string", "doc": "stage id of the task the entry came from"},
        {"name": "partition", "type": "int", "doc": "partition of the task it came from"},
        {
            "name": "routing",
            "type": "bytes",
            "doc": "JSON of the record key the entry belongs to: re-sharding hashes it",
        },
        {"name": "key", "type": "bytes", "doc": "the raw state-store key"},
        {"name": "value", "type": "bytes", "doc": "the raw state-store value"},
    ],
}


@dataclass(frozen=True)
class TaskSnapshot:
    """One task's checkpoint metadata (``kstream.runtime.task.Task.meta`` plus checkpoint
    fields): stage id, partition, the topics the stage reads."""

    stage: str
    partition: int
    inputs: tuple[str, ...]
    meta: dict[str, Any]

    @property
    def task_id(self) -> str:
        """``"<stage id>:<partition>"``."""
        return f"{self.stage}:{self.partition}"

    @property
    def input_topic(self) -> str:
        """The first topic the task reads."""
        return self.inputs[0]

    def position(self, topic: str) -> int | None:
        """The next offset of input ``topic`` at the checkpoint (None: nothing read yet)."""
        inputs = self.meta.get("inputs")
        if inputs:
            position = (inputs.get(topic) or {}).get("position")
        else:  # one input, before tasks read several topics
            position = self.meta.get("position") if topic == self.inputs[0] else None
        return None if position is None else int(position)


class StateEntry(NamedTuple):
    """One raw entry of a node's state store, from task ``stage:partition``; ``routing`` is
    the JSON-encoded record key it belongs to (what re-sharding hashes)."""

    stage: str
    partition: int
    key: bytes
    value: bytes
    routing: bytes


#: A state entry read from a savepoint (same fields as written).
SavedEntry = StateEntry


@dataclass(frozen=True)
class FileInfo:
    """A data file of the savepoint: ``records`` Avro records, ``bytes`` long."""

    file: str
    records: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class NodeInfo:
    """A stateful node: its stage id, definition (``specview.operator_to_dict``) and a data
    file per store (``""``: the default store; ``timers``; a process function's ``ttl``)."""

    id: str
    stage: str
    definition: dict[str, Any]
    stores: dict[str, FileInfo]

    @property
    def entries(self) -> int:
        """Entries of its default store (windows)."""
        info = self.stores.get("")
        return info.records if info else 0

    @property
    def bytes(self) -> int:
        """Bytes of its data files."""
        return sum(info.bytes for info in self.stores.values())


@dataclass(frozen=True)
class StageInfo:
    """A stage: its id and topological position, the topics it reads and their partition
    count, tasks saved, and the definitions of the ``key_by`` nodes keying its input (empty
    for a stage reading sources)."""

    id: str
    index: int
    inputs: tuple[str, ...]
    partitions: int
    tasks: int
    keyed_by: tuple[dict[str, Any], ...] = ()

    @property
    def input_topic(self) -> str:
        """Its first input topic."""
        return self.inputs[0]


@dataclass(frozen=True)
class SourceInfo:
    """A source: its topic, the topic's partition count, and per partition the next offset to
    read."""

    id: str
    topic: str
    partitions: int
    offsets: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """``manifest.json``. Times are epoch ms; ``total_bytes`` counts the data files (the
    manifest excluded); ``watermarks`` maps task ids (``<stage id>:<partition>``) to
    watermarks (ms)."""

    format_version: int
    pipeline: str
    group: str
    fingerprint: str
    created_ms: int
    kstream_version: str
    nodes: dict[str, NodeInfo]
    tasks: FileInfo
    sources: dict[str, SourceInfo]
    watermarks: dict[str, int]
    stages: tuple[StageInfo, ...]
    total_bytes: int

    @property
    def operators(self) -> dict[str, NodeInfo]:
        """The stateful nodes, by id, in declaration order (the name version 1 used)."""
        return self.nodes

    @property
    def source(self) -> SourceInfo:
        """The first source."""
        return next(iter(self.sources.values()))

    def stage(self, stage_id: str) -> StageInfo | None:
        """The stage with id ``stage_id``."""
        return next((s for s in self.stages if s.id == stage_id), None)

    def files(self) -> list[FileInfo]:
        """Every data file: tasks first, then each node's stores in declaration order."""
        return [self.tasks, *(f for node in self.nodes.values() for f in node.stores.values())]

    def to_dict(self) -> dict[str, Any]:
        """The JSON value written to ``manifest.json``."""
        data = asdict(self)
        for source in data["sources"].values():
            source["offsets"] = {str(p): o for p, o in source["offsets"].items()}
        data["sources"] = {k: _without(v, "id") for k, v in data["sources"].items()}
        data["nodes"] = {k: _without(v, "id") for k, v in data["nodes"].items()}
        data["stages"] = [
            {**s, "inputs": list(s["inputs"]), "keyed_by": list(s["keyed_by"])}
            for s in data["stages"]
        ]
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Manifest:
        """Parse a manifest read from ``where`` (format version 1 or 2).

        Raises:
            SavepointError: unknown format version, or a field is missing or of the wrong type.
        """
        if not isinstance(data, dict):
            raise SavepointError(f"{where}: the manifest is not a JSON object")
        version = data.get("format_version")
        if version not in READ_VERSIONS:
            raise SavepointError(
                f"{where}: unknown savepoint format_version {version!r} (this kstream reads "
                f"versions {', '.join(map(str, READ_VERSIONS))}); use the kstream version that "
                f"wrote it ({data.get('kstream_version', 'unknown')})"
            )
        try:
            if version == 1:
                from kstream.savepoint.v1 import manifest_from_v1

                return manifest_from_v1(data)
            return _parse(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SavepointError(f"{where}: the manifest is malformed ({exc!r})") from exc


def _without(data: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != name}


def header_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The manifest fields every format version has, parsed (``format_version``, ``pipeline``,
    ``group``, ``fingerprint``, ``created_ms``, ``kstream_version``, ``total_bytes``)."""
    return {
        "format_version": int(data["format_version"]),
        "pipeline": str(data["pipeline"]),
        "group": str(data["group"]),
        "fingerprint": str(data["fingerprint"]),
        "created_ms": int(data["created_ms"]),
        "kstream_version": str(data["kstream_version"]),
        "total_bytes": int(data["total_bytes"]),
    }


def _parse(data: dict[str, Any]) -> Manifest:
    return Manifest(
        **header_fields(data),
        nodes={
            str(k): NodeInfo(
                str(k),
                str(v["stage"]),
                dict(v["definition"]),
                {str(s): FileInfo(**f) for s, f in dict(v["stores"]).items()},
            )
            for k, v in dict(data["nodes"]).items()
        },
        tasks=FileInfo(**data["tasks"]),
        sources={
            str(k): SourceInfo(
                str(k),
                str(v["topic"]),
                int(v["partitions"]),
                {int(p): int(o) for p, o in dict(v["offsets"]).items()},
            )
            for k, v in dict(data["sources"]).items()
        },
        watermarks={str(k): int(v) for k, v in dict(data["watermarks"]).items()},
        stages=tuple(
            StageInfo(
                str(s["id"]),
                int(s["index"]),
                tuple(str(t) for t in s["inputs"]),
                int(s["partitions"]),
                int(s["tasks"]),
                tuple(dict(k) for k in s["keyed_by"]),
            )
            for s in data["stages"]
        ),
    )


def store_file(node_id: str, store: str = "") -> str:
    """``node-<id>.avro`` for a node's default store, ``<store>-<id>.avro`` for another (ids
    use only letters, digits, '.', '_' and '-')."""
    return f"{store or 'node'}-{node_id}.avro"


def is_partial(path: Path) -> bool:
    """True for the temporary directory of a savepoint being written (or whose writer died):
    ``.<name>.partial-<pid>``."""
    return path.name.startswith(".") and PARTIAL in path.name


def partial_path(directory: Path, pid: int) -> Path:
    """The temporary sibling directory ``.<name>.partial-<pid>`` a savepoint is written into."""
    return directory.parent / f".{directory.name}{PARTIAL}{pid}"


def partial_owner(path: Path) -> int | None:
    """The writer's pid encoded in a partial directory's name (None when not one)."""
    if not is_partial(path):
        return None
    tail = path.name.rsplit(PARTIAL, 1)[1]
    return int(tail) if tail.isdigit() else None


def file_digest(path: Path) -> tuple[str, int]:
    """``(sha256 hex, size in bytes)`` of a file, read in 1 MiB chunks.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def manifest_text(manifest: Manifest) -> str:
    """The manifest as indented JSON text (ends with a newline)."""
    return json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False) + "\n"
