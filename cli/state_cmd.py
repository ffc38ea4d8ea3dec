"""``kstream state dump``: the windows an operator holds in a savepoint (docs/savepoints.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import orjson
from kstream_cli.errors import handle_errors
from kstream_cli.options import stdout_console
from kstream_cli.savepoint_cmd import utc_time
from rich.table import Table

from kstream.savepoint import Savepoint, open_savepoint

_TIME_WINDOWS = ("tumbling", "sliding", "session")


@click.group()
def state() -> None:
    """Look at saved operator state."""


@state.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--operator", "operator_id", required=True, help="The stateful operator's id.")
@click.option("--key", help="Only this record key (JSON, e.g. 42 or '[\"a\", 1]', or text).")
@click.option(
    "--output",
    type=click.Choice(["table", "jsonl"]),
    default="table",
    show_default=True,
    help="A rich table, or one JSON object per window.",
)
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
    """Print the windows held by operator --operator in the savepoint in DIRECTORY."""
    sp = open_savepoint(directory)
    rows = _select(sp, operator_id, key, python_path or (".",), limit)
    if output == "jsonl":
        for row in rows:
            click.echo(orjson.dumps(row, default=str).decode())
        return
    kind = sp.manifest.operators[operator_id].definition.get("type")
    stdout_console().print(_windows_table(operator_id, rows, kind in _TIME_WINDOWS))


def _select(
    sp: Savepoint, operator_id: str, key: str | None, paths: tuple[str, ...], limit: int | None
) -> list[dict[str, Any]]:
    """The windows of ``operator_id``; ``key`` matches a JSON value, else the text itself."""

    def take(wanted: Any) -> list[dict[str, Any]]:
        out = []
        for row in sp.windows(operator_id, wanted, search_paths=paths):
            out.append(row)
            if limit is not None and len(out) >= limit:
                break
        return out

    if key is None:
        return take(None)
    try:
        parsed = orjson.loads(key)
    except orjson.JSONDecodeError:
        return take(key)
    return take(parsed) or (take(key) if parsed != key else [])


def _windows_table(operator_id: str, rows: list[dict[str, Any]], times: bool) -> Table:
    columns = list(dict.fromkeys(name for row in rows for name in row))
    table = Table(title=f"{operator_id}: {len(rows):,} windows")
    for column in columns or ["key"]:
        table.add_column(column)

    def show(name: str, value: Any) -> str:
        if times and name in ("window_start", "window_end"):
            return utc_time(value)
        return _cell(value)

    for row in rows:
        table.add_row(*(show(c, row.get(c)) for c in columns))
    return table


def _cell(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value, default=str).decode()
