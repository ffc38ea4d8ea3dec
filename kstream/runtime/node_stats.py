"""Per-node counters of a task: records received, records delivered to readers, late records.

The executor (:mod:`kstream.runtime.executor`) keeps one :class:`NodeStats` per node of its
stage (its inputs, operators, ``key_by`` nodes and sinks, a sink as ``sink:<name>``) and counts on
the edges of the graph: a node's ``records_in`` when a record reaches it, the upstream node's
``records_out`` on the edge to its first reader only (every reader of a port gets the same
records). The metrics (``kstream_node_records_in_total``, ...) and the status topic read them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kstream.pipeline.spec import (
    FlatMapSpec,
    KeyBySpec,
    OperatorSpec,
    SinkSpec,
    SourceSpec,
)

Receiver = Callable[[Any, Any, int], None]


class NodeStats:
    """One node's counters in one task (plain ints: the task's thread alone writes them).

    Attributes:
        records_in: records that reached the node; ``records_out``: records it delivered to
            its readers (a sink: records written); ``late``: late records (windows and joins).
    """

    __slots__ = ("late", "max_ts", "records_in", "records_out")

    def __init__(self) -> None:
        self.records_in = 0
        self.records_out = 0
        self.late = 0
        #: a sink's highest record timestamp written (epoch ms; None: none yet)
        self.max_ts: int | None = None

    def as_tuple(self) -> tuple[int, int, int]:
        """``(records_in, records_out, late)``."""
        return (self.records_in, self.records_out, self.late)


def sink_node_id(sink: SinkSpec) -> str:
    """A sink's node id in metrics and the status topic: ``sink:<name>``."""
    return f"sink:{sink.name}"


def node_kind(spec: OperatorSpec | SourceSpec | SinkSpec) -> str:
    """The YAML kind of a node: ``source``, ``filter``, ``map``, ``flat_map``, ``key_by``,
    ``window``, ``union``, ``branch``, ``process``, ``join``, ``sink``."""
    if isinstance(spec, KeyBySpec):
        return "key_by"
    if isinstance(spec, FlatMapSpec):
        return "flat_map"
    return type(spec).__name__.removesuffix("Spec").lower()


def counted(receiver: Receiver, stats: NodeStats | None, upstream: NodeStats | None) -> Receiver:
    """``receiver``, counting each record into ``stats.records_in`` (None: the receiver counts
    its own) and, when this edge is the first reader of its port, into
    ``upstream.records_out``."""
    if stats is None:
        return receiver if upstream is None else _count_out(receiver, upstream)
    if upstream is None:

        def count_in(key: Any, value: Any, ts: int) -> None:
            stats.records_in += 1
            receiver(key, value, ts)

        return count_in

    def count_edge(key: Any, value: Any, ts: int) -> None:
        stats.records_in += 1
        upstream.records_out += 1
        receiver(key, value, ts)

    return count_edge


def _count_out(receiver: Receiver, upstream: NodeStats) -> Receiver:
    def count_out(key: Any, value: Any, ts: int) -> None:
        upstream.records_out += 1
        receiver(key, value, ts)

    return count_out
