"""The ``operators:`` items of a pipeline file as pydantic models (see
:mod:`kstream.pipeline.model`).

An item holds one operator key (:data:`OPERATOR_KINDS`) plus the common :data:`ITEM_KEYS`;
:data:`OperatorItem` is the union of the item models discriminated by that key. A ``window`` is
a union of one model per window ``type``, so each type lists only its own keys
(:data:`WINDOW_MODELS`, from which :mod:`kstream.pipeline.windows` derives its key tables).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, Discriminator, Field, StrictBool, StrictInt, Tag

from kstream.pipeline.model_base import (
    Duration,
    Expression,
    FileModel,
    Name,
    PositiveInt,
    PythonRef,
    Text,
    absent,
    keys_of,
    members,
)
from kstream.pipeline.model_joins import JoinBody
from kstream.pipeline.spec import Accumulation, EmitMode, ErrorPolicy, LateRule

__all__ = [
    "AGGREGATION_KEYS",
    "ITEM_KEYS",
    "ITEM_MODELS",
    "OPERATOR_KINDS",
    "WINDOW_MODELS",
    "OperatorItem",
]

#: A top-level field name (no ``.``, no surrounding blanks).
FieldName = Annotated[str, Field(pattern=r"^[^.\s]([^.]*[^.\s])?$")]
#: An aggregation (result field) name: an identifier.
AGGREGATION_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
AggregationName = Annotated[str, Field(pattern=AGGREGATION_NAME_PATTERN)]


class OperatorItemBase(FileModel):
    """The keys every operator item may hold besides its operator key."""

    id: Name | StrictInt = absent("The node id (default: <kind>-<index>).")
    from_: Text = absent(
        "The input: a node or node.port; default: the previous item.", alias="from"
    )
    on_error: ErrorPolicy = absent("Errors raised in this operator; default: the source's.")
    dead_letter_topic: Name = absent("Where bad records go (with on_error: dead_letter).")


class FilterBody(FileModel):
    """A filter's condition: an expression or a Python function."""

    one_of = ("expr", "python")
    expr: Expression = absent("Keep the records for which this expression is true.")
    python: PythonRef = absent("module:function returning whether to keep the value.")
    otherwise: Literal["drop", "delete"] = absent(
        "A failing record is dropped (drop, the default) or becomes a tombstone (delete)."
    )


class FilterItem(OperatorItemBase):
    """Keep the records for which a condition holds."""

    filter: Expression | FilterBody
    """An expression, or {python: module:function}."""


class MapBody(FileModel):
    """Reshape the value: keep `select` fields, then set computed `fields`; or `python`."""

    select: list[Text] = absent("The fields to keep (default: all).")
    fields: dict[str, Expression] = absent("New or replaced fields: name -> expression.")
    python: PythonRef = absent("module:function returning the new value.")


class MapItem(OperatorItemBase):
    """Reshape each record's value."""

    map: MapBody
    """{select: [fields], fields: {name: expression}} or {python: module:function}."""


class FlatMapBody(FileModel):
    """`{python: module:function}` or `{explode: EXPR, as: FIELD}`."""

    one_of = ("python", "explode")
    python: PythonRef = absent("module:function returning an iterable of values.")
    explode: Expression = absent("An expression giving a list: one record per element.")
    as_: FieldName = absent("The field that receives each element (with explode).", alias="as")
    keep_empty: StrictBool = False
    """A null or empty list emits the value once, with `as` null."""


class FlatMapItem(OperatorItemBase):
    """One record in, zero or more out."""

    flat_map: FlatMapBody
    """{explode: expression, as: field} or {python: module:function}."""


class KeyByBody(FileModel):
    """The new key and the repartition topic's partition count."""

    one_of = ("expr", "python")
    expr: Expression = absent("The new key, an expression.")
    python: PythonRef = absent("module:function returning the new key.")
    partitions: PositiveInt = absent("Partitions of the repartition topic.")


