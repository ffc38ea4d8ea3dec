"""A Flink SQL script compiled to a :class:`~kstream.pipeline.spec.PipelineSpec` (DESIGN.md 8).

The script's statements build a pipeline file's mapping (sources from the tables the queries
read, operators from each ``INSERT``, sinks from the tables they write), which goes through the
same loader and checks as a YAML file, so a SQL job runs on the same graph and operators.

Statements: ``SET 'key' = 'value'`` (``pipeline.name``, ``execution.checkpointing.interval``,
``table.exec.state.ttl``: :mod:`kstream.sql.state_ttl`; other Flink options are accepted and
ignored), ``CREATE TABLE`` (:mod:`kstream.sql.catalog`),
``INSERT INTO ... SELECT`` (:mod:`kstream.sql.query`), and ``EXECUTE STATEMENT SET``.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlglot import exp

from kstream.errors import ConfigError, ConfigIssue
from kstream.pipeline.load import load_pipeline_text, read_job_file
from kstream.pipeline.spec import PipelineSpec
from kstream.sql.avro_schema import is_avro, key_format, registry_settings, value_format
from kstream.sql.catalog import Table, read_table
from kstream.sql.derived import derived_table
from kstream.sql.exprs import Untranslatable
from kstream.sql.keys import is_text, sink_key, sink_value, source_key
from kstream.sql.query import CompiledInsert, aggregated_view, compile_insert, is_aggregating
from kstream.sql.result import result_table
from kstream.sql.scope import sql_type_kind
from kstream.sql.script import SqlIssues, parse_script
from kstream.sql.state_ttl import SETTING as STATE_TTL
from kstream.sql.state_ttl import apply_state_ttl

__all__ = ["load_sql", "load_sql_text", "sql_mapping"]

_NAME = re.compile(r"[^a-zA-Z0-9._-]+")
_DURATION = re.compile(r"^\s*(\d+)\s*([a-z]*)\s*$", re.IGNORECASE)
_UNIT_MS = {"": 1, "ms": 1, "milli": 1, "millis": 1, "millisecond": 1, "milliseconds": 1}
_UNIT_MS |= {u: 1_000 for u in ("s", "sec", "secs", "second", "seconds")}
_UNIT_MS |= {u: 60_000 for u in ("m", "min", "mins", "minute", "minutes")}
_UNIT_MS |= {u: 3_600_000 for u in ("h", "hour", "hours")}
_UNIT_MS |= {u: 86_400_000 for u in ("d", "day", "days")}
_USED_SETTINGS = frozenset(
    {"pipeline.name", "execution.checkpointing.interval", "table.exec.source.idle-timeout"}
    | {STATE_TTL}
)
#: options that change results: key -> (accepted values, hint)
_REFUSED_SETTINGS = {
    "table.local-time-zone": (("UTC", "Z", "+00:00"), "kstream's session time zone is UTC"),
    "execution.runtime-mode": (("STREAMING",), "run a bounded job with kstream run --bounded"),
}
_log = logging.getLogger(__name__)
_STARTUP = {"earliest-offset": "earliest", "latest-offset": "latest", "group-offsets": None}

#: Flink's Kafka metadata keys kstream reads, and ``key`` (a kstream extension: the record key
#: as text; Flink reads keys with 'key.fields')
_METADATA_KEYS = (
    "topic",
    "partition",
    "offset",
    "timestamp",
    "timestamp-type",
    "leader-epoch",
    "key",
)


def load_sql(path: str | Path) -> PipelineSpec:
    """Read and compile the Flink SQL script at ``path``.

    Raises:
        ConfigError: unreadable file, syntax error or unsupported construct, each at
            ``file:line:col`` with a hint.
    """
    return load_sql_text(read_job_file(path), str(path))


def load_sql_text(
    text: str, path: str = "<string>", result_topic: str | None = None
) -> PipelineSpec:
    """Compile SQL ``text``; ``path`` names it in messages and becomes ``spec.path``;
    ``result_topic``: see :func:`sql_mapping` (``kstream sql``).

    Raises:
        ConfigError: as :func:`load_sql`.
    """
    mapping = sql_mapping(text, path, result_topic)
    try:
        return load_pipeline_text(json.dumps(mapping, indent=1), path)
    except ConfigError as exc:
        issues = [
            ConfigIssue(
                path,
                0,
                "",
                f"the compiled pipeline is invalid: {i.key_path}: {i.message}",
                "report this: kstream should have refused the query with a reason",
            )
            for i in exc.issues
        ]
        raise ConfigError(issues) from exc


def sql_mapping(text: str, path: str, result_topic: str | None = None) -> dict[str, Any]:
    """The pipeline file mapping (as YAML would load it) the script compiles to.

    With ``result_topic`` (``kstream sql``) the script's one bare ``SELECT`` writes its rows to
    that topic, as the columns it selects (:func:`~kstream.sql.result.result_table`).

    Raises:
        ConfigError: syntax errors and unsupported constructs, every one found.
    """
    script = parse_script(text, path)
    issues = SqlIssues(path, text)
    job = _Job()
    for statement in script.statements:
        if isinstance(statement, exp.Select | exp.Union) and result_topic is not None:
            statement = _result_insert(issues, statement, job.tables, result_topic)
        _statement(issues, statement, job)
    settings, inserts = job.settings, job.inserts
    if not inserts and not issues.items:
        issues.add(
            None, "the script has no INSERT INTO", "add INSERT INTO sink SELECT ... FROM ..."
        )
    issues.raise_if_any()
    return _pipeline(issues, path, settings, inserts)


@dataclass
class _Job:
    """What a script's statements build: its tables and views, SET options and INSERTs."""

    tables: dict[str, Table] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    inserts: list[CompiledInsert] = field(default_factory=list)


