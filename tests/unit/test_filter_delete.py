"""``filter: {expr, otherwise: delete}``: over an updating table, a record that fails the test
deletes its key's row (a tombstone), as Kafka Streams' KTable.filter; a map passes it on."""

from __future__ import annotations

import pytest

from kstream.errors import ConfigError
from kstream.pipeline.load import load_pipeline_text
from kstream.testing.driver import PipelineDriver

PIPELINE = """pipeline: busy-origins
sources:
  - topic: flights
operators:
  - key_by: origin
  - id: per-origin
    window:
      type: global
      aggregate: {flights: count}
  - filter: {expr: "flights >= 2 and flights < 4", otherwise: delete}
  - map: {fields: {busy: "True"}}
sinks:
  - topic: busy-origins
"""


def test_a_failing_update_becomes_a_tombstone_that_the_map_passes_on() -> None:
    driver = PipelineDriver(load_pipeline_text(PIPELINE))
    for origin in ("EWR", "EWR", "JFK", "EWR", "EWR"):
        driver.send("flights", {"origin": origin})
    out = [
        (r.key, None if r.value is None else r.value["flights"])
        for r in driver.output("busy-origins")
    ]
    #: EWR 1 (fails: deleted), 2, JFK 1 (deleted), EWR 3, EWR 4 (fails: deleted)
    assert out == [("EWR", None), ("EWR", 2), ("JFK", None), ("EWR", 3), ("EWR", None)]


def test_otherwise_takes_drop_or_delete() -> None:
    with pytest.raises(ConfigError, match=r"<string>:10: .*otherwise.*delete"):
        load_pipeline_text(PIPELINE.replace("otherwise: delete", "otherwise: retract"))
    dropping = load_pipeline_text(PIPELINE.replace(", otherwise: delete", ""))
    driver = PipelineDriver(dropping)
    for origin in ("EWR", "EWR"):
        driver.send("flights", {"origin": origin})
    assert [r.value["flights"] for r in driver.output("busy-origins")] == [2]
