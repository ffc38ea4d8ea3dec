"""The pipeline file as a graph: ``from:`` defaults and references, ``union``, ``branch``, ports,
sinks on ports, and every graph error reported with its file:line, key path and a fix."""

from __future__ import annotations

import textwrap

import pytest

from kstream.errors import ConfigError, ConfigIssue
from kstream.graph.plan import build_plan
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import BranchSpec, PipelineSpec, PortRef, UnionSpec

HEAD = """\
pipeline: g
sources:
  - topic: flights
    event_time: ts
"""
WINDOW = "{type: tumbling, size: 1h, aggregate: {n: count}}"


def load(body: str) -> PipelineSpec:
    return load_pipeline_text(HEAD + textwrap.dedent(body), "g.yaml")


def issues_of(body: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        load(body)
    return info.value.issues


def only_issue(body: str) -> ConfigIssue:
    issues = issues_of(body)
    assert len(issues) == 1, [i.render() for i in issues]
    return issues[0]


# -- wiring -------------------------------------------------------------------------------------


def test_version_1_form_reads_the_previous_item_and_sinks_the_last() -> None:
    spec = load(
        f"""\
        operators:
          - filter: "dep_delay > 0"
          - key_by: origin
          - id: hourly
            window: {WINDOW}
        sinks:
          - topic: a
          - topic: b
        """
    )
    assert [op.inputs for op in spec.operators] == [
        (PortRef("flights"),),
        (PortRef("filter-0"),),
        (PortRef("key_by-origin"),),
    ]
    assert [s.inputs for s in spec.sinks] == [(PortRef("hourly"),), (PortRef("hourly"),)]


def test_branch_union_ports_and_sink_lists() -> None:
    spec = load(
        f"""\
        operators:
          - id: routed
            branch: {{delayed: "dep_delay > 60", early: "dep_delay < 0", default: rest}}
          - id: slow
            from: routed.delayed
            key_by: origin
          - id: hourly
            window: {WINDOW}
          - id: calm
            union: [routed.early, routed.rest]
        sinks:
          - {{topic: out, from: [hourly, hourly.late]}}
          - {{topic: calm, from: calm}}
        """
    )
    routed, _, _, calm = spec.operators
    assert isinstance(routed, BranchSpec)
    assert routed.branches == (("delayed", "dep_delay > 60"), ("early", "dep_delay < 0"))
    assert routed.ports == ("delayed", "early", "rest")
    assert isinstance(calm, UnionSpec)
    assert calm.inputs == (PortRef("routed", "early"), PortRef("routed", "rest"))
    assert spec.sinks[0].inputs == (PortRef("hourly"), PortRef("hourly", "late"))


def test_ids_with_dots_resolve_to_the_longest_known_id() -> None:
    spec = load(
        """\
        operators:
          - id: a.b
            filter: "x > 0"
        sinks:
          - {topic: out, from: a.b}
          - {topic: bad, from: a.b.errors}
        """
    )
    assert spec.sinks[0].inputs == (PortRef("a.b"),)
    assert spec.operators[0].dead_letter_topic == "bad"


def test_a_sink_on_an_errors_port_is_that_nodes_dead_letter_topic() -> None:
    spec = load(
        """\
        operators:
          - id: positive
            filter: "x > 0"
        sinks:
          - topic: out
          - {topic: bad-flights, from: flights.errors}
          - {topic: bad-filter, from: positive.errors}
        """
    )
    assert [s.topic for s in spec.sinks] == ["out"]
    assert (spec.sources[0].on_error, spec.sources[0].dead_letter_topic) == (
        "dead_letter",
        "bad-flights",
    )
    assert (spec.operators[0].on_error, spec.operators[0].dead_letter_topic) == (
        "dead_letter",
        "bad-filter",
    )


def test_several_sources_in_separate_stages() -> None:
    text = """\
    pipeline: two
    sources:
      - {topic: ewr-flights, id: ewr, event_time: ts}
      - {topic: nyc-flights, id: nyc, event_time: ts}
    operators:
      - {id: slow-ewr, from: ewr, filter: "dep_delay > 60"}
      - {id: slow-nyc, from: nyc, filter: "dep_delay > 60"}
    sinks:
      - {topic: slow-ewr, from: slow-ewr}
      - {topic: slow-nyc, from: slow-nyc}
    """
    plan = build_plan(load_pipeline_text(textwrap.dedent(text), "two.yaml"))
    assert [(s.id, s.input_topic, [o.id for o in s.operators]) for s in plan.stages] == [
        ("ewr", "ewr-flights", ["slow-ewr"]),
        ("nyc", "nyc-flights", ["slow-nyc"]),
    ]


def test_the_planner_cuts_at_every_key_by_and_orders_stages() -> None:
    spec = load(
        f"""\
        operators:
          - id: routed
            branch: {{delayed: "dep_delay > 60", default: on-time}}
          - {{id: by-origin, from: routed.delayed, key_by: origin}}
          - {{id: slow-hourly, window: {WINDOW}}}
          - {{id: by-dest, from: routed.on-time, key_by: dest}}
          - {{id: fast-hourly, window: {WINDOW}}}
        sinks:
          - {{topic: slow, from: slow-hourly}}
          - {{topic: fast, from: fast-hourly}}
        """
    )
    plan = build_plan(spec)
    shape = [
        (s.index, s.id, s.input_topic, [o.id for o in s.operators], [k.id for k in s.key_bys])
        for s in plan.stages
    ]
    assert shape == [
        (0, "flights", "flights", ["routed"], ["by-origin", "by-dest"]),
        (1, "by-origin", "g.by-origin.repartition", ["slow-hourly"], []),
        (2, "by-dest", "g.by-dest.repartition", ["fast-hourly"], []),
    ]
    assert [s.topic for s in plan.stages[1].sinks] == ["slow"]
    assert plan.upstream_stages(plan.stages[2]) == [plan.stages[0]]


# -- graph errors -------------------------------------------------------------------------------


def test_unknown_node_names_the_line_and_suggests() -> None:
    issue = only_issue(
        """\
        operators:
          - {id: positive, filter: "x > 0"}
        sinks:
          - {topic: out, from: positiv}
        """
    )
    assert (issue.line, issue.key_path) == (8, "sinks[0].from")
    assert issue.message == "unknown node 'positiv'"
    assert issue.hint == "did you mean 'positive'?"


def test_unknown_port_lists_the_ports() -> None:
    issue = only_issue(
        f"""\
        operators:
          - id: hourly
            window: {WINDOW}
        sinks:
          - {{topic: out, from: hourly}}
          - {{topic: late, from: hourly.lat}}
        """
    )
    assert (issue.line, issue.key_path) == (10, "sinks[1].from")
    assert issue.message == "window 'hourly' has no port 'lat'"
    assert issue.hint == "its ports: main, late, errors"


def test_count_windows_have_no_late_port() -> None:
    issue = only_issue(
        """\
        operators:
          - id: tens
            window: {type: count, size: 10, aggregate: {n: count}}
        sinks:
          - {topic: out, from: tens}
          - {topic: late, from: tens.late}
        """
    )
    assert issue.message == "window 'tens' has no port 'late'"


def test_a_cycle_is_reported_on_each_of_its_nodes() -> None:
    issues = issues_of(
        """\
        operators:
          - {id: a, from: b, filter: "x > 0"}
          - {id: b, from: a, filter: "x > 1"}
        sinks:
          - {topic: out, from: b}
        """
    )
    assert [(i.line, i.key_path) for i in issues] == [
        (6, "operators[0].from"),
        (7, "operators[1].from"),
    ]
    assert issues[0].message == "'a' is on a cycle (a -> b)"


def test_an_output_going_nowhere_is_an_error() -> None:
    issue = only_issue(
        """\
        operators:
          - {id: kept, filter: "x > 0"}
          - {id: dropped, from: flights, filter: "x < 0"}
        sinks:
          - {topic: out, from: kept}
        """
    )
    assert (issue.line, issue.key_path) == (7, "operators[1]")
    assert issue.message == "filter 'dropped': its output goes nowhere"


def test_a_branch_port_going_nowhere_is_an_error() -> None:
    issue = only_issue(
        """\
        operators:
          - id: routed
            branch: {delayed: "dep_delay > 60", default: on-time}
        sinks:
          - {topic: out, from: routed.delayed}
        """
    )
    assert issue.message == "branch port 'routed.on-time' goes nowhere"
    assert issue.hint == "read it with from: routed.on-time, or remove the port"


def test_the_item_after_a_branch_must_name_a_port() -> None:
    issue = only_issue(
        """\
        operators:
          - id: routed
            branch: {delayed: "dep_delay > 60", default: on-time}
          - filter: "x > 0"
        sinks:
          - {topic: out, from: routed.on-time}
        """
    )
    assert (issue.line, issue.key_path) == (8, "operators[1]")
    assert "branch 'routed', whose outputs are its ports" in issue.message
    assert issue.hint == "write from: one of routed.delayed, routed.on-time"


def test_a_union_needs_two_inputs() -> None:
    issue = only_issue(
        """\
        operators:
          - {id: both, union: [flights]}
        sinks: [{topic: out}]
        """
    )
    assert (issue.key_path, issue.message) == (
        "operators[0].union",
        "a union needs at least two inputs",
    )


def test_union_takes_no_from_and_only_sinks_take_lists() -> None:
    issues = issues_of(
        """\
        operators:
          - {id: a, filter: "x > 0"}
          - {id: both, union: [a, flights], from: a}
          - {id: c, from: [a, flights], filter: "x > 1"}
        sinks:
          - {topic: out, from: [both, c]}
        """
    )
    assert [(i.key_path, i.message) for i in issues] == [
        ("operators[1].from", "a union takes no 'from:'"),
        ("operators[2].from", "an operator reads one input"),
    ]


def test_only_sinks_read_errors_ports() -> None:
    issues = issues_of(
        """\
        operators:
          - {id: positive, filter: "x > 0"}
          - {id: shaped, from: positive.errors, map: {select: [x]}}
          - {id: both, union: [positive, flights.errors]}
        sinks:
          - {topic: out, from: [shaped, both]}
        """
    )
    assert [(i.key_path, i.message) for i in issues] == [
        ("operators[1].from", "only a sink can read 'positive.errors'"),
        ("operators[2].union", "only a sink can read 'flights.errors'"),
    ]
    assert "from: positive.errors}" in issues[0].hint


def test_ids_are_unique_across_sources_and_operators() -> None:
    issue = only_issue(
        """\
        operators:
          - {id: flights, filter: "x > 0"}
        sinks: [{topic: out}]
        """
    )
    assert issue.message == "duplicate id 'flights'"
    assert "'flights' is a source" in issue.hint


def test_branch_ports_are_checked() -> None:
    issues = issues_of(
        """\
        operators:
          - id: routed
            branch: {late: "x > 0", a.b: "x > 1", default: late}
        sinks:
          - {topic: out, from: routed}
        """
    )
    messages = [i.message for i in issues]
    assert "'late' is a reserved port name" in messages
    assert "invalid port name a string ('a.b')" in messages


def test_an_errors_sink_conflicts_with_another_policy() -> None:
    issue = only_issue(
        """\
        operators:
          - {id: positive, filter: "x > 0", on_error: skip}
        sinks:
          - topic: out
          - {topic: bad, from: positive.errors}
        """
    )
    assert issue.message == "'positive' has on_error: skip, not dead letters"


def test_a_union_of_two_sources_is_one_stage_reading_both_topics() -> None:
    text = """\
    pipeline: two
    sources:
      - {topic: ewr-flights, id: ewr}
      - {topic: nyc-flights, id: nyc}
    operators:
      - {id: all, union: [ewr, nyc]}
      - {id: by-origin, key_by: origin}
      - {id: hourly, window: {type: tumbling, size: 1h, aggregate: {n: count}}}
    sinks:
      - {topic: out, from: hourly}
    """
    plan = build_plan(load_pipeline_text(textwrap.dedent(text), "two.yaml"))
    assert [(s.id, s.input_topics) for s in plan.stages] == [
        ("ewr", ["ewr-flights", "nyc-flights"]),
        ("by-origin", ["two.by-origin.repartition"]),
    ]


def test_source_id_and_its_older_spelling() -> None:
    text = HEAD.replace("    event_time: ts\n", "    id: f\n    name: f\n")
    text += "sinks: [{topic: o}]\n"
    with pytest.raises(ConfigError) as info:
        load_pipeline_text(text, "g.yaml")
    (issue,) = info.value.issues
    assert (issue.key_path, issue.message) == (
        "sources[0].name",
        "'name' is the older spelling of 'id'",
    )
