"""Error policies per source, operator and sink, through the broker-free PipelineDriver: every
poison kind, what its dead letter looks like, and that good records are unaffected."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from kstream.errors import RecordError
from kstream.pipeline import schemas
from kstream.runtime.policy import BadRecordFailure
from kstream.runtime.task import repartition_sequence
from kstream.testing import PipelineDriver

HOUR = 3_600_000
T0 = 1_357_000_000_000  # 2012-12-31


def pipeline(
    source: str = "on_error: dead_letter\n    dead_letter_topic: dlq",
    ops: str = "",
    sink: str = "",
    agg: str = "{n: count, total: {sum: share}, top: {max: dep_delay}}",
) -> str:
    """The windowed pipeline of the poison tests: map -> key_by -> hourly tumbling window."""
    return f"""\
pipeline: poison
sources:
  - topic: in
    event_time: {{field: ts, unit: ms}}
    watermark: {{max_out_of_orderness: 1h}}
    {source}
operators:
  - id: enrich
    map: {{fields: {{share: "1 / weight", delay_h: "dep_delay / 60", note: "pad * rep"}}}}
    {ops}
  - id: by-origin
    key_by: origin
  - id: hourly
    window: {{type: tumbling, size: 1h, aggregate: {agg}}}
sinks:
  - topic: out
    {sink}
