"""The savepoint directory format (version 1): file names, Avro schemas, records and manifest.

A savepoint is a directory (docs/savepoints.md)::

    manifest.json        written last: what the savepoint holds, with a SHA-256 per file
    tasks.avro           one SavepointTask record per task (its checkpoint metadata)
    op-<operator>.avro   one SavepointEntry record per state entry of one stateful operator

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

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TASKS_FILE = "tasks.avro"
#: Marker in the name of the temporary directory a savepoint is written into.
PARTIAL = ".partial-"
#: Length of the time prefix of a window store key (biased end + biased start, 8 bytes each).
KEY_PREFIX = 16

TASK_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "SavepointTask",
    "namespace": "kstream.savepoint",
    "doc": "One task (stage, input partition) of a kstream savepoint.",
    "fields": [
        {"name": "stage", "type": "int", "doc": "stage index (0 reads the source topic)"},
        {"name": "partition", "type": "int", "doc": "input partition of the task"},
        {"name": "input_topic", "type": "string", "doc": "topic the task's stage reads"},
        {"name": "meta", "type": "string", "doc": "the task's checkpoint metadata, JSON text"},
    ],
}

ENTRY_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "SavepointEntry",
    "namespace": "kstream.savepoint",
    "doc": "One state entry of one stateful operator of a kstream savepoint.",
    "fields": [
        {"name": "stage", "type": "int", "doc": "stage of the task the entry came from"},
        {"name": "partition", "type": "int", "doc": "partition of the task it came from"},
        {
            "name": "routing",
            "type": "bytes",
            "doc": "JSON of the record key (store key without its 16-byte time prefix): "
            "re-sharding hashes it",
        },
        {"name": "key", "type": "bytes", "doc": "the raw state-store key"},
        {"name": "value", "type": "bytes", "doc": "the raw state-store value (JSON)"},
    ],
}


@dataclass(frozen=True)
class TaskSnapshot:
    """One task's checkpoint metadata (``kstream.runtime.task.Task.meta`` plus checkpoint
    fields)."""

    stage: int
    partition: int
    input_topic: str
    meta: dict[str, Any]

    @property
    def task_id(self) -> str:
        """``"<stage>:<partition>"``."""
        return f"{self.stage}:{self.partition}"


class StateEntry(NamedTuple):
    """One raw state entry of an operator, from task ``stage:partition``."""

    stage: int
    partition: int
    key: bytes
    value: bytes

    @property
    def routing(self) -> bytes:
        """The JSON-encoded record key (what re-sharding hashes)."""
        return self.key[KEY_PREFIX:]


class SavedEntry(NamedTuple):
    """A state entry read from a savepoint, with its stored ``routing`` bytes."""

    stage: int
    partition: int
    key: bytes
    value: bytes
    routing: bytes


@dataclass(frozen=True)
class FileInfo:
    """A data file of the savepoint: ``records`` Avro records, ``bytes`` long."""

    file: str
    records: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class OperatorInfo:
    """A stateful operator: its stage, definition (``specview.operator_to_dict``) and file."""

    id: str
    stage: int
    definition: dict[str, Any]
    file: str
    entries: int
    bytes: int
    sha256: str

    def file_info(self) -> FileInfo:
        """The operator's data file."""
        return FileInfo(self.file, self.entries, self.bytes, self.sha256)


@dataclass(frozen=True)
class StageInfo:
    """A stage: input topic and its partition count, tasks saved, and the ``key_by``
    definition that keys its input (None for stage 0)."""

    index: int
    input_topic: str
    partitions: int
    tasks: int
    keyed_by: dict[str, Any] | None = None


@dataclass(frozen=True)
class SourceInfo:
    """The source topic, its partition count, and per partition the next offset to read."""

    topic: str
    partitions: int
    offsets: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """``manifest.json``. Times are epoch ms; ``total_bytes`` counts the data files (the
    manifest excluded); ``watermarks`` maps task ids (``stage:partition``) to watermarks (ms)."""

    format_version: int
    pipeline: str
    group: str
    fingerprint: str
    created_ms: int
    kstream_version: str
    operators: dict[str, OperatorInfo]
    tasks: FileInfo
    source: SourceInfo
    watermarks: dict[str, int]
    stages: tuple[StageInfo, ...]
    total_bytes: int

    def files(self) -> list[FileInfo]:
        """Every data file: tasks first, then the operators in declaration order."""
        return [self.tasks, *(op.file_info() for op in self.operators.values())]

    def to_dict(self) -> dict[str, Any]:
        """The JSON value written to ``manifest.json``."""
        data = asdict(self)
        data["source"]["offsets"] = {str(p): o for p, o in self.source.offsets.items()}
        data["operators"] = {k: _without(v, "id") for k, v in data["operators"].items()}
        data["stages"] = list(data["stages"])
        return data

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Manifest:
        """Parse a manifest read from ``where``.

        Raises:
            SavepointError: unknown format version, or a field is missing or of the wrong type.
        """
        if not isinstance(data, dict):
            raise SavepointError(f"{where}: the manifest is not a JSON object")
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise SavepointError(
                f"{where}: unknown savepoint format_version {version!r} (this kstream reads "
                f"version {FORMAT_VERSION}); use the kstream version that wrote it "
                f"({data.get('kstream_version', 'unknown')})"
            )
        try:
            return _parse(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SavepointError(f"{where}: the manifest is malformed ({exc!r})") from exc


def _without(data: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != name}


def _parse(data: dict[str, Any]) -> Manifest:
    source = data["source"]
    return Manifest(
        format_version=int(data["format_version"]),
        pipeline=str(data["pipeline"]),
        group=str(data["group"]),
        fingerprint=str(data["fingerprint"]),
        created_ms=int(data["created_ms"]),
        kstream_version=str(data["kstream_version"]),
        operators={
            str(k): OperatorInfo(id=str(k), **v) for k, v in dict(data["operators"]).items()
        },
        tasks=FileInfo(**data["tasks"]),
        source=SourceInfo(
            str(source["topic"]),
            int(source["partitions"]),
            {int(p): int(o) for p, o in dict(source["offsets"]).items()},
        ),
        watermarks={str(k): int(v) for k, v in dict(data["watermarks"]).items()},
        stages=tuple(StageInfo(**s) for s in data["stages"]),
        total_bytes=int(data["total_bytes"]),
    )


def operator_file(operator_id: str) -> str:
    """``op-<operator-id>.avro`` (ids use only letters, digits, '.', '_' and '-')."""
    return f"op-{operator_id}.avro"


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
