"""Reading the status topic ``<group>.status`` (:mod:`kstream.runtime.status_record`;
docs/metrics.md, "Status topic"): what ``kstream status`` and ``kstream top`` show of a running
job without asking the consumer group.

The topic is compacted and keyed ``<host>:<pid>``; reading it from the beginning, the latest
record of each key is the process's status and a tombstone (null value) says the process
stopped cleanly. :class:`StatusBoard` keeps that merge, :func:`read_statuses` reads the topic
once to its end, :class:`StatusFeed` follows it for a live view (each ``poll`` reads only what
arrived since the previous one). :func:`live_tasks` and :func:`job_nodes` combine the fresh
records of a job: who runs each task, and each node summed over the processes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kstream.errors import KStreamError
from kstream.io import kafka
from kstream.runtime.status_record import NodeRow, ProcessStatus, TaskRow, status_topic

log = logging.getLogger("kstream.runtime.status_read")

#: Seconds :func:`read_statuses` keeps reading after every partition signalled its end, for the
#: records a broker reporting too low an end offset (Tansu: the base offset of the last batch)
#: still holds.
SETTLE_S = 0.25


def process_name(status: ProcessStatus) -> str:
    """``<host>:<pid>``: how a process is named in tables and ``owner`` (its record key)."""
    return status.key.decode()


class StatusBoard:
    """The latest status record per process, fed with the topic's records in offset order.

    A record whose value does not parse (:meth:`ProcessStatus.from_json`), or without a key, is
    skipped with a warning on the ``kstream.runtime.status_read`` logger; the previous record
    of its key stays.
    """

    def __init__(self) -> None:
        self._latest: dict[str, ProcessStatus] = {}

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Take one record: a status replaces its key's, a tombstone (None) removes the key."""
        if key is None:
            log.warning("status topic: a record without a key was skipped")
            return
        name = key.decode("utf-8", "replace")
        if value is None:
            self._latest.pop(name, None)
            return
        try:
            self._latest[name] = ProcessStatus.from_json(value)
        except KStreamError as exc:
            log.warning("status topic: the record of %s was skipped: %s", name, exc)

    def statuses(self) -> list[ProcessStatus]:
        """The latest record of each process still there, ordered by key (stale ones too:
        :meth:`ProcessStatus.is_stale` tells them)."""
        return [self._latest[k] for k in sorted(self._latest)]


def _take(board: StatusBoard, msgs: Iterable[Any], pending: set[int] | None = None) -> int:
    """Apply the records among ``msgs`` to ``board``; drop from ``pending`` each partition whose
    end-of-partition event is there; log other errors. Returns the number of records."""
    count = 0
    for msg in msgs:
        if kafka.is_partition_eof(msg):
            if pending is not None:
                pending.discard(msg.partition())
        elif msg.error() is not None:
            log.warning("status topic: %s", kafka.message_error(msg))
        else:
            board.apply(msg.key(), msg.value())
            count += 1
    return count


def _read_to_end(
    reader: kafka.PartitionsReader, board: StatusBoard, partitions: int, timeout_s: float
) -> None:
    """Feed ``board`` until every partition signalled its end and :data:`SETTLE_S` more seconds
    brought nothing, or ``timeout_s`` passed (then with a warning)."""
    deadline = time.monotonic() + timeout_s
    pending = set(range(partitions))
    while pending and time.monotonic() < deadline:
        _take(board, reader.consume(10_000, 0.1), pending)
    while time.monotonic() < deadline and _take(board, reader.consume(10_000, SETTLE_S)):
        pass
    if pending:
        log.warning("status topic: its end was not reached within %.0f s", timeout_s)