"""


def good(i: int, origin: str = "JFK") -> dict[str, Any]:
    return {
        "ts": T0 + i * 60_000,
        "origin": origin,
        "dep_delay": i,
        "weight": 1,
        "pad": "",
        "rep": 0,
    }


def _deep(levels: int) -> bytes:
    return b'{"ts": %d, "x": ' % (T0 + 1) + b"[" * levels + b"]" * levels + b"}"


#: poison kind -> (raw value, expected stage, expected error class, operator)
POISON: dict[str, tuple[bytes, str, str, str]] = {
    "truncated JSON": (orjson.dumps(good(1))[:-7], "deserialize", "JSONDecodeError", "source"),
    "invalid UTF-8": (b'{"ts": 1, "origin": "J\xff"}', "deserialize", "JSONDecodeError", "source"),
    "non-object": (b"[1, 2, 3]", "deserialize", "RecordError", "source"),
    "NaN": (b'{"ts": 1, "dep_delay": NaN}', "deserialize", "JSONDecodeError", "source"),
    "Infinity": (b'{"ts": 1, "dep_delay": -Infinity}', "deserialize", "JSONDecodeError", "source"),
    "deep nesting": (_deep(150), "deserialize", "RecordError", "source"),
    "very deep nesting": (_deep(5000), "deserialize", "JSONDecodeError", "source"),
    "5,000-digit integer": (
        b'{"ts": 1, "dep_delay": ' + b"7" * 5000 + b"}",
        "deserialize",
        "JSONDecodeError",
        "source",
    ),
    "missing event time": (orjson.dumps({"origin": "JFK"}), "timestamp", "RecordError", "source"),
    "wrong event-time type": (
        orjson.dumps({**good(1), "ts": "yesterday"}),
        "timestamp",
        "RecordError",
        "source",
    ),
    "far future": (
        orjson.dumps({**good(1), "ts": T0 + 10 * 365 * 86_400_000}),
        "timestamp",
        "RecordError",
        "source",
    ),
    "wrong field type": (
        orjson.dumps({**good(1), "dep_delay": "12"}),
        "expression",
        "TypeError",
        "enrich",
    ),
    "division by zero": (
        orjson.dumps({**good(1), "weight": 0}),
        "expression",
        "ZeroDivisionError",
        "enrich",
    ),
    "missing field": (
        orjson.dumps({k: v for k, v in good(1).items() if k != "weight"}),
        "expression",
        "KeyError",
        "enrich",
    ),
}


def run(driver: PipelineDriver, values: list[bytes | dict[str, Any]]) -> None:
    for value in values:
        driver.send("in", value, key="k")
    driver.end_of_input()


def windows(driver: PipelineDriver) -> dict[tuple[str, int], tuple[int, float, int]]:
    return {
        (r.value["key"], r.value["window_start"]): (r.value["n"], r.value["total"], r.value["top"])
        for r in driver.output("out")
    }


def test_every_poison_kind_goes_to_the_dead_letter_topic_with_its_headers() -> None:
    driver = PipelineDriver.from_yaml(pipeline())
    values: list[bytes | dict[str, Any]] = []
    for i in range(60):
        values.append(good(i, "JFK" if i % 2 else "LGA"))
        if i < len(POISON):
            values.append(list(POISON.values())[i][0])
    run(driver, values)
    dead = driver.topic("dlq")
    assert len(dead) == len(POISON)
    for (kind, (raw, stage, cls, operator)), letter in zip(POISON.items(), dead, strict=True):
        h = letter.headers
        assert (h["kstream.error.stage"], h["kstream.error.class"]) == (stage, cls), kind
        assert h["kstream.error.operator"] == operator, kind
        assert (h["kstream.source.topic"], h["kstream.source.partition"]) == ("in", "0")
        offset = values.index(raw)
        assert h["kstream.source.offset"] == str(offset), kind
        assert driver.topics["dlq"][dead.index(letter)][1] == raw  # the original bytes
        assert driver.topics["dlq"][dead.index(letter)][0] == b"k"
        assert h["kstream.error.message"], kind
    clean = PipelineDriver.from_yaml(pipeline())
    run(clean, [v for v in values if isinstance(v, dict)])
    assert windows(driver) == windows(clean)
    assert driver.tasks[("in", 0)].counters["dead_letter"] == len(POISON)


def test_a_byte_order_mark_is_accepted() -> None:
    driver = PipelineDriver.from_yaml(pipeline())
    run(driver, [b"\xef\xbb\xbf" + orjson.dumps(good(1)), good(2)])
    assert windows(driver) == {("JFK", T0 - T0 % HOUR): (2, 2.0, 2)}
    assert driver.topic("dlq") == []


def test_a_bad_record_does_not_move_the_watermark() -> None:
    driver = PipelineDriver.from_yaml(pipeline())
    driver.send("in", good(0))
    driver.send("in", {**good(600), "weight": 0})  # 10 h later, but rejected by the map
    assert driver.current_watermark("in") == good(0)["ts"] - HOUR - 1


def test_an_operator_policy_overrides_the_source_policy() -> None:
    driver = PipelineDriver.from_yaml(pipeline(ops="on_error: skip"))
    run(driver, [good(1), {**good(2), "weight": 0}, b"{", good(3)])
    assert [r.headers["kstream.error.stage"] for r in driver.topic("dlq")] == ["deserialize"]
    assert driver.tasks[("in", 0)].counters["skipped"] == 1
    assert sum(n for n, _, _ in windows(driver).values()) == 2


def test_fail_names_topic_partition_offset_and_operator() -> None:
    driver = PipelineDriver.from_yaml(pipeline(source="on_error: fail"))
    driver.send("in", good(1))
    with pytest.raises(BadRecordFailure) as info:
        driver.send("in", {**good(2), "weight": 0})
    text = str(info.value)
    assert text.startswith("bad record at in[0]@1 (expression): operator 'enrich': ")
    assert "division by zero" in text
    assert (info.value.topic, info.value.partition, info.value.offset) == ("in", 0, 1)
    assert driver.tasks[("in", 0)].position == 1  # not past the bad record
    with pytest.raises(RecordError, match=r"in\[0\]@2 \(deserialize\): invalid JSON"):
        driver.send("in", b"{")


def test_an_output_too_large_is_a_produce_error_of_the_operator_that_writes_it() -> None:
    class Limited(PipelineDriver):
        def _emit(self, topic: str, key: Any, value: Any, *rest: Any) -> None:
            if value is not None and len(value) > 10_000:
                raise RecordError("produce", f"a record of {len(value)} bytes is too large")
            super()._emit(topic, key, value, *rest)

    driver = Limited.from_yaml(pipeline())
    run(driver, [good(1), {**good(2), "pad": "x", "rep": 20_000}, good(3)])
    (letter,) = driver.topic("dlq")
    assert letter.headers["kstream.error.stage"] == "produce"
    assert letter.headers["kstream.error.operator"] == "by-origin"
    assert letter.value["rep"] == 20_000  # the original, small record
    assert sum(n for n, _, _ in windows(driver).values()) == 2


def test_a_failing_window_result_does_not_stop_the_other_windows(tmp_path: Path) -> None:
    schema = {
        "type": "record",
        "name": "Hourly",
        "fields": [
            {"name": "key", "type": "string"},
            {"name": "window_start", "type": "long"},
            {"name": "window_end", "type": "long"},
            {"name": "n", "type": "long"},
            {"name": "total", "type": ["null", "double"]},
            {"name": "top", "type": "int"},  # a top delay beyond 2**31 does not fit
        ],
    }
    (tmp_path / "hourly.avsc").write_text(orjson.dumps(schema).decode())
    sink = (
        "format: avro\n    schema: hourly.avsc\n"
        "    on_error: dead_letter\n    dead_letter_topic: rejects"
    )
    path = tmp_path / "p.yaml"
    path.write_text(pipeline(sink=sink))
    driver = PipelineDriver.from_yaml(path)
    big = {**good(1, "EWR"), "dep_delay": 2**40}
    run(driver, [good(1), good(2, "LGA"), big])
    assert len(driver.topics["out"]) == 2
    (letter,) = driver.topic("rejects")
    assert letter.value["key"] == "EWR" and letter.value["top"] == 2**40  # the result as JSON
    h = letter.headers
    assert (h["kstream.error.stage"], h["kstream.error.operator"]) == ("serialize", "sink:out")
    assert h["kstream.source.topic"] == "poison.by-origin.repartition"
    assert "kstream.source.offset" not in h  # a window result has no offset of its own


def test_a_window_policy_covers_its_aggregations() -> None:
    ops_window = "{n: count, total: {sum: share}, top: {max: dep_delay}, s: {sum: label}}"
    text = pipeline(agg=ops_window).replace(
        "  - id: hourly\n",
        "  - id: hourly\n    on_error: dead_letter\n    dead_letter_topic: agg-dlq\n",
    )
    driver = PipelineDriver.from_yaml(text)
    run(driver, [{**good(1), "label": 1}, {**good(2), "label": "x"}])
    (letter,) = driver.topic("agg-dlq")
    assert letter.headers["kstream.error.stage"] == "aggregate"
    assert letter.headers["kstream.error.operator"] == "hourly"
    assert letter.headers["kstream.source.topic"] == "poison.by-origin.repartition"
    assert driver.topic("dlq") == []


def test_avro_sink_output_reads_back_and_late_records_keep_the_source_format(
    tmp_path: Path,
) -> None:
    from kstream.io import avro, codecs

    schema = {
        "type": "record",
        "name": "Reading",
        "fields": [{"name": "ts", "type": "long"}, {"name": "origin", "type": "string"}],
    }
    (tmp_path / "reading.avsc").write_text(orjson.dumps(schema).decode())
    path = tmp_path / "p.yaml"
    path.write_text(
        "pipeline: late\nsources:\n  - topic: in\n    format: avro\n    schema: reading.avsc\n"
        "    event_time: ts\noperators:\n  - id: by\n    key_by: origin\n  - id: w\n"
        "    window: {type: tumbling, size: 10, late_topic: late, aggregate: {n: count}}\n"
        "sinks:\n  - topic: out\n    format: avro\n"
    )
    driver = PipelineDriver.from_yaml(path)
    encode = avro.encoder(schemas.load_schema_file(str(tmp_path / "reading.avsc")))
    for ts in (5, 25, 3):  # 3 is late once 25 has moved the watermark past 9
        driver.send("in", encode({"ts": ts, "origin": "JFK"}))
    driver.end_of_input()
    spec = driver.plan.spec
    _, decode = codecs.sink_decoders(spec.sinks[0], spec)
    assert [decode(v)["n"] for _, v, *_ in driver.topics["out"]] == [1, 1]
    (late,) = driver.topics["late"]
    assert avro.decoder(schemas.load_schema_file(str(tmp_path / "reading.avsc")))(late[1]) == {
        "ts": 3,
        "origin": "JFK",
    }


def test_repartition_sequence_reads_the_seq_header_and_rejects_the_rest() -> None:
    assert repartition_sequence([("kstream.seq", b"by-k:3/41")]) == (b"by-k:3", 41)
    for headers in (
        None,
        [],
        [("other", b"x")],
        [("kstream.seq", b"by-k:3/x")],
        [("kstream.seq", None)],
    ):
        with pytest.raises(RecordError, match=r"without a valid kstream\.seq header"):
            repartition_sequence(headers)  # type: ignore[arg-type]


def test_a_repartition_record_without_headers_follows_the_error_policy() -> None:
    """A record someone else wrote to a repartition topic (no ``kstream.seq`` header) is a bad
    record of the downstream stage: dead-lettered under ``dead_letter``, never a crash."""
    driver = PipelineDriver.from_yaml(pipeline())
    driver.send("in", good(0))
    repartition = driver.plan.stages[1].input_topic
    # written past the driver's public API, as a foreign producer would
    driver._deliver(repartition, 0, b'"JFK"', orjson.dumps(good(1)), T0, None)
    driver._drain()
    letters = driver.output("dlq")
    assert len(letters) == 1
    assert letters[0].headers["kstream.error.stage"] == "deserialize"
    assert "kstream.seq" in letters[0].headers["kstream.error.message"]
    driver.end_of_input()
    assert [r.value["n"] for r in driver.output("out")] == [1]
