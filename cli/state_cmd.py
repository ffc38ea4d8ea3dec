"""``kstream state dump``: the windows an operator holds in a savepoint (docs/savepoints.md)."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import click
import orjson
from kstream_cli.errors import handle_errors
from kstream_cli.options import output_option, stdout_console
from kstream_cli.output import echo_jsonl, iso_utc, new_table, utc_time
from rich.table import Table

from kstream.savepoint import Savepoint, open_savepoint

_TIME_WINDOWS = ("tumbling", "sliding", "session")


@click.group(
    epilog="""\b
Example:
  kstream state dump savepoints/hourly-1 --operator hourly --limit 10
"""
)
def state() -> None:
    """Look at saved operator state."""


@state.command(
    epilog="""\b
Example:
  kstream state dump savepoints/hourly-1 --operator hourly --key JFK --limit 24
  kstream state dump savepoints/hourly-1 --operator hourly --output jsonl > hourly.jsonl
"""
)
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--operator", "operator_id", required=True, help="The stateful operator's id.")
@click.option("--key", help="Only this record key (JSON, e.g. 42 or '[\"a\", 1]', or text).")
@output_option("window")
@click.option("--limit", type=click.IntRange(min=1), help="At most N windows.")
@click.option(
    "--python-path",
    multiple=True,
    type=click.Path(file_okay=False),
    help="Directory to import python aggregates from (repeatable; default: .).",
)
@handle_errors
def dump(
    directory: Path,
    operator_id: str,
    key: str | None,
    output: str,
    limit: int | None,
    python_path: tuple[str, ...],
) -> None:
    """Print the windows held by operator --operator in the savepoint in DIRECTORY.

    jsonl keys: key, then for tumbling, sliding and session windows window_start and
    window_end (epoch ms) with window_start_utc and window_end_utc, for count windows
    window_start and window_end (element positions), then one key per aggregation.
    """
    sp = open_savepoint(directory)
    kind = sp.operator(operator_id).definition.get("type")
    rows = _select(sp, operator_id, key, python_path or (".",), limit)
    times = kind in _TIME_WINDOWS
    if output == "jsonl":
        echo_jsonl(_with_utc(row) if times else row for row in rows)
        return
    stdout_console().print(_windows_table(operator_id, list(rows), times))


def _with_utc(row: dict[str, Any]) -> dict[str, Any]:
    """A time window's row with ``window_start_utc`` and ``window_end_utc`` after its bounds."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        out[name] = value
        if name in ("window_start", "window_end"):
            out[f"{name}_utc"] = iso_utc(value)
    return out


def _select(
    sp: Savepoint, operator_id: str, key: str | None, paths: tuple[str, ...], limit: int | None
) -> Iterator[dict[str, Any]]:
    """The windows of ``operator_id``, read as they are yielded (a savepoint of any size);
    ``key`` matches a JSON value, else the text itself."""

    def take(wanted: Any) -> Iterator[dict[str, Any]]:
        return islice(sp.windows(operator_id, wanted, search_paths=paths), limit)

    if key is None:
        yield from take(None)
        return
    try:
        parsed = orjson.loads(key)
    except orjson.JSONDecodeError:
        yield from take(key)
        return
    found = False
    for row in take(parsed):
        found = True
        yield row
    if not found and parsed != key:
        yield from take(key)


def _windows_table(operator_id: str, rows: list[dict[str, Any]], times: bool) -> Table:
    columns = list(dict.fromkeys(name for row in rows for name in row))
    table = new_table(f"{operator_id}: {len(rows):,} windows", columns or ["key"])

    def show(name: str, value: Any) -> str:
        if times and name in ("window_start", "window_end"):
            return utc_time(value)
        return _cell(value)

    for row in rows:
        table.add_row(*(show(c, row.get(c)) for c in columns))
    return table


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
