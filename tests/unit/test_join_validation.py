"""Loading ``join:`` nodes: the spec, the errors users see (file:line, what, how to fix), the
repartitions the planner inserts and their partition counts."""

from __future__ import annotations

import pytest

from kstream.errors import ConfigError
from kstream.graph.plan import build_plan
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import JoinSpec, KeyBySpec
from kstream.runtime.topology import wanted_topics

HEAD = """\
pipeline: p
sources:
  - {id: flights, topic: flights, event_time: sched_dep_ts}
  - {id: weather, topic: weather, event_time: time_ts}
operators:
"""
JOIN = """\
  - id: near
    from: flights
    join: {type: interval, right: weather, on: origin, between: [-30m, 30m]}
"""
SINKS = """\
sinks:
  - {topic: out, from: near}
"""


def errors(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        load_pipeline_text(text)
    return str(info.value)


def test_an_interval_join_loads_with_its_repartitions() -> None:
    spec = load_pipeline_text(HEAD + JOIN + SINKS)
    left, right, join = spec.operators
    assert isinstance(join, JoinSpec)
    assert (join.type, join.how, join.lower_ms, join.upper_ms) == (
        "interval",
        "inner",
        -1_800_000,
        1_800_000,
    )
    assert (join.on_left, join.on_right, join.right_name) == ("origin", "origin", "weather")
    assert isinstance(left, KeyBySpec) and isinstance(right, KeyBySpec)
    assert (left.id, left.expr, [str(r) for r in left.inputs]) == (
        "near.left",
        "origin",
        ["flights"],
    )
    assert (right.id, [str(r) for r in right.inputs]) == ("near.right", ["weather"])
    assert [str(r) for r in join.inputs] == ["near.left", "near.right"]
    assert spec.stateful_ids() == ["near"]


def test_an_input_keyed_by_the_join_key_is_not_repartitioned_again() -> None:
    text = (
        HEAD + "  - {id: by-origin, from: flights, key_by: origin}\n  - {filter: 'dep_delay > 0'}\n"
    )
    spec = load_pipeline_text(text + JOIN.replace("from: flights", "from: filter-1") + SINKS)
    join = spec.operators[-1]
    assert isinstance(join, JoinSpec)
    assert [str(r) for r in join.inputs] == ["filter-1", "near.right"]


def test_co_partitioned_repartition_topics_get_one_partition_count() -> None:
    spec = load_pipeline_text(HEAD + JOIN + SINKS)
    plan = build_plan(spec)
    counts = {t.name: t.partitions for t in wanted_topics(plan, {"flights": 2, "weather": 5})}
    assert counts["p.near.left.repartition"] == counts["p.near.right.repartition"] == 5
    assert counts["p.near.changelog"] == counts["p.near.timers.changelog"] == 5
    assert counts["out"] == 5


@pytest.mark.parametrize(
    ("join", "message", "hint"),
    [
        (
            "{type: interval, right: weather, on: origin}",
            "needs 'between: [lo, hi]'",
            "between: [-30m, 30m]",
        ),
        (
            "{type: interval, right: weather, on: origin, between: [1h, -1h]}",
            "lo (1h) is after hi (-1h)",
            "between",
        ),
        (
            "{type: interval, right: weather, on: origin, between: [1h]}",
            "expected [lo, hi]",
            "between",
        ),
        (
            "{type: interval, right: wether, on: origin, between: [0, 1]}",
            "unknown node 'wether'",
            "did you mean 'weather'",
        ),
        (
            "{type: interval, right: weather, on: {left: origin}, between: [0, 1]}",
            "missing required key 'right'",
            "add 'right:'",
        ),
        (
            "{type: interval, right: weather, between: [0, 1]}",
            "missing required key 'on'",
            "add 'on:'",
        ),
        (
            "{type: interval, right: weather, on: origin, between: [0, 1], how: outer}",
            "invalid value 'outer'",
            "expected one of",
        ),
        (
            "{type: window, right: weather, on: origin, window: {type: session, size: 1h}}",
            "a session window needs 'gap'",
            "write window:",
        ),
        (
            "{type: window, right: weather, on: origin, window: {type: session, gap: 1h, "
            "offset: 1m}}",
            "'offset' is not for session windows",
            "remove it",
        ),
        (
            "{type: interval, right: weather, on: origin, between: [0, 1], window: {}}",
            "'window' is for window joins",
            "remove it",
        ),
        (
            "{type: interval, right: weather, on: 'origin +', between: [0, 1]}",
            "invalid",
            "expression",
        ),
    ],
)
def test_join_errors_name_the_line_and_the_fix(join: str, message: str, hint: str) -> None:
    text = HEAD + f"  - id: near\n    from: flights\n    join: {join}\n" + SINKS
    shown = errors(text)
    assert "<string>:8:" in shown, shown
    assert message in shown and hint in shown, shown


def test_a_join_needs_an_id() -> None:
    text = (
        HEAD
        + "  - from: flights\n"
        + "    join: {type: interval, right: weather, on: origin, between: [0, 1]}\n"
    )
    assert "a join operator needs an 'id'" in errors(text + "sinks:\n  - {topic: out}\n")


def test_the_id_of_an_inserted_repartition_must_be_free() -> None:
    text = (
        HEAD
        + "  - {id: near.left, from: flights, filter: 'true'}\n"
        + JOIN.replace("from: flights", "from: near.left")
    )
    shown = errors(text + SINKS)
    assert "id 'near.left' is taken" in shown and "rename it" in shown
