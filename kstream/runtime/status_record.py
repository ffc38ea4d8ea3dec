"""What each process of a job publishes to the status topic ``<group>.status`` (docs/metrics.md).

Every few seconds (``--status-interval``), each process writes one :class:`ProcessStatus` record
keyed ``<host>:<pid>`` to the compacted topic ``<group>.status``: its tasks (counts, rates,
watermark, lag, state size) and the job's nodes summed over those tasks. A process that stops
cleanly writes a tombstone (value None) for its key. ``kstream status`` and ``kstream top`` read
the topic from the beginning to its end and keep the latest record per key; a record older than
:data:`STALE_INTERVALS` intervals is from a process that died without its tombstone.

The value is JSON (:meth:`ProcessStatus.to_json`), times in epoch ms, rates in records per
second over the last interval, sizes in bytes. ``version`` changes only when a field changes
meaning; readers ignore fields they do not know.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from kstream.errors import KStreamError

#: the record format's version
VERSION = 1
#: a record older than this many of its process's intervals is stale (the process died)
STALE_INTERVALS = 3


def status_topic(prefix: str) -> str:
    """``<group>.status``: the job's status topic (compacted, one partition)."""
    return f"{prefix}.status"


def status_key(host: str, pid: int) -> bytes:
    """The record key of a process: ``<host>:<pid>``."""
    return f"{host}:{pid}".encode()


@dataclass(frozen=True)
class TaskRow:
    """One task of a process.

    Attributes:
        task: ``<stage id>:<partition>``.
        records_in: records read (from sources and repartition topics) since the task started
            in this process; ``records_out``:
            written to sinks; ``late``: late records of its windows and joins.
        in_per_s, out_per_s: records per second over the last interval.
        watermark_ms: the task's watermark (epoch ms; None: none yet).
        lag: records between the task's position and the end of its input partitions (None:
            unknown).
        state_bytes: the task's local state directory (bytes; 0 without local state).
        checkpoint_id, checkpoint_ms: its last checkpoint (None: none yet in this process).
    """

    task: str
    records_in: int = 0
    records_out: int = 0
    late: int = 0
    in_per_s: float = 0.0
    out_per_s: float = 0.0
    watermark_ms: int | None = None
    lag: int | None = None
    state_bytes: int = 0
    checkpoint_id: int | None = None
    checkpoint_ms: int | None = None


@dataclass(frozen=True)
class NodeRow:
    """One node of the job graph, summed over the process's tasks that run it.

    Attributes:
        node: the node id (a source, operator, ``key_by`` or ``sink:<name>``).
        kind: ``source``, ``filter``, ``map``, ``window``, ``join``, ``process``, ``key_by``,
            ``sink``, ... (the YAML kind).
        records_in, records_out: records received and records delivered to its readers (a sink:
            written); ``late``: late records (windows and joins).
        in_per_s, out_per_s: records per second over the last interval.
        watermark_ms: the lowest watermark of the node over the tasks (None: none yet).
    """

    node: str
    kind: str
    records_in: int = 0
    records_out: int = 0
    late: int = 0
    in_per_s: float = 0.0
    out_per_s: float = 0.0
    watermark_ms: int | None = None


@dataclass(frozen=True)
class ProcessStatus:
    """One process's status record (see the module's docstring).

    Attributes:
        pipeline, group: the job; ``host``, ``pid``: the process; ``started_ms``: when it
            started; ``time_ms``: when the record was made; ``interval_ms``: how often it
            publishes.
        phase: what the runner is doing (``running``, ``joining the consumer group``, ...).
        checkpoints, checkpoint_failures: counts in this process; ``cache_bytes``: the state
            cache's estimated use.
        tasks, nodes: see :class:`TaskRow`, :class:`NodeRow`.
        busy_ratio: the part of the last interval the process was not waiting for records
            (0 to 1; None: not measured yet).
    """

    pipeline: str
    group: str
    host: str
    pid: int
    started_ms: int
    time_ms: int
    interval_ms: int
    phase: str = "running"
    checkpoints: int = 0
    checkpoint_failures: int = 0
    cache_bytes: int = 0
    tasks: tuple[TaskRow, ...] = field(default_factory=tuple)
    nodes: tuple[NodeRow, ...] = field(default_factory=tuple)
    version: int = VERSION
    busy_ratio: float | None = None

    @property
    def key(self) -> bytes:
        """The record key (:func:`status_key`)."""
        return status_key(self.host, self.pid)

    def is_stale(self, now_ms: int) -> bool:
        """Whether the record is older than :data:`STALE_INTERVALS` intervals at ``now_ms``."""
        return now_ms - self.time_ms > STALE_INTERVALS * max(self.interval_ms, 1_000)

    def to_json(self) -> bytes:
        """The record's value (UTF-8 JSON)."""
        return orjson.dumps(asdict(self))

    @classmethod
    def from_json(cls, data: bytes) -> ProcessStatus:
        """Parse a record's value.

        Raises:
            KStreamError: ``data`` is not a status record (not JSON, or a field is missing or
                of the wrong kind).
        """
        try:
            body: dict[str, Any] = orjson.loads(data)
            tasks = tuple(TaskRow(**_known(TaskRow, t)) for t in body.get("tasks", ()))
            nodes = tuple(NodeRow(**_known(NodeRow, n)) for n in body.get("nodes", ()))
            fields = _known(cls, body)
            fields.update(tasks=tasks, nodes=nodes)
            return cls(**fields)
        except (orjson.JSONDecodeError, TypeError, AttributeError) as exc:
            raise KStreamError(f"not a kstream status record: {exc}") from exc


def _known(kind: type, body: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``body`` that are fields of dataclass ``kind`` (newer writers may add)."""
    names = kind.__dataclass_fields__  # type: ignore[attr-defined]
    return {k: v for k, v in body.items() if k in names}