def _statement(issues: SqlIssues, statement: exp.Expression, job: _Job) -> None:
    kind = str(statement.args.get("kind")).upper() if isinstance(statement, exp.Create) else ""
    if isinstance(statement, exp.Set):
        _setting(issues, statement, job.settings)
    elif kind == "TABLE" and isinstance(statement, exp.Create):
        table = read_table(issues, statement)
        if table is not None:
            job.tables[table.name.lower()] = table
    elif kind == "VIEW" and isinstance(statement, exp.Create):
        _view(issues, statement, job.tables)
    elif isinstance(statement, exp.Insert):
        try:
            prefix = _node_prefix(statement, job.inserts)
            job.inserts.append(compile_insert(statement, job.tables, prefix))
        except Untranslatable as exc:
            issues.add(exc.node, exc.what, "see docs/sql.md for what kstream compiles")
    elif isinstance(statement, exp.Select | exp.Union):
        hint = "write INSERT INTO a table, or run the SELECT in the shell: kstream sql"
        issues.add(statement, "a SELECT without INSERT INTO has nowhere to go", hint)
    else:
        what = f"{statement.key.upper()} {kind}".strip()
        issues.add(statement, f"{what} statements are not supported yet", "see docs/sql.md")


def _result_insert(
    issues: SqlIssues, query: exp.Expression, tables: dict[str, Table], topic: str
) -> exp.Expression:
    """The shell's SELECT as an INSERT into its result table (registered in ``tables``)."""
    try:
        table = result_table(query, tables, topic)
    except Untranslatable as exc:
        issues.add(exc.node, exc.what, "see docs/sql.md for what kstream compiles")
        return query
    tables[table.name.lower()] = table
    return exp.Insert(this=exp.to_table(table.name), expression=query)


def _view(issues: SqlIssues, statement: exp.Create, tables: dict[str, Table]) -> None:
    """``CREATE [TEMPORARY] VIEW v AS SELECT ...``: a derived table other queries read."""
    name, query = statement.this.name, statement.expression
    try:
        if is_aggregating(query):
            tables[name.lower()] = aggregated_view(name, query, tables)
        else:
            tables[name.lower()] = derived_table(name, query, tables)
    except Untranslatable as exc:
        issues.add(exc.node, exc.what, "see docs/sql.md for what kstream compiles")


