"""The pipeline spec: frozen dataclasses loaded from YAML (``kstream.pipeline.load``).

The spec is pure data. Runtime objects (operators, tasks, the job graph) are built from it; it
never holds clients, files or state. All durations are integer milliseconds.

The classes are pydantic dataclasses (frozen, ``extra="forbid"``): real dataclasses
(``dataclasses.replace``/``asdict``/``fields``, equality and hashing work as usual) whose
``__init__`` validates the field types, so a spec built in code (or by ``dataclasses.replace``)
cannot hold a value of the wrong type (``pydantic.ValidationError``). Construction happens at
load time only, never per record. Every operator spec has a ``kind`` (its YAML key:
``filter``, ``map``, ...) that discriminates :data:`AnyOperator`. The *file* format (what users
write) is modelled separately, in :mod:`kstream.pipeline.model`.
"""

from __future__ import annotations

from dataclasses import field
from typing import Annotated, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from kstream.pipeline.spec_base import (
    SPEC_CONFIG,
    Accumulation,
    EmitMode,
    ErrorPolicy,
    Format,
    Guarantee,
    LateRule,
    PortRef,
    RecordMetadata,
    TimeKind,
    TimeUnit,
    ValueFields,
    WatermarkStrategy,
    WindowType,
)
from kstream.pipeline.spec_joins import JoinSpec, TableSpec

AGGREGATION_KINDS = (
    "count",
    "sum",
    "min",
    "max",
    "avg",
    "first",
    "last",
    "first_arrived",
    "last_arrived",
    "count_distinct",
    "collect",
)


@dataclass(frozen=True, config=SPEC_CONFIG)
class TimeSpec:
    """Where a record's time comes from.

    ``kind`` ``event`` reads ``field`` (``unit`` ms, s or ISO-8601) or, when ``field`` is None,
    the Kafka record timestamp; ``processing`` uses the wall clock at processing;
    ``ingestion`` uses the Kafka record timestamp (LogAppendTime or producer time).
    """

    kind: TimeKind = "event"
    field: str | None = None
    unit: TimeUnit = "ms"


@dataclass(frozen=True, config=SPEC_CONFIG)
class WatermarkSpec:
    """Watermark generation per source partition (Flink ``forBoundedOutOfOrderness``).

    watermark = max_event_ts_seen - max_out_of_orderness_ms - 1. ``monotonous`` is the same with
    a bound of 0. ``sql`` is Flink SQL's ``WATERMARK FOR ts AS ts - INTERVAL ...``:
    max_event_ts_seen - max_out_of_orderness_ms, without the -1. A partition with no records
    for ``idle_timeout_ms`` (processing time) is idle. A record more than
    ``max_future_skew_ms`` ahead of the highest event time seen so far is absurd: it does not
    advance the watermark and goes to the source's error policy.
    """

    strategy: WatermarkStrategy = "bounded"
    max_out_of_orderness_ms: int = 0
    idle_timeout_ms: int | None = None
    max_future_skew_ms: int = 86_400_000


@dataclass(frozen=True, config=SPEC_CONFIG)
class SourceSpec:
    """A source topic: its format, time and watermark, and its error policy.

    ``schema`` (the reader schema), ``writer_schema`` and ``key_schema`` are absolute paths of
    Avro schema files or inline schemas as JSON text (``format``/``key_format: avro``;
    :func:`kstream.pipeline.schemas.load_schema`; docs/formats.md).
    """

    name: str
    topic: str
    format: Format = "json"
    key_format: Format = "string"
    time: TimeSpec = field(default_factory=TimeSpec)
    watermark: WatermarkSpec = field(default_factory=WatermarkSpec)
    on_error: ErrorPolicy = "fail"
    dead_letter_topic: str | None = None
    schema: str | None = None
    writer_schema: str | None = None
    key_schema: str | None = None
    #: set when the source is read as a table (``table:``; docs/joins.md)
    table: TableSpec | None = None
    #: ``(field, what)``: fields set on each value from the Kafka record (``metadata:``)
    metadata: tuple[tuple[str, RecordMetadata], ...] = ()
    #: fields of the value read from the key (``key_fields:``; docs/pipeline.md, "Sources")
    key_fields: tuple[str, ...] = ()
    #: the key's names are the fields without this prefix (``key_fields_prefix:``)
    key_fields_prefix: str = ""

    @property
    def id(self) -> str:
        """The source's node id (``id:`` or ``name:`` in the file; default: the topic)."""
        return self.name


