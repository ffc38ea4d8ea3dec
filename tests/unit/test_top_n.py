"""The ``top_n`` item: per key, the first n rows of an updating input by an order, emitted as
ranks change; its file errors name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from kstream.errors import ConfigError
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import ProcessSpec, TopNSpec
from kstream.testing.driver import PipelineDriver

DOCS = Path(__file__).parents[2] / "docs" / "pipeline.md"


def pipeline_of_the_docs() -> str:
    text = DOCS.read_text(encoding="utf-8")
    start = text.index("pipeline: busiest-routes")
    return text[start : text.index("```", start)]


def test_top_n_loads_as_a_process_node_with_its_order() -> None:
    op = load_pipeline_text(pipeline_of_the_docs()).operators[-1]
    assert isinstance(op, ProcessSpec)
    assert op.top_n == TopNSpec(
        n=3, row_key="dest", order=(("flights", True, False), ("dest", False, True)), rank="rn"
    )
    assert op.state == (("rows", "map"), ("emitted", "value"))


def test_top_n_emits_each_rank_whose_row_changed() -> None:
    """Routes of EWR counted one flight at a time; ties (equal counts) go by dest::

    flight:  ORD  ATL  ORD  BOS  ATL  ATL
    rank 1:  ORD  ATL  ORD  .    ATL  ATL      (ATL 2 = ORD 2: ATL first)
    rank 2:   .   ORD  ATL  .    ORD  .
    rank 3:   .    .    .   BOS  .    .
    """
    driver = PipelineDriver(load_pipeline_text(pipeline_of_the_docs()))
    for dest in ("ORD", "ATL", "ORD", "BOS", "ATL", "ATL"):
        driver.send("flights", {"origin": "EWR", "dest": dest})
    driver.end_of_input()
    got = [
        (r.value["rn"], r.value["dest"], r.value["flights"])
        for r in driver.output("busiest-routes")
    ]
    assert got == [
        (1, "ORD", 1),
        (1, "ATL", 1),
        (2, "ORD", 1),
        (1, "ORD", 2),
        (2, "ATL", 1),
        (3, "BOS", 1),
        (1, "ATL", 2),
        (2, "ORD", 2),
        (1, "ATL", 3),
    ]
    assert {r.key for r in driver.output("busiest-routes")} == {"EWR"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{n: 3, row_key: dest}", "top_n needs 'order'"),
        ("{n: 0, row_key: dest, order: [flights]}", "expected a positive integer"),
        ("{n: 3, row_key: dest, order: [flights DOWN]}", "is not 'field [ASC|DESC]"),
        ("{n: 3, row_key: dest, order: [flights], keep: all}", "unknown key 'keep'"),
    ],
)
def test_top_n_errors_name_the_line(body: str, message: str) -> None:
    text = pipeline_of_the_docs().replace(
        "{n: 3, row_key: dest, order: [flights DESC, dest]}", body
    )
    with pytest.raises(ConfigError) as info:
        load_pipeline_text(text)
    assert message in str(info.value) and "<string>:16:" in str(info.value), str(info.value)


def test_top_n_needs_a_key_by() -> None:
    text = pipeline_of_the_docs()
    unkeyed = text[: text.index("  - id: by-route")] + text[text.index("  - id: top-routes") :]
    with pytest.raises(ConfigError, match="is not keyed"):
        load_pipeline_text(unkeyed)


def test_top_n_without_row_key_keeps_only_the_ranked_records() -> None:
    text = pipeline_of_the_docs()
    longest = (
        text[: text.index("  - id: by-route")]
        + "  - id: by-origin\n    key_by: origin\n"
        + "  - id: top-routes\n    top_n: {n: 2, order: [distance DESC]}\n"
        + text[text.index("sinks:") :]
    )
    driver = PipelineDriver(load_pipeline_text(longest))
    for dest, distance in (("ORD", 719), ("LAX", 2454), ("BOS", 200), ("SFO", 2565)):
        driver.send("flights", {"origin": "EWR", "dest": dest, "distance": distance})
    got = [(r.value["rn"], r.value["dest"]) for r in driver.output("busiest-routes")]
    assert got == [(1, "ORD"), (1, "LAX"), (2, "ORD"), (1, "SFO"), (2, "LAX")]