def _node_prefix(insert: exp.Insert, done: list[CompiledInsert]) -> str:
    """Node ids of an INSERT start with its sink table's name (``flights_hourly-window``); a
    second INSERT into the same table adds its position (``flights_hourly-2-window``)."""
    base = _NAME.sub("_", insert.this.name) or "insert"
    same = sum(1 for c in done if c.sink.name == insert.this.name)
    return f"{base}-{same + 1}-" if same else f"{base}-"


def _setting(issues: SqlIssues, statement: exp.Set, settings: dict[str, str]) -> None:
    """Record a ``SET``; options that change results and are not supported are errors, the
    others kstream does not use are logged as ignored (parallelism is the partitions)."""
    for item in statement.expressions:
        pair = item.this
        if not isinstance(pair, exp.EQ):
            issues.add(item, "SET takes 'key' = 'value'", "write SET 'pipeline.name' = 'my-job';")
            continue
        key, value = pair.this.name, pair.expression.name
        refused = _REFUSED_SETTINGS.get(key)
        if refused is not None and value.strip().upper() not in refused[0]:
            issues.add(item, f"SET '{key}' = '{value}' is not supported yet", refused[1])
        elif key == STATE_TTL and not isinstance(flink_duration_ms(value), int):
            hint = "write a duration: '1 h', '30 min', '3600000' (ms), or '0' (kept)"
            issues.add(item, f"SET '{key}' = '{value}' is not a duration", hint)
        elif key not in _USED_SETTINGS:
            why = "parallelism comes from the partitions" if "parallelism" in key else "unused"
            _log.warning("%s: SET '%s' is ignored (%s)", issues.path, key, why)
        settings[key] = value


def _pipeline(
    issues: SqlIssues, path: str, settings: dict[str, str], inserts: list[CompiledInsert]
) -> dict[str, Any]:
    name = settings.get("pipeline.name") or _NAME.sub("-", Path(path).stem) or "sql-job"
    mapping: dict[str, Any] = {"pipeline": name, "sources": [], "operators": [], "sinks": []}
    kafka: dict[str, str] = {}
    seen: set[str] = set()
    idle = settings.get("table.exec.source.idle-timeout")
    for insert in inserts:
        for source in insert.sources:
            if source.name not in seen:
                seen.add(source.name)
                mapping["sources"].append(_source(issues, source, kafka, idle))
        mapping["operators"] += insert.operators
        sink = {"topic": insert.sink.topic, "name": insert.sink.name, "from": insert.last}
        sink |= value_format(issues, insert.sink) | sink_value(insert.sink) | sink_key(insert.sink)
        mapping["sinks"].append(sink | key_format(issues, insert.sink))
        _kafka_options(insert.sink, kafka)
    ttl = flink_duration_ms(settings.get(STATE_TTL) or "0")
    apply_state_ttl(mapping["operators"], ttl if isinstance(ttl, int) else 0)
    tables = [*{id(t): t for i in inserts for t in (*i.sources, i.sink)}.values()]
    registry = registry_settings(issues, tables)
    if registry:
        mapping["schema_registry"] = registry
    interval = settings.get("execution.checkpointing.interval")
    if interval:
        mapping["checkpoint"] = {"interval": flink_duration_ms(interval)}
    if kafka:
        mapping["kafka"] = kafka
    issues.raise_if_any()
    return mapping


def _source(
    issues: SqlIssues, table: Table, kafka: dict[str, str], idle_timeout: str | None
) -> dict[str, Any]:
    source: dict[str, Any] = {"topic": table.topic, "id": table.name, "format": "json"}
    if table.format == "raw":  # the value is the text of the table's one column (query.py)
        source["format"] = "string"
    key = source_key(table)
    source |= key | (key_format(issues, table) if key else {})
    source.update(value_format(issues, table))  # Avro: the schema derived from the columns
    if table.read_as_table is not None:
        source["table"] = table.read_as_table
    metadata = _metadata(issues, table)
    if metadata:
        source["metadata"] = metadata
    _kafka_options(table, kafka)
    if table.rowtime is None:
        return source
    column = table.column(table.rowtime)
    field, unit = _rowtime_field(issues, table, column)
    if field is not None:  # else the Kafka record timestamp, the default
        source["event_time"] = {"field": field, "unit": unit}
    source["watermark"] = {"strategy": "sql", "max_out_of_orderness": table.watermark_bound_ms or 0}
    idle = table.options.get("scan.watermark.idle-timeout") or idle_timeout
    if idle:
        source["watermark"]["idle_timeout"] = flink_duration_ms(idle)
    return source


