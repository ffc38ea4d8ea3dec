"""Windows keyed by an array (``key_by: "[a, b]"``): the key arrives JSON-decoded as a list and
is held as a tuple (it used to fail the task with ``TypeError: unhashable type``)."""

from __future__ import annotations

import pytest

from kstream.testing import PipelineDriver

PIPELINE = """\
pipeline: list-keys
sources:
  - topic: flights
    event_time: {{field: ts, unit: ms}}
operators:
  - key_by: "[carrier, flight]"
  - id: w
    window: {window}
sinks:
  - topic: out
"""


@pytest.mark.parametrize(
    "window",
    [
        "{type: global, emit: final, aggregate: {n: count}}",
        "{type: tumbling, size: 1m, aggregate: {n: count}}",
        "{type: session, gap: 1m, aggregate: {n: count}}",
        "{type: count, size: 2, aggregate: {n: count}}",
    ],
)
def test_an_array_key_is_counted_per_key(window: str) -> None:
    driver = PipelineDriver.from_yaml(PIPELINE.format(window=window))
    for ts, carrier in [(1_000, "UA"), (2_000, "UA"), (3_000, "B6"), (4_000, "B6")]:
        driver.send("flights", {"carrier": carrier, "flight": 1, "ts": ts})
    driver.end_of_input()
    got = {tuple(r.value["key"]): r.value["n"] for r in driver.output("out")}
    assert got == {("UA", 1): 2, ("B6", 1): 2}
