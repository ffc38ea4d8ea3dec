"""``key_fields`` of sinks and sources: the Kafka key as named fields of the value, as Flink's
Kafka connectors write it (``'key.fields'``, ``'value.fields-include'``; docs/pipeline.md)."""

from __future__ import annotations

import orjson
import pytest

from kstream.errors import ConfigError, KStreamError
from kstream.pipeline.load import load_pipeline_text
from kstream.testing.driver import PipelineDriver

PIPELINE = """pipeline: busy-routes
sources:
  - topic: flights
operators:
  - key_by: "[carrier, origin]"
  - id: per-route
    window:
      type: global
      aggregate: {flights: count}
  - filter: {expr: "flights < 3", otherwise: delete}
  - map: {select: [], fields: {carrier: "key[0]", origin: "key[1]", flights: flights}}
sinks:
  - topic: routes
    key_format: json
    key_fields: [carrier, origin]
"""


def _raw(driver: PipelineDriver, topic: str) -> list[tuple[bytes | None, bytes | None]]:
    return [(k, v) for k, v, *_ in driver.topics[topic]]


def test_the_key_is_a_json_object_of_the_fields_and_tombstones_carry_it_too() -> None:
    driver = PipelineDriver(load_pipeline_text(PIPELINE))
    for carrier in ("AA", "AA", "UA", "AA"):
        driver.send("flights", {"carrier": carrier, "origin": "EWR"})
    aa, ua = b'{"carrier":"AA","origin":"EWR"}', b'{"carrier":"UA","origin":"EWR"}'
    assert _raw(driver, "routes") == [
        (aa, b'{"carrier":"AA","origin":"EWR","flights":1}'),
        (aa, b'{"carrier":"AA","origin":"EWR","flights":2}'),
        (ua, b'{"carrier":"UA","origin":"EWR","flights":1}'),
        (aa, None),  # the third AA flight fails the filter: its row is deleted
    ]


def test_except_key_leaves_the_key_fields_out_of_the_value_and_a_prefix_out_of_the_key() -> None:
    text = PIPELINE.replace(
        'carrier: "key[0]", origin: "key[1]"', 'k_c: "key[0]", origin: "key[1]"'
    )
    text = text.replace("key_fields: [carrier, origin]", "key_fields: [k_c]\n")
    text += "    key_fields_prefix: k_\n    value_fields_include: except_key\n"
    driver = PipelineDriver(load_pipeline_text(text))
    driver.send("flights", {"carrier": "AA", "origin": "EWR"})
    assert _raw(driver, "routes") == [(b'{"c":"AA"}', b'{"origin":"EWR","flights":1}')]


def test_value_field_writes_that_field_alone_with_or_without_key_fields() -> None:
    """A sink's ``value_field`` (Flink's raw sink): the field's text with ``format: string``;
    a tombstone stays one (the deleted row keeps its JSON key)."""
    text = PIPELINE + "    format: string\n    value_field: carrier\n"
    driver = PipelineDriver(load_pipeline_text(text))
    for carrier in ("AA", "AA", "AA"):
        driver.send("flights", {"carrier": carrier, "origin": "EWR"})
    aa = b'{"carrier":"AA","origin":"EWR"}'
    assert _raw(driver, "routes") == [(aa, b"AA"), (aa, b"AA"), (aa, None)]
    plain = PIPELINE.replace("    key_format: json\n    key_fields: [carrier, origin]\n", "")
    driver = PipelineDriver(load_pipeline_text(plain + "    value_field: flights\n"))
    driver.send("flights", {"carrier": "UA", "origin": "JFK"})
    assert [v for _, v in _raw(driver, "routes")] == [b"1"]  # JSON of the field's value


def test_a_string_key_is_the_one_field_as_text() -> None:
    text = PIPELINE.replace("key_format: json", "key_format: string")
    text = text.replace("key_fields: [carrier, origin]", "key_fields: [origin]")
    driver = PipelineDriver(load_pipeline_text(text))
    driver.send("flights", {"carrier": "AA", "origin": "EWR"})
    assert [k for k, _ in _raw(driver, "routes")] == [b"EWR"]


def test_a_tombstone_whose_key_does_not_hold_the_fields_is_a_bad_record() -> None:
    text = PIPELINE.replace("key_fields: [carrier, origin]", "key_fields: [carrier, origin, x]")
    text = text.replace("  - topic: flights\n", "  - topic: flights\n    on_error: skip\n", 1)
    driver = PipelineDriver(load_pipeline_text(text))
    for _ in range(3):
        driver.send("flights", {"carrier": "AA", "origin": "EWR"})
    keys = [orjson.loads(k) for k, _ in _raw(driver, "routes")]
    assert keys == [{"carrier": "AA", "origin": "EWR", "x": None}] * 2  # the tombstone skipped


SOURCE = """pipeline: keyed-source
sources:
  - topic: readings
    key_format: {key_format}
    key_fields: {fields}
operators:
  - map: {{fields: {{seen: "True"}}}}
sinks:
  - topic: out
"""


def test_a_source_sets_its_key_fields_on_the_value_from_the_key() -> None:
    text = SOURCE.format(key_format="json", fields="[k_station, k_day]")
    text = text.replace("    key_fields:", "    key_fields_prefix: k_\n    key_fields:")
    driver = PipelineDriver(load_pipeline_text(text))
    driver.send("readings", {"t": 3, "k_station": "old"}, key='{"station": "S1"}')
    out = driver.output("out")[0].value
    assert out == {"t": 3, "k_station": "S1", "k_day": None, "seen": True}


def test_a_string_key_is_the_one_field() -> None:
    driver = PipelineDriver(load_pipeline_text(SOURCE.format(key_format="string", fields="[s]")))
    driver.send("readings", {"t": 3}, key="S1")
    assert driver.output("out")[0].value == {"t": 3, "s": "S1", "seen": True}


def test_a_json_key_that_is_not_an_object_is_a_bad_record() -> None:
    text = SOURCE.format(key_format="json", fields="[s]")
    driver = PipelineDriver(load_pipeline_text(text))
    with pytest.raises(KStreamError, match="key_fields need a JSON object key, got list"):
        driver.send("readings", {"t": 3}, key="[1]")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("key_fields: [carrier, carrier]", "field 'carrier' is listed twice"),
        ("key_fields: []", "key_fields is a list of field names"),
        ("key_fields: [carrier, origin]\n    key_format: string", "a string key holds one field"),
        ("key_fields: [carrier]\n    key_fields_prefix: k_", "'carrier' does not start with 'k_'"),
        ("key_format: json\n    value_fields_include: some", "invalid value 'some'"),
    ],
)
def test_key_field_options_are_checked(change: str, message: str) -> None:
    text = PIPELINE.replace("key_format: json\n    key_fields: [carrier, origin]", change)
    with pytest.raises(ConfigError, match=message):
        load_pipeline_text(text)


def test_value_fields_include_needs_key_fields() -> None:
    text = PIPELINE.replace("key_fields: [carrier, origin]", "value_fields_include: except_key")
    with pytest.raises(ConfigError, match="'value_fields_include' is only used with key_fields"):
        load_pipeline_text(text)