def _metadata(issues: SqlIssues, table: Table) -> dict[str, str]:
    """The source's ``metadata:`` fields: each ``METADATA`` column by its Kafka key (Flink's
    Kafka connector keys ``topic``, ``partition``, ``offset``, ``timestamp``)."""
    fields: dict[str, str] = {}
    for column in table.columns:
        if column.metadata is None:
            continue
        if table.format == "raw":
            what = f"table {table.name}: metadata columns of a 'raw' table are not supported yet"
            issues.add(column.node or table.node, what, "")
            continue
        if column.metadata not in _METADATA_KEYS:
            keys = ", ".join(f"'{k}'" for k in _METADATA_KEYS)
            what = f"table {table.name}: metadata key '{column.metadata}' is not supported yet"
            issues.add(column.node or table.node, what, f"kstream reads {keys}")
        elif not column.name.isidentifier():
            issues.add(column.node or table.node, "a metadata column needs a plain name", "")
        elif column.metadata == "key" and (table.options.get("key.format") or not is_text(column)):
            what = f"table {table.name}: METADATA FROM 'key' is the key's text, a STRING column"
            hint = "declare it STRING, or read key columns with 'key.format' and 'key.fields'"
            issues.add(column.node or table.node, what, hint)
        else:
            fields[column.name] = column.metadata
    return fields


def _rowtime_field(issues: SqlIssues, table: Table, column: Any) -> tuple[str | None, str]:
    """The source's event-time field and unit; ``None`` for the Kafka record timestamp (a
    ``METADATA FROM 'timestamp'`` rowtime)."""
    if column is not None and column.metadata == "timestamp":
        return None, "ms"
    physical = column is not None and column.computed is None and column.metadata is None
    if physical and sql_type_kind(column.type) in ("ts", "ltz") and column.name.isidentifier():
        # a physical TIMESTAMP(3) / TIMESTAMP_LTZ(3): Avro epoch ms, or Flink's json text
        return column.name, "ms" if is_avro(table) else "sql"
    computed = column.computed if column is not None else None
    if (
        isinstance(computed, exp.Anonymous)
        and str(computed.this).upper() == "TO_TIMESTAMP_LTZ"
        and len(computed.expressions) == 2
        and isinstance(computed.expressions[0], exp.Column)
        and computed.expressions[1].name in ("0", "3")
    ):
        unit = "ms" if computed.expressions[1].name == "3" else "s"
        return computed.expressions[0].name, unit
    hint = "declare it as ts AS TO_TIMESTAMP_LTZ(epoch_column, 3) (or 0 for seconds)"
    issues.add(
        column.node if column else table.node,
        f"table {table.name}: kstream reads the rowtime from a TIMESTAMP(3) or an epoch column",
        hint,
    )
    return "", "ms"


def flink_duration_ms(text: str) -> int | str:
    """A Flink duration option (``'10 s'``, ``'5 min'``, ``'1h'``, ``'500'`` ms) in milliseconds;
    the text itself when it does not read (the loader then reports it)."""
    match = _DURATION.match(text)
    scale = _UNIT_MS.get(match.group(2).lower()) if match else None
    return int(match.group(1)) * scale if match and scale else text


def _kafka_options(table: Table, kafka: dict[str, str]) -> None:
    for key, value in table.options.items():
        if key.startswith("properties.") and key != "properties.group.id":
            kafka[key.removeprefix("properties.")] = value
    mode = table.options.get("scan.startup.mode")
    if mode and _STARTUP.get(mode):
        kafka["auto.offset.reset"] = _STARTUP[mode] or "earliest"