class KeyByItem(OperatorItemBase):
    """Re-key the records and repartition them through a topic."""

    key_by: Expression | KeyByBody
    """An expression (e.g. a field name), or {expr or python, partitions}."""


class UnionItem(OperatorItemBase):
    """The records of every input, unchanged; the watermark is the minimum of the inputs."""

    union: Annotated[list[Text], Field(min_length=2)]
    """Two or more inputs: node or node.port."""


class BranchItem(OperatorItemBase):
    """Route each record to the first port whose condition holds."""

    branch: Annotated[dict[str, Expression], Field(min_length=1)]
    """`port: condition` pairs, in order; `default: port` takes the other records."""


class Trigger(FileModel):
    """Early firing of a window."""

    one_of = ("every", "count")
    every: Duration = absent("Fire every this long (processing time).")
    count: PositiveInt = absent("Fire after this many elements.")


class AggregationBody(FileModel):
    """One aggregation: `{kind: expression}` or `{python: module:Class}`."""

    one_of = (
        "count", "sum", "min", "max", "avg", "first", "last", "first_arrived", "last_arrived",
        "count_distinct", "collect", "python",
    )  # fmt: skip
    count: Expression = absent("Number of records where the expression is not null.")
    sum: Expression = absent("Sum of the expression.")
    min: Expression = absent("Minimum of the expression.")
    max: Expression = absent("Maximum of the expression.")
    avg: Expression = absent("Average of the expression.")
    first: Expression = absent("The value with the smallest event time.")
    last: Expression = absent("The value with the largest event time.")
    first_arrived: Expression = absent(
        "The first non-null value to arrive (Flink SQL FIRST_VALUE)."
    )
    last_arrived: Expression = absent("The last non-null value to arrive (Flink SQL LAST_VALUE).")
    count_distinct: Expression = absent("Number of distinct values.")
    collect: Expression = absent("The list of the values.")
    python: PythonRef = absent("A user-defined aggregate: module:Class.")


Aggregate = Annotated[
    dict[AggregationName, Literal["count"] | AggregationBody], Field(min_length=1)
]
_AGGREGATE = "Result field -> aggregation: count, {avg: expr}, {python: module:Class}, ..."
_LATENESS = "How long after its end a window still takes late elements (a duration)."
_LATE_TOPIC = "Topic for the elements later than the allowed lateness."
_EMIT = "final, update (each change) or changelog."
_ACCUMULATION = "accumulating, or discarding (each firing purges the window)."
_TRIGGER = "Early firing: {every: 10s} or {count: 100}."
_TYPE = "The window type: tumbling, sliding, cumulate, session, count or global."
_LATE_RULE = (
    "When an element is late: datastream (every window that would take it has fired, Flink "
    "DataStream) or sql (the first of them has fired, Flink SQL's window aggregation)."
)
_OFFSET = "Shift of the window boundaries (a duration; may be negative)."


#: The description of ``state_ttl`` (global windows, top_n, interval joins).
_STATE_TTL = (
    "Idle state retention (processing time, Flink's table.exec.state.ttl): a key's state not "
    "written for this long is dropped (default: kept)."
)


class TumblingWindow(FileModel):
    """Fixed-size, non-overlapping windows (docs/time-and-windows.md)."""

    type: Literal["tumbling"] = Field(description=_TYPE)
    size: Duration = Field(description="The window length (10s, 5m, 1h, ... or ms).")
    offset: Duration = Field(0, description=_OFFSET)
    allowed_lateness: Duration = Field(0, description=_LATENESS)
    late_topic: Name = absent(_LATE_TOPIC)
    emit: EmitMode = Field("final", description=_EMIT)
    accumulation: Accumulation = Field("accumulating", description=_ACCUMULATION)
    trigger: Trigger = absent(_TRIGGER)
    aggregate: Aggregate = Field(description=_AGGREGATE)


