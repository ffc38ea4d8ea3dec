"""``kstream tail``: print the records of a topic (no consumer group, nothing committed)."""

from __future__ import annotations

import base64
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson
from kstream_cli.errors import handle_errors
from kstream_cli.options import bootstrap_option, output_option
from kstream_cli.output import iso_utc
from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from kstream.errors import RecordError, UsageError
from kstream.io import codecs, kafka
from kstream.pipeline import schemas
from kstream.runtime.policy import (
    H_CLASS,
    H_MESSAGE,
    H_OFFSET,
    H_OPERATOR,
    H_PARTITION,
    H_STAGE,
    H_TOPIC,
)

#: Decodes a record value for display; raises RecordError when it cannot.
ValueDecoder = Callable[[bytes], Any]

#: Idle timeout (seconds) used when --from-beginning or --max is given without --timeout.
BOUNDED_IDLE_TIMEOUT_S = 5.0
#: Seconds to wait for the broker's metadata answer.
ADMIN_TIMEOUT_S = 10.0
_BATCH = 500
_POLL_S = 0.2


@click.command(
    epilog="""\b
Example:
  kstream tail flights-hourly --from-beginning
  kstream tail flights-hourly --from-beginning --max 10 --output jsonl | jq .value
"""
)
@click.argument("topic")
@click.option(
    "--from-beginning", is_flag=True, help="Start at the earliest offset (default: the end)."
)
@click.option("--max", "max_records", type=click.IntRange(min=1), help="Stop after N records.")
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=0, min_open=True),
    help="Stop after S seconds without a new record. Default: 5 s with --from-beginning or "
    "--max, else wait forever (Ctrl-C to stop).",
)
@output_option("record")
@click.option(
    "--schema",
    "schema_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Decode values as Avro with this schema (.avsc): plain bodies, or with "
    "--schema-registry the reader schema for the registry's writer schema.",
)
@click.option(
    "--schema-registry",
    metavar="URL",
    help="Decode values in the Confluent wire format (magic byte, schema id, body); the writer "
    "schema comes from this registry.",
)
@bootstrap_option
@handle_errors
def tail(
    topic: str,
    from_beginning: bool,
    max_records: int | None,
    timeout_s: float | None,
    output: str,
    schema_file: Path | None,
    schema_registry: str | None,
    bootstrap_servers: str,
) -> None:
    """Print the records of TOPIC as they arrive, from every partition.

    jsonl objects have the fields key (string), value (decoded Avro with --schema or
    --schema-registry, else parsed JSON, else a UTF-8 string, else {"base64": ...}; a value
    that does not decode as Avro is shown the same way), timestamp (epoch ms), timestamp_utc
    (ISO-8601), partition,
    offset and headers (name -> string). Records of a dead-letter topic also get an "error"
    object (class, stage, operator, message, source "topic[partition]@offset"); the table
    shows it above the value.
    Reads with isolation.level=read_committed and commits nothing. On the local Tansu broker,
    starting at the end can also show the last batch already in the topic (Tansu reports the
    end offset as that batch's base offset).
    """
    if timeout_s is None and (from_beginning or max_records is not None):
        timeout_s = BOUNDED_IDLE_TIMEOUT_S
    # Listing all topics, not Admin.partitions(topic): naming a missing topic in a metadata
    # request makes Tansu auto-create it.
    partitions = kafka.Admin(bootstrap_servers, timeout_s=ADMIN_TIMEOUT_S).topics().get(topic)
    if partitions is None:
        raise UsageError(f"topic {topic!r} does not exist on {bootstrap_servers}")
    start = kafka.OFFSET_BEGINNING if from_beginning else kafka.OFFSET_END
    printer = _TablePrinter() if output == "table" else _print_jsonl
    decode = _avro_decoder(schema_file, schema_registry)
    for batch in _read(bootstrap_servers, topic, partitions, start, max_records, timeout_s):
        printer([record_dict(msg, decode) for msg in batch])


def _avro_decoder(schema_file: Path | None, registry: str | None) -> ValueDecoder | None:
    if schema_file is None and registry is None:
        return None
    reader = schemas.load_schema_file(str(schema_file)) if schema_file is not None else None
    decode = codecs.avro_decoder(reader, None, {"url": registry} if registry else None)
    return lambda raw: decode(raw)


def _read(
    bootstrap: str,
    topic: str,
    partitions: int,
    start: int,
    max_records: int | None,
    idle_timeout_s: float | None,
) -> Iterator[list[Any]]:
    """Batches of records until ``max_records`` are read or ``idle_timeout_s`` passes idle."""
    conf = kafka.consumer_config(bootstrap, f"kstream-tail-{uuid.uuid4().hex[:12]}", {})
    consumer = kafka.new_consumer(conf)
    try:
        consumer.assign([kafka.topic_partition(topic, p, start) for p in range(partitions)])
        remaining = max_records
        last_record = time.monotonic()
        while remaining is None or remaining > 0:
            batch = consume_records(
                consumer, _BATCH if remaining is None else min(_BATCH, remaining)
            )
            if batch:
                last_record = time.monotonic()
                remaining = None if remaining is None else remaining - len(batch)
                yield batch
            elif idle_timeout_s is not None and time.monotonic() - last_record >= idle_timeout_s:
                return
    finally:
        consumer.close()