def read_statuses(
    bootstrap: str, settings: Mapping[str, Any], prefix: str, timeout_s: float = 10.0
) -> list[ProcessStatus]:
    """The latest status record of each process of group ``prefix``: the topic
    ``<prefix>.status`` read from the beginning to its end (see :class:`StatusBoard`).

    Args:
        bootstrap: the brokers; ``settings``: the pipeline's ``kafka:`` client settings.
        prefix: the job's group id (:attr:`~kstream.graph.plan.Plan.prefix`).
        timeout_s: how long the read may take (seconds); past it, what was read so far.

    Returns:
        One :class:`ProcessStatus` per process key, ordered by key, stale ones included; empty
        when the topic does not exist (the job never ran with a status topic).

    Raises:
        BrokerError: the broker is unreachable.
    """
    topic = status_topic(prefix)
    partitions = kafka.Admin(bootstrap, settings, timeout_s).partitions(topic)
    if partitions is None:
        return []
    board = StatusBoard()
    reader = kafka.PartitionsReader(bootstrap, settings, topic, partitions)
    try:
        _read_to_end(reader, board, partitions, timeout_s)
    finally:
        reader.close()
    return board.statuses()


class StatusFeed:
    """Follows ``<prefix>.status`` for a live view: each :meth:`poll` returns the latest record
    per process, reading only the records that arrived since the previous call (the first
    reads the topic to its end). Until the topic exists, each poll asks the broker whether it
    does (one metadata request) and returns an empty list.

    Args:
        bootstrap, settings, prefix, timeout_s: as :func:`read_statuses`.
    """

    def __init__(
        self, bootstrap: str, settings: Mapping[str, Any], prefix: str, timeout_s: float = 10.0
    ) -> None:
        self.bootstrap, self.settings, self.timeout_s = bootstrap, dict(settings), timeout_s
        self.topic = status_topic(prefix)
        self.board = StatusBoard()
        self._admin: kafka.Admin | None = None
        self._reader: kafka.PartitionsReader | None = None

    def poll(self) -> list[ProcessStatus]:
        """The latest record per process (as :meth:`StatusBoard.statuses`).

        Raises:
            BrokerError: the broker is unreachable.
        """
        if self._reader is None:
            if self._admin is None:
                self._admin = kafka.Admin(self.bootstrap, self.settings, self.timeout_s)
            partitions = self._admin.partitions(self.topic)
            if partitions is None:
                return []
            self._reader = kafka.PartitionsReader(
                self.bootstrap, self.settings, self.topic, partitions
            )
            _read_to_end(self._reader, self.board, partitions, self.timeout_s)
        else:
            while _take(self.board, self._reader.consume(10_000, 0.0)):
                pass
        return self.board.statuses()

    def close(self) -> None:
        """Close the reader (the feed can not be polled after)."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None


def live_tasks(statuses: Sequence[ProcessStatus], now_ms: int) -> dict[str, tuple[str, TaskRow]]:
    """Task id -> ``(<host>:<pid>, its row)`` over the fresh records (stale ones left out) at
    ``now_ms`` (epoch ms); a task listed by several processes (a rebalance in between their
    records): the newest record's."""
    out: dict[str, tuple[str, TaskRow]] = {}
    for status in sorted(statuses, key=lambda s: s.time_ms):
        if status.is_stale(now_ms):
            continue
        for row in status.tasks:
            out[row.task] = (process_name(status), row)
    return out


def job_nodes(statuses: Sequence[ProcessStatus], now_ms: int) -> dict[str, NodeRow]:
    """Node id -> its row summed over the fresh records at ``now_ms`` (epoch ms): counts and
    rates added, the watermark the lowest of those known (None: none known), the kind of the
    first record naming the node. Nodes no fresh record names are absent."""
    out: dict[str, NodeRow] = {}
    for status in statuses:
        if status.is_stale(now_ms):
            continue
        for row in status.nodes:
            seen = out.get(row.node)
            out[row.node] = row if seen is None else _add(seen, row)
    return out


def _add(a: NodeRow, b: NodeRow) -> NodeRow:
    known = [w for w in (a.watermark_ms, b.watermark_ms) if w is not None]
    return NodeRow(
        a.node,
        a.kind,
        a.records_in + b.records_in,
        a.records_out + b.records_out,
        a.late + b.late,
        a.in_per_s + b.in_per_s,
        a.out_per_s + b.out_per_s,
        min(known) if known else None,
    )