class SlidingWindow(FileModel):
    """Fixed-size windows, one starting every `slide`."""

    type: Literal["sliding"] = Field(description=_TYPE)
    size: Duration = Field(description="The window length.")
    slide: Duration = Field(description="The time between window starts (<= size).")
    offset: Duration = Field(0, description=_OFFSET)
    late_rule: LateRule = Field("datastream", description=_LATE_RULE)
    allowed_lateness: Duration = Field(0, description=_LATENESS)
    late_topic: Name = absent(_LATE_TOPIC)
    emit: EmitMode = Field("final", description=_EMIT)
    accumulation: Accumulation = Field("accumulating", description=_ACCUMULATION)
    trigger: Trigger = absent(_TRIGGER)
    aggregate: Aggregate = Field(description=_AGGREGATE)


class CumulateWindow(FileModel):
    """Windows growing by `step` from a common start up to `size` (Flink SQL's CUMULATE)."""

    type: Literal["cumulate"] = Field(description=_TYPE)
    size: Duration = Field(description="The largest window's length (a multiple of step).")
    step: Duration = Field(description="How much each window is longer than the previous one.")
    offset: Duration = Field(0, description=_OFFSET)
    late_rule: LateRule = Field("datastream", description=_LATE_RULE)
    allowed_lateness: Duration = Field(0, description=_LATENESS)
    late_topic: Name = absent(_LATE_TOPIC)
    emit: EmitMode = Field("final", description=_EMIT)
    accumulation: Accumulation = Field("accumulating", description=_ACCUMULATION)
    trigger: Trigger = absent(_TRIGGER)
    aggregate: Aggregate = Field(description=_AGGREGATE)


class SessionWindow(FileModel):
    """Windows of activity, closed by a gap of inactivity."""

    type: Literal["session"] = Field(description=_TYPE)
    gap: Duration = Field(description="The inactivity that closes a session.")
    allowed_lateness: Duration = Field(0, description=_LATENESS)
    late_topic: Name = absent(_LATE_TOPIC)
    emit: EmitMode = Field("final", description=_EMIT)
    accumulation: Accumulation = Field("accumulating", description=_ACCUMULATION)
    trigger: Trigger = absent(_TRIGGER)
    aggregate: Aggregate = Field(description=_AGGREGATE)


class CountWindow(FileModel):
    """Windows of a key's last `size` elements, firing every `slide` elements."""

    type: Literal["count"] = Field(description=_TYPE)
    size: PositiveInt = Field(description="Elements per window (a number, not a duration).")
    slide: PositiveInt = absent("Elements between two firings (default: size).")
    emit: EmitMode = Field("final", description=_EMIT)
    accumulation: Accumulation = Field("accumulating", description=_ACCUMULATION)
    aggregate: Aggregate = Field(description=_AGGREGATE)


class GlobalWindow(FileModel):
    """One running aggregate per key, closed only by the end of input."""

    type: Literal["global"] = Field(description=_TYPE)
    emit: EmitMode = Field("update", description=_EMIT)
    trigger: Trigger = absent(_TRIGGER)
    state_ttl: Duration = absent(_STATE_TTL)
    aggregate: Aggregate = Field(description=_AGGREGATE)


Window = Annotated[
    TumblingWindow | SlidingWindow | CumulateWindow | SessionWindow | CountWindow | GlobalWindow,
    Field(discriminator="type"),
]


class WindowItem(OperatorItemBase):
    """A keyed window with aggregations; its `id` (required) names its state."""

    id: Name | StrictInt
    """The node id; it names the window's state across restarts."""
    window: Window
    """The window: its `type`, its size, its aggregations, ..."""


class StateDeclaration(FileModel):
    """The long form of a declared state: its kind and a time-to-live."""

    kind: Literal["value", "list", "map"] = Field(description="value, list or map.")
    ttl: Duration = absent("Entries expire this long after their last write (a duration).")
    time: Literal["event", "processing"] = Field(
        "event", description="What the ttl is measured in: event time or processing time."
    )