@dataclass(frozen=True, config=SPEC_CONFIG)
class FilterSpec:
    """Keep records for which ``expr`` is truthy (or ``python`` returns truthy). ``otherwise``:
    what a record failing the test becomes: ``drop`` (nothing) or ``delete`` (a tombstone, a
    null value under its key: the row leaves an upsert table, Kafka Streams' ``KTable.filter``).
    """

    id: str
    expr: str | None = None
    python: str | None = None
    otherwise: Literal["drop", "delete"] = "drop"
    on_error: ErrorPolicy | None = None
    dead_letter_topic: str | None = None
    #: where records come from: ``node`` or ``node.port`` (resolved by the loader)
    inputs: tuple[PortRef, ...] = ()
    #: the YAML key of the kind (discriminates :data:`AnyOperator`)
    kind: Literal["filter"] = "filter"


@dataclass(frozen=True, config=SPEC_CONFIG)
class MapSpec:
    """Reshape the value: keep ``select`` fields (all when None), then set computed ``fields``.

    ``python`` (``module:function``) replaces the value by ``function(value)`` instead.
    """

    id: str
    select: tuple[str, ...] | None = None
    fields: tuple[tuple[str, str], ...] = ()
    python: str | None = None
    on_error: ErrorPolicy | None = None
    dead_letter_topic: str | None = None
    #: where records come from: ``node`` or ``node.port`` (resolved by the loader)
    inputs: tuple[PortRef, ...] = ()
    #: the YAML key of the kind (discriminates :data:`AnyOperator`)
    kind: Literal["map"] = "map"


@dataclass(frozen=True, config=SPEC_CONFIG)
class FlatMapSpec:
    """One record in, zero or more out; each output keeps the input's key and event time.

    ``python`` (``module:function``): the function gets the value (a dict) and returns an
    iterable of dicts, one output record each. ``explode`` (an expression giving a list) with
    ``as_field``: one copy of the value per element, with field ``as_field`` set to the element
    (Flink SQL ``CROSS JOIN UNNEST``): a null or empty list emits nothing, or with
    ``keep_empty`` the value once with ``as_field`` null (``LEFT JOIN UNNEST ... ON TRUE``).
    Exactly one of ``python`` and ``explode`` is set.
    """

    id: str
    python: str | None = None
    explode: str | None = None
    as_field: str | None = None
    keep_empty: bool = False
    on_error: ErrorPolicy | None = None
    dead_letter_topic: str | None = None
    #: where records come from: ``node`` or ``node.port`` (resolved by the loader)
    inputs: tuple[PortRef, ...] = ()
    #: the YAML key of the kind (discriminates :data:`AnyOperator`)
    kind: Literal["flat_map"] = "flat_map"


@dataclass(frozen=True, config=SPEC_CONFIG)
class KeyBySpec:
    """Re-key by ``expr`` (a field name is an expression) and repartition through a topic.

    ``partitions`` is the repartition topic's partition count (default: the source's).
    """

    id: str
    expr: str | None = None
    python: str | None = None
    partitions: int | None = None
    on_error: ErrorPolicy | None = None
    dead_letter_topic: str | None = None
    #: a record with a null value (a table's tombstone) keeps its key instead of evaluating
    #: ``expr`` (set on the repartition the planner inserts before a table's join)
    tombstones: bool = False
    #: every record keeps its key (no ``expr``): the repartition the planner inserts before a
    #: union input whose partition count may differ (:mod:`kstream.pipeline.rebalance`)
    keep_key: bool = False
    #: where records come from: ``node`` or ``node.port`` (resolved by the loader)
    inputs: tuple[PortRef, ...] = ()
    #: the YAML key of the kind (discriminates :data:`AnyOperator`)
    kind: Literal["key_by"] = "key_by"


@dataclass(frozen=True, config=SPEC_CONFIG)
class AggregationSpec:
    """One output field of a window: ``kind`` over ``expr`` (None for a plain ``count``)."""

    name: str
    kind: str
    expr: str | None = None
    python: str | None = None


