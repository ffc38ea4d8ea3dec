"""Avro: schema files with named references, resolution, poison bodies, the Confluent wire
format against confluent-kafka's ``mock://`` schema registry, and window-result schemas."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from kstream.errors import RecordError
from kstream.io import avro, codecs
from kstream.pipeline import schemas
from kstream.pipeline.spec import AggregationSpec, WindowSpec
from kstream.runtime.policy import error_class

REPO = Path(__file__).resolve().parents[2]
V1 = str(REPO / "schemas" / "flight-v1.avsc")
V2 = str(REPO / "schemas" / "flight.avsc")
FLIGHT: dict[str, Any] = {
    "year": 2013, "month": 1, "day": 1, "dep_time": 517, "sched_dep_time": 515, "dep_delay": 2,
    "arr_time": 830, "sched_arr_time": 819, "arr_delay": 11, "carrier": "UA", "flight": 1545,
    "tailnum": "N14228", "origin": "EWR", "dest": "IAH", "air_time": 227, "distance": 1400,
    "hour": 5, "minute": 15, "time_hour": "2013-01-01T10:00:00Z", "sched_dep_ts": 1357034100000,
}  # fmt: skip
POINT = {"type": "record", "name": "Point", "fields": [{"name": "x", "type": "long"}]}


def _deserialize_error(decode: Any, raw: bytes) -> RecordError:
    with pytest.raises(RecordError) as info:
        decode(raw)
    assert info.value.stage == "deserialize"
    return info.value


def test_named_types_are_resolved_across_files(tmp_path: Path) -> None:
    (tmp_path / "geo.Airport.avsc").write_text(
        json.dumps(
            {
                "type": "record",
                "name": "Airport",
                "namespace": "geo",
                "fields": [{"name": "code", "type": "string"}],
            }
        )
    )
    (tmp_path / "route.avsc").write_text(
        json.dumps(
            {
                "type": "record",
                "name": "Route",
                "namespace": "geo",
                "fields": [
                    {"name": "src", "type": "geo.Airport"},
                    {"name": "dst", "type": "Airport"},
                ],
            }
        )
    )
    schema = schemas.load_schema_file(str(tmp_path / "route.avsc"))
    route = {"src": {"code": "JFK"}, "dst": {"code": "SFO"}}
    assert avro.decoder(schema)(avro.encoder(schema)(route)) == route
    text = schemas.schema_json(schema)
    assert "__" not in text  # fastavro's private keys stay out of what a registry receives
    assert schemas.parse_schema(text)["name"] == "geo.Route"


def test_unusable_schema_files(tmp_path: Path) -> None:
    with pytest.raises(schemas.SchemaError, match="cannot read"):
        schemas.load_schema_file(str(tmp_path / "missing.avsc"))
    (tmp_path / "bad.avsc").write_text('{"type": "record", "name": "X", "fields": [{"name": "a"}]}')
    with pytest.raises(schemas.SchemaError, match="invalid Avro schema"):
        schemas.load_schema_file(str(tmp_path / "bad.avsc"))
    (tmp_path / "ref.avsc").write_text(
        '{"type": "record", "name": "Y", "fields": [{"name": "a", "type": "Nowhere"}]}'
    )
    with pytest.raises(schemas.SchemaError):
        schemas.load_schema_file(str(tmp_path / "ref.avsc"))


def test_an_older_writer_schema_is_read_with_the_newer_reader_schema() -> None:
    old, new = schemas.load_schema_file(V1), schemas.load_schema_file(V2)
    body = avro.encoder(old)(FLIGHT)
    assert avro.decoder(old, new)(body) == {**FLIGHT, "dep_ts": None}  # added field: default
    newer = avro.encoder(new)({**FLIGHT, "dep_ts": 1357034220000})
    assert avro.decoder(new, old)(newer) == FLIGHT  # removed field: skipped


def test_poison_avro_bodies() -> None:
    old, new = schemas.load_schema_file(V1), schemas.load_schema_file(V2)
    decode = avro.decoder(old, new)
    body = avro.encoder(old)(FLIGHT)
    truncated = _deserialize_error(decode, body[: len(body) // 2])
    assert (
        truncated.reason.startswith("truncated Avro body") and error_class(truncated) == "EOFError"
    )
    point = avro.encoder(schemas.parse_schema(POINT))({"x": 7})  # another schema entirely
    wrong = _deserialize_error(decode, point)
    assert "truncated" in wrong.reason or "left over" in wrong.reason
    extra = _deserialize_error(decode, body + b"\x00")
    assert "1 bytes left over" in extra.reason
    text = schemas.parse_schema(
        {"type": "record", "name": "T", "fields": [{"name": "s", "type": "string"}]}
    )
    assert "UnicodeDecodeError" in _deserialize_error(avro.decoder(text), b"\x04\xff\xfe").reason


def test_an_incompatible_writer_schema_is_a_deserialize_error() -> None:
    name = "kstream.examples.nycflights13.Flight"
    fields = [{"name": "year", "type": "string"}]
    writer = schemas.parse_schema({"type": "record", "name": name, "fields": fields})
    decode = avro.decoder(writer, schemas.load_schema_file(V2))
    error = _deserialize_error(decode, avro.encoder(writer)({"year": "2013"}))
    assert "cannot be read as" in error.reason and len(error.reason) < 600


def test_values_are_validated_not_coerced() -> None:
    encode = avro.encoder(schemas.load_schema_file(V1))
    for bad in ({**FLIGHT, "dep_delay": 1.5}, {**FLIGHT, "origin": None}, {"year": 2013}, [1]):
        with pytest.raises(RecordError) as info:
            encode(bad)
        assert info.value.stage == "serialize"
    assert encode({**FLIGHT, "dep_delay": None, "extra": "ignored"})


def test_confluent_framing() -> None:
    assert avro.frame(258, b"body") == b"\x00\x00\x00\x01\x02body"
    assert avro.unframe(b"\x00\x00\x00\x01\x02body") == (258, b"body")
    for raw in (b"", b"\x00\x00", b'{"json": 1}'):
        assert "Confluent wire format" in _deserialize_error(avro.unframe, raw).reason


def test_the_mock_registry_round_trip_and_its_poison() -> None:
    registry = {"url": f"mock://{uuid.uuid4().hex}"}
    old, new = schemas.load_schema_file(V1), schemas.load_schema_file(V2)
    raw = codecs.avro_encoder(old, registry, "flights-value")(FLIGHT)
    assert raw is not None and raw[0] == 0
    decode = codecs.avro_decoder(new, None, registry)
    assert decode(raw) == {**FLIGHT, "dep_ts": None}
    assert codecs.avro_decoder(None, None, registry)(raw) == FLIGHT  # read as written
    unknown = _deserialize_error(decode, b"\x00\x00\x00\x03\xe7" + raw[5:])
    assert unknown.reason == "unknown schema id 999 (not in the schema registry)"
    assert "unknown schema id 999" in _deserialize_error(decode, b"\x00\x00\x00\x03\xe7").reason
    assert "left over" in _deserialize_error(decode, raw + b"\x01\x02").reason
    assert "truncated" in _deserialize_error(decode, raw[:20]).reason
    point = schemas.parse_schema({**POINT, "name": "kstream.examples.nycflights13.Flight"})
    other = codecs.avro_encoder(point, registry, "other-value")({"x": 1})
    assert "cannot be read as" in _deserialize_error(decode, other or b"").reason
    assert codecs.avro_decoder(new, None, registry)(None) is None


def _window(emit: str = "final", kind: str = "tumbling") -> WindowSpec:
    aggs = (
        AggregationSpec("n", "count"),
        AggregationSpec("avg_delay", "avg", "dep_delay"),
        AggregationSpec("max_delay", "max", "dep_delay"),
        AggregationSpec("total", "sum", "distance"),
        AggregationSpec("last_tail", "last", "tailnum"),
        AggregationSpec("carriers", "collect", "carrier"),
        AggregationSpec("mixed", "min", "dep_delay / 60"),
    )
    return WindowSpec("hourly", kind, aggs, size_ms=3_600_000, emit=emit)  # type: ignore[arg-type]


def test_result_schema_types_follow_the_aggregations_and_the_input_schema() -> None:
    inputs = schemas.record_fields(schemas.load_schema_file(V2))
    schema = schemas.result_schema(_window(), "flights.hourly", inputs)
    types = {f["name"]: f["type"] for f in schema["fields"]}
    assert schema["name"] == "kstream.flights.hourly.hourly_result"
    assert types["key"] == list(schemas.GENERAL)
    assert types["window_start"] == types["window_end"] == "long"
    assert types["n"] == ["null", "long"] and types["avg_delay"] == ["null", "double"]
    assert types["max_delay"] == ["null", "long"] and types["total"] == ["null", "long"]
    assert types["last_tail"] == ["null", "string"]
    assert types["carriers"] == ["null", {"type": "array", "items": "string"}]
    assert types["mixed"] == list(schemas.GENERAL)  # not a plain field
    untyped = schemas.result_schema(_window(), "p", None)
    assert {f["name"]: f["type"] for f in untyped["fields"]}["max_delay"] == list(schemas.GENERAL)
    row = {
        **{"key": "JFK", "window_start": 0, "window_end": 3_600_000, "n": 2, "avg_delay": 1.5},
        **{"max_delay": 3, "total": 10, "last_tail": None, "carriers": ["UA"], "mixed": 0.05},
    }  # fmt: skip
    assert avro.decoder(untyped)(avro.encoder(untyped)(row)) == row


def test_result_schema_of_changelog_and_global_windows() -> None:
    changelog = schemas.result_schema(_window("changelog"), "p", None)
    assert [f["name"] for f in changelog["fields"]][-1] == "op"
    glob = schemas.result_schema(_window("update", "global"), "p", None)
    assert "window_start" not in [f["name"] for f in glob["fields"]]


def test_a_given_result_schema_is_checked() -> None:
    window = _window()
    derived = schemas.result_schema(window, "p", None)
    assert schemas.check_result_schema(derived, window) == []
    fields = [f for f in derived["fields"] if f["name"] != "total"]
    fields.append({"name": "note", "type": "string"})
    problems = schemas.check_result_schema({**derived, "fields": fields}, window)
    assert problems == [
        "it has no field 'total'",
        "field 'note' is not a result field and has no default",
    ]
    assert schemas.check_result_schema("long", window) != []


def test_logical_types_are_read_as_their_underlying_values() -> None:
    ts = {"type": "long", "logicalType": "timestamp-millis"}
    schema = schemas.parse_schema(
        {"type": "record", "name": "E", "fields": [{"name": "ts", "type": ts}]}
    )
    assert avro.decoder(schema)(avro.encoder(schema)({"ts": 1_700_000_000_000})) == {
        "ts": 1_700_000_000_000
    }
    assert '"logicalType":"timestamp-millis"' in schemas.schema_json(schema)  # kept for registries