def consume_records(consumer: Any, count: int, at_end: set[int] | None = None) -> list[Any]:
    """Up to ``count`` records (waiting at most a poll interval), end-of-partition events left
    out; with ``at_end``, the partitions last seen at their end (a record removes its own).

    Raises:
        BrokerError: the consumer or a message reports an error.
    """
    try:
        messages = consumer.consume(num_messages=count, timeout=_POLL_S)
    except kafka.KafkaLibraryError as exc:
        raise kafka.translate(exc, "cannot read") from exc
    records = []
    for msg in messages:
        error = kafka.message_error(msg)
        if error is not None:
            raise error
        at_eof = kafka.is_partition_eof(msg)
        if at_end is not None:
            (at_end.add if at_eof else at_end.discard)(msg.partition())
        if not at_eof:
            records.append(msg)
    return records


def record_dict(msg: Any, decode: ValueDecoder | None = None) -> dict[str, Any]:
    """A consumed record as a JSON-ready dict (see the ``tail`` help for the fields)."""
    key = msg.key()
    timestamp = kafka.message_timestamp_ms(msg)
    record = {
        "key": None if key is None else _text_or_base64(key),
        "value": decode_value(msg.value(), decode),
        "timestamp": timestamp,
        "timestamp_utc": iso_utc(timestamp),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "headers": {
            name: None if raw is None else _text_or_base64(raw)
            for name, raw in kafka.message_headers(msg)
        },
    }
    error = dead_letter_error(record["headers"])
    if error is not None:
        record["error"] = error
    return record


def dead_letter_error(headers: dict[str, Any]) -> dict[str, Any] | None:
    """The error a dead letter's headers describe (None for other records)."""
    if H_STAGE not in headers:
        return None
    source = f"{headers.get(H_TOPIC)}[{headers.get(H_PARTITION)}]"
    if headers.get(H_OFFSET) is not None:
        source += f"@{headers[H_OFFSET]}"
    return {
        "class": headers.get(H_CLASS),
        "stage": headers.get(H_STAGE),
        "operator": headers.get(H_OPERATOR),
        "message": headers.get(H_MESSAGE),
        "source": source,
    }


def decode_value(raw: bytes | None, decode: ValueDecoder | None = None) -> Any:
    """A key or value as JSON, else UTF-8 text, else ``{"base64": ...}`` (``decode`` first,
    e.g. Avro, when given)."""
    if raw is None:
        return None
    if decode is not None:
        try:
            return decode(raw)
        except RecordError:
            pass  # not Avro (e.g. a dead letter): shown like any other bytes
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _text_or_base64(raw)


def _text_or_base64(raw: bytes) -> Any:
    """UTF-8 text, or ``{"base64": ...}`` for bytes that are not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(raw).decode("ascii")}


def _print_jsonl(records: list[dict[str, Any]]) -> None:
    out = sys.stdout
    for record in records:
        out.write(orjson.dumps(record).decode("utf-8"))
        out.write("\n")
    out.flush()


class _TablePrinter:
    """Prints each batch as a rich table; every column has a fixed width, so successive
    batches line up under the one header. A key or value longer than its column folds onto
    more lines: nothing is cut."""

    _FIXED: tuple[tuple[str, int, JustifyMethod], ...] = (
        ("part", 4, "right"),
        ("offset", 10, "right"),
        ("timestamp (UTC)", 23, "left"),
        ("key", 16, "left"),
    )

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console()
        self._first = True

    def __call__(self, records: list[dict[str, Any]]) -> None:
        table = Table(show_header=self._first, box=None, pad_edge=False, padding=(0, 2, 0, 0))
        for name, width, justify in self._FIXED:
            table.add_column(name, width=width, justify=justify, overflow="fold")
        used = sum(width + 2 for _, width, _ in self._FIXED)
        table.add_column(
            "value",
            width=max(10, self._console.width - used - 2),
            overflow="fold",
        )
        for rec in records:
            value = Text(_show(rec["value"]))
            error = rec.get("error")
            if error is not None:
                value = Text(
                    f"{error['stage']} error in {error['operator']} ({error['class']}) at "
                    f"{error['source']}: {error['message']}\n",
                    style="red",
                )
                value.append(_show(rec["value"]))
            table.add_row(
                str(rec["partition"]),
                str(rec["offset"]),
                _iso(rec["timestamp"]),
                Text(_show(rec["key"])),
                value,
            )
        self._console.print(table)
        self._first = False


def _iso(ts: int | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts / 1000, tz=UTC).isoformat(timespec="milliseconds")[:23]


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode("utf-8")