@dataclass(frozen=True, config=SPEC_CONFIG)
class WindowSpec:
    """A keyed window with aggregations (Flink DataStream semantics; docs/time-and-windows.md).

    Tumbling: ``size_ms`` (+ ``offset_ms``). Sliding: ``size_ms``, ``slide_ms`` (+ offset).
    Cumulate (Flink SQL's ``CUMULATE``): windows ``[start, start + k * step_ms)`` for ``k`` = 1
    .. ``size_ms / step_ms``, ``start`` aligned like a tumbling window of ``size_ms``.
    Session: ``gap_ms``. ``late_rule`` (sliding, cumulate): ``datastream``, an element is late
    when every window that would take it has fired; ``sql``, when the first (earliest-ending)
    has fired, as Flink SQL's slicing window operators drop by slice. Fires when watermark >=
    end - 1; state purged when watermark >= end - 1 + ``allowed_lateness_ms``; later elements
    go to ``late_topic``.
    Count (Flink ``countWindow(size, slide)``): every ``count_slide`` elements of a key (default:
    ``count_size``) a window fires with the key's last ``count_size`` elements; not subject to
    event time. Global: one running aggregate per key, closed only by the end of input. Early
    firing: ``trigger_every_ms`` (processing time, aligned to the epoch) or ``trigger_count``
    (elements added since the window's last emission). ``accumulation``: ``accumulating`` (a
    firing keeps the window's contents) or ``discarding`` (Flink ``PurgingTrigger``: every
    firing purges them, so the next one carries only later elements). ``state_ttl_ms``
    (global only; Flink's ``table.exec.state.ttl``): a key's aggregate not written for this
    long of processing time is dropped, and the key starts again from an empty aggregate.
    """

    id: str
    type: WindowType
    aggregations: tuple[AggregationSpec, ...]
    size_ms: int | None = None
    slide_ms: int | None = None
    step_ms: int | None = None
    late_rule: LateRule = "datastream"
    gap_ms: int | None = None
    offset_ms: int = 0
    allowed_lateness_ms: int = 0
    late_topic: str | None = None
    emit: EmitMode = "final"
    accumulation: Accumulation = "accumulating"
    count_size: int | None = None
    count_slide: int | None = None
    trigger_every_ms: int | None = None
    trigger_count: int | None = None
    state_ttl_ms: int | None = None
    on_error: ErrorPolicy | None = None  # None: the source's policy (docs/errors.md)
    dead_letter_topic: str | None = None
    #: where records come from: ``node`` or ``node.port`` (resolved by the loader)
    inputs: tuple[PortRef, ...] = ()
    #: the YAML key of the kind (discriminates :data:`AnyOperator`)
    kind: Literal["window"] = "window"


@dataclass(frozen=True, config=SPEC_CONFIG)
class UnionSpec:
    """Flink ``union``: the records of every input, unchanged, in arrival order; the watermark
    is the min over the inputs (the valve rules). ``inputs`` lists two or more ports."""

    id: str
    inputs: tuple[PortRef, ...] = ()
    on_error: ErrorPolicy | None = None  # a union rejects nothing; kept for the common shape
    dead_letter_topic: str | None = None
    #: the YAML key of the kind (discriminates :data:`AnyOperator`)
    kind: Literal["union"] = "union"


@dataclass(frozen=True, config=SPEC_CONFIG)
class BranchSpec:
    """Route each record to the first port whose condition holds (``branches``: ``(port,
    expression)`` in declaration order); records matching none go to ``default`` (dropped when
    None). A condition that is not true (false or null) does not match."""

    id: str
    branches: tuple[tuple[str, str], ...] = ()
    default: str | None = None
    on_error: ErrorPolicy | None = None
    dead_letter_topic: str | None = None
    inputs: tuple[PortRef, ...] = ()
    #: the YAML key of the kind (discriminates :data:`AnyOperator`)
    kind: Literal["branch"] = "branch"

    @property
    def ports(self) -> tuple[str, ...]:
        """The output ports: every branch name, then ``default``'s."""
        names = tuple(name for name, _ in self.branches)
        return names + ((self.default,) if self.default else ())


#: The kinds of state a process function may declare (``kstream.api``).
StateKind = Literal["value", "list", "map"]
#: The time a state TTL is measured in: the watermark (``event``) or the wall clock.
TtlTime = Literal["event", "processing"]


@dataclass(frozen=True, config=SPEC_CONFIG)
class TopNSpec:
    """A ``top_n`` item's ranking (docs/pipeline.md, "top_n"): per key, the latest record of
    each row (``row_key``, an expression; None: every record is a row of its own) ranked by
    ``order`` (``(field, descending, nulls_first)``, most significant first); the first ``n``
    are emitted with their rank in the field ``rank``."""

    n: int
    row_key: str | None
    order: tuple[tuple[str, bool, bool], ...]
    rank: str = "rn"


@dataclass(frozen=True, config=SPEC_CONFIG)
class ProcessSpec:
    """A keyed process function (Flink ``KeyedProcessFunction``; docs/process-functions.md).

    ``python`` (``module:Class``) is instantiated once per task; ``state`` declares its state
    as ``(name, kind)`` pairs in declaration order; ``ports`` names its side outputs (read with
    ``from: <id>.<port>``), besides ``main``. ``ttl``: ``(state name, ttl ms, time)`` for each
    state declared with a time-to-live (docs/process-functions.md). ``dedup_within_ms``: set
    for a ``dedup`` item, the built-in function keeping a key's first record per interval
    (docs/pipeline.md); ``top_n``: set for a ``top_n`` item, the built-in ranking.
    """

    id: str
    python: str = ""
    state: tuple[tuple[str, StateKind], ...] = ()
    ports: tuple[str, ...] = ()
    ttl: tuple[tuple[str, int, TtlTime], ...] = ()
    dedup_within_ms: int | None = None
    top_n: TopNSpec | None = None
    on_error: ErrorPolicy | None = None
    dead_letter_topic: str | None = None
    inputs: tuple[PortRef, ...] = ()
    #: the YAML key of the kind (discriminates :data:`AnyOperator`)
    kind: Literal["process"] = "process"


