"""How the table-printing commands print: rich tables on a terminal, JSON Lines when piped.

The rule (docs/cli.md): ``--output table|jsonl`` (``plan`` and ``savepoint inspect`` also
``json``); by default a table on a terminal and ``jsonl`` when stdout is not a terminal. A jsonl
line is one JSON object per table row, with numbers as numbers and every time twice:
``<name>_ms`` (epoch milliseconds) and ``<name>_utc`` (ISO-8601 UTC text). Table cells are never
cut: on a terminal too narrow for a value, the value folds onto the next line.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import click
import orjson
from rich.table import Table

#: A watermark at or below this is shown as ``-inf`` (none yet); at or above ``2**62``, ``+inf``.
_NO_TIME = 2**62


def utc_time(ms: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) of epoch milliseconds ``ms``: what tables show."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso_utc(ms: int | None) -> str | None:
    """ISO-8601 UTC text with milliseconds (``2013-01-01T05:00:00.000Z``) of epoch ms ``ms``;
    ``-inf``/``+inf`` for the watermark sentinels, None for None."""
    if ms is None:
        return None
    if ms <= -_NO_TIME:
        return "-inf"
    if ms >= _NO_TIME:
        return "+inf"
    text = datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def watermark_text(ms: int | None) -> str:
    """A watermark (epoch ms) for a table cell: ``-`` (unknown), ``-inf``, ``+inf`` or
    :func:`utc_time`."""
    if ms is None:
        return "-"
    if ms <= -_NO_TIME:
        return "-inf"
    if ms >= _NO_TIME:
        return "+inf"
    return utc_time(int(ms))


def time_fields(name: str, ms: int | None) -> dict[str, Any]:
    """``{"<name>_ms": ms, "<name>_utc": iso_utc(ms)}``: a time in a jsonl row."""
    return {f"{name}_ms": ms, f"{name}_utc": iso_utc(ms)}


def echo_jsonl(rows: Iterable[Mapping[str, Any]]) -> None:
    """Print one compact JSON object per line (values orjson cannot encode: as text)."""
    out = sys.stdout
    for row in rows:
        out.write(orjson.dumps(row, default=str).decode("utf-8"))
        out.write("\n")
    out.flush()


def echo_json(document: Any) -> None:
    """Print one JSON document, indented."""
    click.echo(orjson.dumps(document, default=str, option=orjson.OPT_INDENT_2).decode())


def new_table(title: str | None, columns: Iterable[str], right: Iterable[str] = ()) -> Table:
    """A table whose cells fold instead of being cut (``overflow="fold"``, wrapping allowed):
    a value shows in full whatever the width, on more lines when the terminal is narrow.
    Columns named in ``right`` are right-justified (numbers)."""
    table = Table(title=title)
    right = set(right)
    for name in columns:
        table.add_column(name, justify="right" if name in right else "left", overflow="fold")
    return table
