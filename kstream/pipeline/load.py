"""Load and validate a pipeline YAML file into a :class:`~kstream.pipeline.spec.PipelineSpec`.

Every problem in the file is collected (not only the first) and raised as one
:class:`~kstream.errors.ConfigError`; each :class:`~kstream.errors.ConfigIssue` gives the file,
the line of the key, the key path (``operators[2].window.size``), what is wrong and a hint.

The pipeline file format::

    pipeline: flights-hourly          # required; [a-zA-Z0-9._-]+
    group: flights-hourly-v2          # optional consumer group id (default: the pipeline name)
    kafka:                            # optional librdkafka settings, passed through as strings
      bootstrap.servers: 127.0.0.1:9092
    schema_registry: http://registry:8081   # optional: Avro in the Confluent wire format; or
                                      # {url: ..., basic.auth.user.info: ...}; mock://NAME: the
                                      # client library's in-process mock (tests)
    checkpoint: {interval: 5s, guarantee: exactly_once}   # optional; or at_least_once
                                      # exactly_once: kafka transaction.timeout.ms (default
                                      # 60000) >= interval + 30s

    sources:                          # a list, at least one
      - topic: flights                # required
        id: flights                   # optional node id, default: the topic (older: name)
        format: json                  # json | string | bytes | avro (default json)
        key_format: string            # json | string | bytes | avro (default string)
        schema: schemas/flight.avsc   # avro: the (reader) schema, relative to this file;
                                      # required without a schema_registry
        writer_schema: schemas/flight-v1.avsc   # avro without a registry: what producers wrote
        key_schema: schemas/key.avsc  # key_format: avro
        key_fields: [carrier]         # optional: fields of the value set from the key
        time: event                   # event | processing | ingestion (default event)
        event_time: {field: sched_dep_ts, unit: ms}   # or `event_time: sched_dep_ts` (unit ms)
                                      # unit ms | s | iso; omitted: the Kafka record timestamp;
                                      # only with time: event
        watermark:                    # all optional
          strategy: bounded           # bounded | monotonous
          max_out_of_orderness: 1h    # bounded only (default 0)
          idle_timeout: 30s           # default: partitions never go idle
          max_future_skew: 1d         # default 1d
        on_error: fail                # fail | skip | dead_letter (docs/errors.md)
        dead_letter_topic: bad-flights   # required with (and only with) on_error: dead_letter

    operators:                        # optional list; each item has ONE operator key + `id`,
                                      # and optionally on_error (+ dead_letter_topic): errors
                                      # raised in that operator; default: the source's policy
      - filter: "dep_time is not None"          # or filter: {python: "module:function"}
        from: flights                 # optional: a node or node.port (late, errors, a branch
                                      # name); default: the previous item (the first: the
                                      # only source)
      - branch: {delayed: "dep_delay > 60", default: on-time}   # ports, first match wins
        id: routed
      - union: [routed.delayed, routed.on-time]    # the records of every input
      - map: {select: [origin, dep_delay], fields: {delay_h: "dep_delay / 60"}}
                                      # or map: {python: "module:function"}
      - flat_map: {explode: reasons, as: reason}   # one record per element of a list
                                      # (null/[]: none; keep_empty: true keeps one, reason null)
                                      # or flat_map: {python: "module:function"} (-> iterable)
      - key_by: origin                # an expression, or {expr: ..., partitions: 4}
        id: by-origin                 # or {python: "module:function", partitions: 4}
      - id: hourly                    # required for window (names its state)
        window:
          type: tumbling              # tumbling | sliding | session | count | global
          size: 1h                    # tumbling and sliding; count: a number of elements
          slide: 10m                  # sliding (required there, <= size); count (elements)
          gap: 3h                     # session only
          offset: 0s                  # tumbling and sliding; may be negative, |offset| < period
          allowed_lateness: 0s        # tumbling, sliding, session
          late_topic: flights-late    # optional; tumbling, sliding, session
          emit: final                 # final | update | changelog (global: default update)
          trigger: {every: 10s}       # optional early firing, or {count: 100}; not for count
          aggregate:                  # required, at least one: result field -> aggregation
            flights: count            # count, or {count: expression}
            avg_dep_delay: {avg: dep_delay}   # count sum min max avg first last
                                              # count_distinct collect: {kind: expression}
            custom: {python: "module:Class"}  # user-defined aggregate (kind "python")

    sinks:                            # a list, at least one
      - topic: flights-hourly         # required
        name: hourly                  # optional, default: the topic
        from: [hourly, hourly.late]   # optional: what it writes (a list unions); default: the
                                      # last operator; a node's errors port: its dead letters
        format: json                  # json | string | bytes | avro (default json)
        key_format: string            # json | string | bytes | avro (default string)
        schema: schemas/hourly.avsc   # avro; window results without one get a derived schema
        key_schema: schemas/key.avsc  # key_format: avro (default: a union of scalars)
        key_fields: [carrier, origin] # optional: the key written is these fields of the value
        value_fields_include: all     # all | except_key (with key_fields; default all)
        value_field: line             # optional: the value written is this field alone
        partitions: 1                 # optional; used when the topic must be created
        on_error: skip                # serialize/produce errors; default: the source's policy

Durations are written ``500ms``, ``10s``, ``5m``, ``1h``, ``1d`` or as an integer of ms.
Operator ids default to ``<kind>-<index>`` (``filter-0``); ids must be unique. Aggregation
names must be identifiers other than ``key``, ``window_start`` and ``window_end``.

The same format is modelled in :mod:`kstream.pipeline.model` (pydantic; its JSON Schema is what
``kstream schema`` prints): the keys each mapping accepts are derived from those models.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast, get_args

from kstream.errors import ConfigError, ConfigIssue
from kstream.pipeline.checks import check_process_keyed, check_transaction_timeout
from kstream.pipeline.copartition import co_partition
from kstream.pipeline.dataflow import wire
from kstream.pipeline.formats import (
    check_pipeline,
    read_formats,
    read_key_fields,
    read_metadata,
    read_policy,
    read_registry,
)
from kstream.pipeline.join_checks import check_joins
from kstream.pipeline.join_item import read_table
from kstream.pipeline.model import (
    Checkpoint,
    EventTime,
    PipelineFile,
    RocksDb,
    Sink,
    Source,
    State,
    Watermark,
    keys_of,
    required_of,
)
from kstream.pipeline.operators import read_operators
from kstream.pipeline.rebalance import rebalance_unions
from kstream.pipeline.spec import (
    CheckpointSpec,
    Guarantee,
    KeyBySpec,
    PipelineSpec,
    SinkSpec,
    SourceSpec,
    StateSpec,
    TimeKind,
    TimeSpec,
    TimeUnit,
    WatermarkSpec,
    WatermarkStrategy,
)
from kstream.pipeline.view import fingerprint, spec_to_dict
from kstream.pipeline.yamlnodes import (
    Issues,
    Node,
    check_keys,
    describe,
    expect_seq,
    parse_yaml,
    read_duration,
    read_enum,
    read_positive_int,
    read_size,
    read_str,
)

__all__ = ["fingerprint", "load_pipeline", "load_pipeline_text", "read_job_file", "spec_to_dict"]

# The keys of each mapping, derived from the file models (kstream.pipeline.model: the JSON
# Schema of `kstream schema`), so that the loader and the schema cannot drift.
TOP_KEYS = keys_of(PipelineFile)
TOP_REQUIRED = required_of(PipelineFile)
SOURCE_KEYS = keys_of(Source)
SOURCE_REQUIRED = required_of(Source)
SINK_KEYS = keys_of(Sink)
SINK_REQUIRED = required_of(Sink)
WATERMARK_KEYS = keys_of(Watermark)
CHECKPOINT_KEYS = keys_of(Checkpoint)
STATE_KEYS = keys_of(State)
ROCKSDB_KEYS = keys_of(RocksDb)
EVENT_TIME_KEYS = keys_of(EventTime)
EVENT_TIME_REQUIRED = required_of(EventTime)


def load_pipeline(path: str | Path) -> PipelineSpec:
    """Read and validate the pipeline file at ``path``.

    Raises:
        ConfigError: the file cannot be read, is not valid YAML, or breaks the schema (every
            issue found is reported at once).
    """
    return load_pipeline_text(read_job_file(path), str(path))


def read_job_file(path: str | Path) -> str:
    """The text of a job file (pipeline YAML or SQL script).

    Raises:
        ConfigError: it cannot be read or is not UTF-8 text.
    """
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        hint = "check the path and that the file is UTF-8 text"
        raise ConfigError(
            [ConfigIssue(str(path), 0, "", f"cannot read the file: {exc}", hint)]
        ) from exc


def load_pipeline_text(text: str, path: str = "<string>") -> PipelineSpec:
    """Validate pipeline YAML ``text``; ``path`` is only used in messages and ``spec.path``.

    Raises:
        ConfigError: invalid YAML or schema, with every issue found.
    """
    root = parse_yaml(text, path)
    issues = Issues(path)
    if not root.is_map:
        got = "an empty file" if root.value is None else describe(root.value)
        issues.add(
            root, f"a pipeline file must be a mapping, got {got}", "start with 'pipeline: <name>'"
        )
        issues.raise_if_any()
    check_keys(issues, root, TOP_KEYS, TOP_REQUIRED)
    registry = read_registry(issues, root.get("schema_registry"))
    spec = PipelineSpec(
        name=read_str(issues, root.get("pipeline"), "", name=True) or "",
        path=path,
        group=read_str(issues, root.get("group")),
        kafka=_kafka(issues, root.get("kafka")),
        checkpoint=_checkpoint(issues, root.get("checkpoint")),
        state=_state(issues, root.get("state")),
        metrics_port=_metrics_port(issues, root.get("metrics")),
        sources=_sources(issues, root.get("sources"), bool(registry)),
        operators=read_operators(issues, root.get("operators")),
        sinks=_sinks(issues, root.get("sinks"), bool(registry)),
        schema_registry=registry,
    )
    if not issues.items:
        spec = wire(issues, root, spec)
    if not issues.items:
        check_joins(issues, root, spec)
    if not issues.items:
        spec = _co_partition(issues, root, spec)
    if not issues.items:
        check_pipeline(issues, root, spec)
        check_transaction_timeout(issues, root, spec)
        check_process_keyed(issues, root, spec)
    issues.raise_if_any()
    return spec


def _co_partition(issues: Issues, root: Node, spec: PipelineSpec) -> PipelineSpec:
    """Insert the repartitions of the joins (:mod:`kstream.pipeline.copartition`) and of the
    unions (:mod:`kstream.pipeline.rebalance`); an inserted node whose id is taken is an issue
    at its join or union."""
    planned = rebalance_unions(co_partition(spec))
    taken = {node.id for node in (*spec.sources, *spec.operators)}
    ops = root.get("operators")
    items = dict(zip((op.id for op in spec.operators), ops.items() if ops else [], strict=False))
    for op in planned.operators:
        if isinstance(op, KeyBySpec) and op.id in taken and op not in spec.operators:
            join_id = op.id.rsplit(".", 1)[0]
            kind = "union" if op.keep_key else "join"
            hint = f"the repartition the planner inserts before {kind} '{join_id}' is named so"
            issues.add(items.get(join_id, root), f"id '{op.id}' is taken", f"{hint}; rename it")
    return planned


def _kafka(issues: Issues, node: Node | None) -> dict[str, str]:
    """librdkafka settings; scalar values become strings (booleans ``true``/``false``)."""
    if node is None or node.value is None:
        return {}
    if not node.is_map:
        issues.add(node, f"expected a mapping, got {describe(node.value)}", "write setting: value")
        return {}
    settings: dict[str, str] = {}
    for key, child in node.entries():
        value = child.value
        if isinstance(value, bool):
            settings[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            settings[key] = str(value)
        else:
            hint = "librdkafka settings are scalars, e.g. acks: all"
            issues.add(child, f"expected a scalar value, got {describe(value)}", hint)
    return settings


def _checkpoint(issues: Issues, node: Node | None) -> CheckpointSpec:
    if node is None or node.value is None:
        return CheckpointSpec()
    if not check_keys(issues, node, CHECKPOINT_KEYS):
        return CheckpointSpec()
    interval = read_duration(issues, node.get("interval"), 5_000, minimum=1) or 5_000
    guarantee = read_enum(issues, node.get("guarantee"), get_args(Guarantee), "exactly_once")
    return CheckpointSpec(interval_ms=interval, guarantee=cast(Guarantee, guarantee))


def _metrics_port(issues: Issues, node: Node | None) -> int | None:
    """``metrics: {port: N}``: the port (1-65535), None when absent."""
    if node is None or node.value is None or not check_keys(issues, node, ["port"], ["port"]):
        return None
    port = node.get("port")
    value = read_positive_int(issues, port, None)
    if value is not None and value > 65535 and port is not None:
        issues.add(port, f"port {value} is past 65535", "write a port from 1 to 65535, e.g. 9108")
        return None
    return value


def _state(issues: Issues, node: Node | None) -> StateSpec:
    default = StateSpec()
    if node is None or node.value is None or not check_keys(issues, node, STATE_KEYS):
        return default
    rocks = node.get("rocksdb")
    if rocks is not None and not check_keys(issues, rocks, ROCKSDB_KEYS):
        rocks = None
    return StateSpec(
        cache_bytes=read_size(issues, node.get("cache"), default.cache_bytes),
        block_cache_bytes=read_size(
            issues, rocks and rocks.get("block_cache"), default.block_cache_bytes
        ),
        write_buffer_bytes=read_size(
            issues, rocks and rocks.get("write_buffer"), default.write_buffer_bytes
        ),
    )


def _sources(issues: Issues, node: Node | None, registry: bool) -> tuple[SourceSpec, ...]:
    if node is None or not expect_seq(issues, node, "write sources: [{topic: my-topic}]"):
        return ()
    items = node.items()
    if not items:
        issues.add(node, "at least one source is required", "add '- topic: <topic>'")
    specs = [_source(issues, item, registry) for item in items]
    return tuple(spec for spec in specs if spec is not None)


def _source(issues: Issues, node: Node, registry: bool) -> SourceSpec | None:
    if not check_keys(issues, node, SOURCE_KEYS, SOURCE_REQUIRED):
        return None
    topic = read_str(issues, node.get("topic"), "", name=True) or ""
    time_kind = read_enum(issues, node.get("time"), get_args(TimeKind), "event")
    on_error, dead_letter_topic = read_policy(issues, node, "fail")
    formats = read_formats(issues, node, sink=False, registry=registry)
    key = read_key_fields(issues, node, formats.key_format, sink=False)
    return SourceSpec(
        name=_source_id(issues, node, topic),
        topic=topic,
        format=formats.format,
        key_format=formats.key_format,
        time=_time(issues, cast(TimeKind, time_kind), node.get("event_time")),
        watermark=_watermark(issues, node.get("watermark")),
        on_error=on_error or "fail",
        dead_letter_topic=dead_letter_topic,
        schema=formats.schema,
        writer_schema=formats.writer_schema,
        key_schema=formats.key_schema,
        table=read_table(issues, node.get("table")),
        metadata=read_metadata(issues, node.get("metadata")),
        key_fields=key.fields,
        key_fields_prefix=key.prefix,
    )


def _source_id(issues: Issues, node: Node, topic: str) -> str:
    """``id`` (or its older spelling ``name``), default the topic."""
    id_node, name_node = node.get("id"), node.get("name")
    if id_node is not None and name_node is not None:
        issues.add(name_node, "'name' is the older spelling of 'id'", "keep only 'id'")
    return read_str(issues, id_node or name_node, topic, name=True) or topic


def _time(issues: Issues, kind: TimeKind, node: Node | None) -> TimeSpec:
    """``event_time``: a field name, or ``{field, unit}``; only meaningful for event time."""
    if node is None:
        return TimeSpec(kind=kind)
    if kind != "event":
        hint = "remove event_time, or set time: event"
        issues.add(node, f"event_time is only used with time: event, not time: {kind}", hint)
        return TimeSpec(kind=kind)
    if not node.is_map:
        return TimeSpec(kind=kind, field=read_str(issues, node))
    check_keys(issues, node, EVENT_TIME_KEYS, EVENT_TIME_REQUIRED)
    unit = read_enum(issues, node.get("unit"), get_args(TimeUnit), "ms")
    field = read_str(issues, node.get("field"))
    return TimeSpec(kind=kind, field=field, unit=cast(TimeUnit, unit))


def _watermark(issues: Issues, node: Node | None) -> WatermarkSpec:
    if node is None or node.value is None or not check_keys(issues, node, WATERMARK_KEYS):
        return WatermarkSpec()
    strategy = read_enum(issues, node.get("strategy"), get_args(WatermarkStrategy), "bounded")
    bound_node = node.get("max_out_of_orderness")
    if strategy == "monotonous" and bound_node is not None:
        hint = "remove it, or use strategy: bounded"
        issues.add(bound_node, "max_out_of_orderness is for strategy: bounded", hint)
    skew = read_duration(issues, node.get("max_future_skew"), 86_400_000, minimum=1)
    return WatermarkSpec(
        strategy=strategy if strategy in ("monotonous", "sql") else "bounded",  # type: ignore[arg-type]
        max_out_of_orderness_ms=read_duration(issues, bound_node, 0) or 0,
        idle_timeout_ms=read_duration(issues, node.get("idle_timeout"), None, minimum=1),
        max_future_skew_ms=skew or 86_400_000,
    )


def _sinks(issues: Issues, node: Node | None, registry: bool) -> tuple[SinkSpec, ...]:
    if node is None or not expect_seq(issues, node, "write sinks: [{topic: my-topic}]"):
        return ()
    if not node.items():
        issues.add(node, "at least one sink is required", "add '- topic: <topic>'")
    specs: list[SinkSpec] = []
    for item in node.items():
        spec = _sink(issues, item, registry)
        if spec is None:
            continue
        if any(other.name == spec.name for other in specs):
            hint = "give each sink a distinct 'name'"
            issues.add(item.get("name") or item, f"duplicate sink name '{spec.name}'", hint)
        specs.append(spec)
    return tuple(specs)


def _sink(issues: Issues, node: Node, registry: bool) -> SinkSpec | None:
    if not check_keys(issues, node, SINK_KEYS, SINK_REQUIRED):
        return None
    topic = read_str(issues, node.get("topic"), "", name=True) or ""
    formats = read_formats(issues, node, sink=True, registry=registry)
    key = read_key_fields(issues, node, formats.key_format, sink=True)
    on_error, dead_letter_topic = read_policy(issues, node, None)
    return SinkSpec(
        name=read_str(issues, node.get("name"), topic, name=True) or topic,
        topic=topic,
        format=formats.format,
        key_format=formats.key_format,
        partitions=read_positive_int(issues, node.get("partitions"), None),
        schema=formats.schema,
        key_schema=formats.key_schema,
        on_error=on_error,
        dead_letter_topic=dead_letter_topic,
        key_fields=key.fields,
        key_fields_prefix=key.prefix,
        value_fields_include=key.value_fields,
        value_field=read_str(issues, node.get("value_field"), None) or None,
    )
