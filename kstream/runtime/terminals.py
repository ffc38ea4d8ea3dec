"""The terminals of a task's graph: the writers of its sinks and of its ``key_by`` nodes'
repartition topics (:class:`~kstream.runtime.executor.NodeExecutor` wires them).

A failed write (an encoder's error, a produce error) follows the node's error policy; the
task's ``out`` counts records written to every sink of a group, ``forwarded`` those written to
repartition topics, and each sink's :class:`~kstream.runtime.node_stats.NodeStats` its records
in and written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from kstream.errors import RecordError
from kstream.io.key_fields import Project
from kstream.pipeline.spec import KeyBySpec
from kstream.runtime.node_stats import NodeStats
from kstream.runtime.policy import BadRecordFailure, Policy

if TYPE_CHECKING:
    from kstream.runtime.executor import TaskHooks

#: ``<origin task id>/<sequence>`` on every repartition data record: the sequence is
#: deterministic (outputs are replayed identically after a rewind), so a downstream task drops
#: records it has already applied — replays after a crash, and aborted records on brokers that
#: do not filter them for read_committed readers (DESIGN.md section 5).
H_SEQ = "kstream.seq"

Receiver = Callable[[Any, Any, int], None]


@dataclass(frozen=True)
class SinkWriter:
    """One sink of a group: its topic, key and value encoders, error policy and counters, and
    its ``key_fields`` projection (:func:`~kstream.io.key_fields.sink_projection`; None: the
    record's key and value as they are)."""

    topic: str
    encode_key: Callable[[Any], bytes | None]
    encode_value: Callable[[Any], bytes | None]
    policy: Policy
    stats: NodeStats
    project: Project | None = None


def sink_writer(hooks: TaskHooks, writers: list[SinkWriter], derived: bool) -> Receiver:
    """Writes each record to every sink of ``writers`` (sinks reading the same inputs) with the
    record's headers; counts ``out`` once per record written everywhere. ``derived``: the
    records are results (of a window, join or process function), not records as read."""
    emit, counters, on_bad, record = hooks.emit, hooks.counters, hooks.on_bad, hooks.record
    plan = [(w.topic, w.encode_key, w.encode_value, w.project, w.policy, w.stats) for w in writers]

    def sink(key: Any, value: Any, ts: int) -> None:
        written = True
        for topic, encode_key, encode_value, project, policy, stats in plan:
            stats.records_in += 1
            try:
                out_key, out = (key, value) if project is None else project(key, value)
                emit(topic, encode_key(out_key), encode_value(out), ts, record.headers, None)
            except BadRecordFailure:
                raise
            except RecordError as exc:  # serialize or produce
                on_bad(exc, policy, derived, key, value)
                written = False
                continue
            stats.records_out += 1
            if stats.max_ts is None or ts > stats.max_ts:
                stats.max_ts = ts
        if written:
            counters["out"] += 1

    return sink


def repartition_writer(
    hooks: TaskHooks,
    key_by: KeyBySpec,
    key_of: Callable[[Any], Any],
    topic: str,
    policy: Policy,
    derived: bool,
) -> Receiver:
    """Writes each record, re-keyed by ``key_of(value)`` (a table's tombstone keeps its key;
    every record keeps it when ``key_by.keep_key``), as JSON to the repartition ``topic`` with
    its :data:`H_SEQ` header (the partition is the murmur2 hash of the new key); counts
    ``forwarded``."""
    emit, counters, on_bad, next_seq = hooks.emit, hooks.counters, hooks.on_bad, hooks.next_seq
    tombstones, keep_key = key_by.tombstones, key_by.keep_key

    def repartition(key: Any, value: Any, ts: int) -> None:
        try:
            kept = keep_key or (tombstones and value is None)
            new_key, body = _dumps(key if kept else key_of(value)), _dumps(value)
            emit(topic, new_key, body, ts, [(H_SEQ, next_seq())], None)
        except BadRecordFailure:
            raise
        except RecordError as exc:  # expression, serialize or produce
            on_bad(exc, policy, derived, key, value)
            return
        counters["forwarded"] += 1

    return repartition


def _dumps(value: Any) -> bytes:
    """JSON for a repartition record; RecordError (``serialize``) when orjson cannot."""
    try:
        return orjson.dumps(value)
    except TypeError as exc:  # orjson.JSONEncodeError: unsupported type, nested too deep
        raise RecordError("serialize", f"cannot encode as JSON: {exc}") from exc