class ProcessBody(FileModel):
    """A keyed process function (docs/process-functions.md)."""

    python: PythonRef = Field(description="The process function: module:Class.")
    state: dict[Name, Literal["value", "list", "map"] | StateDeclaration] = absent(
        "Declared state: name -> value, list, map or {kind, ttl, time}."
    )
    ports: list[Name] = absent("Side-output ports, read with from: <id>.<port>.")


class ProcessItem(OperatorItemBase):
    """A keyed process function after a key_by; its `id` (required) names its state."""

    id: Name | StrictInt
    """The node id; it names the function's state across restarts."""
    process: ProcessBody
    """{python: module:Class, state: {name: value|list|map}, ports: [port, ...]}."""


class DedupBody(FileModel):
    """Keep a key's first record per interval of event time."""

    within: Duration = Field(description="Later records of the key within this long are dropped.")


class DedupItem(OperatorItemBase):
    """Drop a key's records within `within` of its last kept one (after a key_by)."""

    id: Name | StrictInt
    """The node id; it names the dedup state across restarts."""
    dedup: DedupBody
    """{within: 1h}."""


class TopNBody(FileModel):
    """Rank the latest record of each row of a key; emit the first n as they change."""

    n: PositiveInt = Field(description="How many rows per key are ranked and emitted.")
    row_key: Expression = absent(
        "The row a record updates (its latest record); default: each record is a new row."
    )
    order: list[Text] = Field(description="Fields, most significant first: 'f DESC', 'g'.")
    rank: Name = Field("rn", description="The field that gets the row's rank (1 = first).")
    state_ttl: Duration = absent(_STATE_TTL)


class TopNItem(OperatorItemBase):
    """Per key, the first n rows by an order, as updates (after a key_by)."""

    id: Name | StrictInt
    """The node id; it names the ranking's state across restarts."""
    top_n: TopNBody
    """{n: 3, row_key: dest, order: [flights DESC, dest]}."""


class JoinItem(OperatorItemBase):
    """A join of two inputs by key (docs/joins.md); its `id` (required) names its state."""

    id: Name | StrictInt
    """The node id; it names the join's state across restarts."""
    join: JoinBody
    """{type, right, on, how, between or window, select}."""


def _item_kind(value: Any) -> str | None:
    """The operator key of an item: its first key that names an operator kind."""
    keys = value.keys() if isinstance(value, dict) else type(value).model_fields
    return next((key for key in keys if key in OPERATOR_KINDS), None)


OperatorItem = Annotated[
    Annotated[FilterItem, Tag("filter")]
    | Annotated[MapItem, Tag("map")]
    | Annotated[FlatMapItem, Tag("flat_map")]
    | Annotated[KeyByItem, Tag("key_by")]
    | Annotated[WindowItem, Tag("window")]
    | Annotated[UnionItem, Tag("union")]
    | Annotated[BranchItem, Tag("branch")]
    | Annotated[ProcessItem, Tag("process")]
    | Annotated[JoinItem, Tag("join")]
    | Annotated[DedupItem, Tag("dedup")]
    | Annotated[TopNItem, Tag("top_n")],
    Discriminator(
        _item_kind,
        custom_error_type="operator_kind",
        custom_error_message="an operator item needs one operator key (filter, map, ...)",
    ),
]

#: The operator kinds (their YAML keys) -> item model, in the order of :data:`OperatorItem`.
ITEM_MODELS: dict[str, type[OperatorItemBase]] = {
    get_args(member)[1].tag: get_args(member)[0] for member in members(OperatorItem)
}
OPERATOR_KINDS = tuple(ITEM_MODELS)
#: Keys an operator item may hold besides its one operator key.
ITEM_KEYS = keys_of(OperatorItemBase)
#: The window types -> their model, in the order of :data:`Window`.
WINDOW_MODELS: dict[str, type[BaseModel]] = {
    get_args(model.model_fields["type"].annotation)[0]: model for model in members(Window)
}
#: The keys of an ``aggregate`` entry's mapping form: the aggregation kinds and ``python``.
AGGREGATION_KEYS = keys_of(AggregationBody)
