"""The spec of joins and tables (DESIGN.md section 6; docs/joins.md): a ``join:`` operator and a
source's ``table:``. Pure data like the rest of :mod:`kstream.pipeline.spec`; durations in ms.
"""

from __future__ import annotations

from typing import Literal

from pydantic.dataclasses import dataclass

from kstream.pipeline.spec_base import SPEC_CONFIG, ErrorPolicy, PortRef

JoinType = Literal["interval", "window", "temporal", "lookup"]
JoinHow = Literal["inner", "left", "right", "full"]
JoinWindowType = Literal["tumbling", "sliding", "session"]
#: The sides of a join, in input order: ``inputs[0]`` is the left input, ``inputs[1]`` the right.
SIDES = ("left", "right")


@dataclass(frozen=True, config=SPEC_CONFIG)
class TableSpec:
    """A source read as a table (Kafka Streams ``KTable``, a Flink upsert table): the latest
    value per key.

    ``key`` (an expression over the value) is the row key; a record with a null value (a
    tombstone) deletes the row whose key is the record's Kafka key. ``versioned_ms``: versions
    are kept for this long of event time, for ``temporal`` joins (AS OF). ``broadcast``: every
    process reads every partition of the table's topic and holds the whole table, outside the
    stages (Kafka Streams ``GlobalKTable``); only lookup joins read it, without repartitions.
    """

    key: str
    versioned_ms: int | None = None
    broadcast: bool = False


@dataclass(frozen=True, config=SPEC_CONFIG)
class JoinWindowSpec:
    """The window of a ``window`` join: tumbling (``size_ms``, ``offset_ms``), sliding
    (``size_ms``, ``slide_ms``, ``offset_ms``) or session (``gap_ms``), as for ``window:``."""

    type: JoinWindowType
    size_ms: int | None = None
    slide_ms: int | None = None
    gap_ms: int | None = None
    offset_ms: int = 0


@dataclass(frozen=True, config=SPEC_CONFIG)
class JoinSpec:
    """A two-input join (docs/joins.md): the left input is ``inputs[0]`` (``from:``), the right
    ``inputs[1]`` (``right:``), both partitioned by the join key (the planner inserts the
    repartitions, :mod:`kstream.pipeline.copartition`).

    Attributes:
        type: ``interval`` (``lower_ms <= right.ts - left.ts <= upper_ms``), ``window`` (same
            ``window``), ``temporal`` (AS OF a versioned table), ``lookup`` (a table's latest).
        right_name: the field the right record goes under in the output: the right input's
            node id, or the port's name when ``right:`` names a port (``routed.lga``: ``lga``).
        on_left, on_right: the join key of each side (expressions; the same text when ``on:``
            is one expression).
        how: ``inner``, ``left``, ``right`` or ``full`` (temporal and lookup: inner or left).
        select: ``(field, expression)`` output fields over the joined record (the left fields
            and the right record under ``right_name``); empty: that joined record itself.
        state_ttl_ms: interval joins: a buffered record leaves the buffer once it has been
            held this long of processing time (the state TTL of Flink SQL's regular join,
            ``table.exec.state.ttl``); None: only its cleanup timer removes it.
    """

    id: str
    type: JoinType
    right_name: str = ""
    on_left: str = ""
    on_right: str = ""
    how: JoinHow = "inner"
    lower_ms: int = 0
    upper_ms: int = 0
    window: JoinWindowSpec | None = None
    select: tuple[tuple[str, str], ...] = ()
    state_ttl_ms: int | None = None
    on_error: ErrorPolicy | None = None
    dead_letter_topic: str | None = None
    #: ``(left, right)`` once wired (:mod:`kstream.pipeline.dataflow`); ``(left,)`` once the
    #: planner took a broadcast table out of the graph (:attr:`broadcast_table`)
    inputs: tuple[PortRef, ...] = ()
    #: the id of the broadcast table (a source with ``table: {broadcast: true}``) a lookup join
    #: reads instead of a right input (:mod:`kstream.pipeline.copartition`); None otherwise
    broadcast_table: str | None = None
    #: the YAML key of the kind (discriminates ``AnyOperator``)
    kind: Literal["join"] = "join"

    def on(self, side: str) -> str:
        """The join key expression of ``side`` (``left`` or ``right``)."""
        return self.on_left if side == "left" else self.on_right