OperatorSpec = (
    FilterSpec
    | MapSpec
    | FlatMapSpec
    | KeyBySpec
    | WindowSpec
    | UnionSpec
    | BranchSpec
    | ProcessSpec
    | JoinSpec
)
#: An operator spec, discriminated by its ``kind`` (the type of ``PipelineSpec.operators``).
AnyOperator = Annotated[OperatorSpec, Field(discriminator="kind")]


@dataclass(frozen=True, config=SPEC_CONFIG)
class SinkSpec:
    """An output topic. Records keep the current key (window results: the window key).

    ``schema``/``key_schema``: absolute paths of Avro schema files or inline schemas as JSON
    text, as for :class:`SourceSpec` (window results written as
    Avro without a ``schema`` get one derived from the aggregations). ``on_error`` None: the
    source's policy, for serialize and produce errors.
    """

    name: str
    topic: str
    format: Format = "json"
    key_format: Format = "string"
    partitions: int | None = None
    schema: str | None = None
    key_schema: str | None = None
    on_error: ErrorPolicy | None = None
    dead_letter_topic: str | None = None
    #: the key written is these fields of the value (``key_fields:``; docs/pipeline.md, "Sinks")
    key_fields: tuple[str, ...] = ()
    #: the key's names are the fields without this prefix (``key_fields_prefix:``)
    key_fields_prefix: str = ""
    #: ``except_key``: the value written leaves the key fields out
    value_fields_include: ValueFields = "all"
    #: the value written is this field of the value alone (``value_field:``; Flink's ``raw``)
    value_field: str | None = None
    #: the ports it writes (a list unions them); resolved by the loader
    inputs: tuple[PortRef, ...] = ()


@dataclass(frozen=True, config=SPEC_CONFIG)
class CheckpointSpec:
    """How often each task commits state, outputs and input offsets, and with what guarantee."""

    interval_ms: int = 5_000
    guarantee: Guarantee = "exactly_once"


@dataclass(frozen=True, config=SPEC_CONFIG)
class StateSpec:
    """Where keyed state lives (docs/state.md), sizes in bytes, each for the whole process: the
    write-back cache of decoded state, RocksDB's block cache and its memtables."""

    cache_bytes: int = 64 * 1000 * 1000
    block_cache_bytes: int = 16 * 1000 * 1000
    write_buffer_bytes: int = 16 * 1000 * 1000


@dataclass(frozen=True, config=SPEC_CONFIG)
class PipelineSpec:
    """A whole pipeline as declared in one YAML file.

    Attributes:
        name: pipeline name; prefixes internal topics and the default consumer group.
        path: the YAML file ("<string>" when loaded from text).
        kafka: librdkafka settings passed through to every client (may hold secrets).
        sources, operators, sinks: the dataflow, in declaration order.
        group: consumer group id (default: the pipeline name).
        schema_registry: Confluent schema registry client settings (``url`` and e.g.
            ``basic.auth.user.info``; may hold secrets); empty when none is configured.
    """

    name: str
    path: str
    sources: tuple[SourceSpec, ...]
    operators: tuple[AnyOperator, ...]
    sinks: tuple[SinkSpec, ...]
    kafka: dict[str, str] = field(default_factory=dict)
    checkpoint: CheckpointSpec = field(default_factory=CheckpointSpec)
    state: StateSpec = field(default_factory=StateSpec)
    group: str | None = None
    schema_registry: dict[str, str] = field(default_factory=dict)
    #: ``metrics: {port}``: serve Prometheus metrics there (None: not unless --metrics-port)
    metrics_port: int | None = None

    @property
    def group_id(self) -> str:
        """The consumer group id: ``group`` or the pipeline name."""
        return self.group or self.name

    def dead_letter_topics(self) -> list[str]:
        """Every dead-letter topic (source, operators, sinks), each once, in declaration order."""
        owners = (*self.sources, *self.operators, *self.sinks)
        topics = [o.dead_letter_topic for o in owners if o.dead_letter_topic]
        return list(dict.fromkeys(topics))

    def stateful_ids(self) -> list[str]:
        """Ids of the operators that keep state (windows, process functions, joins), in
        declaration order."""
        stateful = WindowSpec | ProcessSpec | JoinSpec
        return [op.id for op in self.operators if isinstance(op, stateful)]
