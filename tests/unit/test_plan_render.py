"""The job graph as a picture (:mod:`kstream.graph.picture`, :mod:`kstream.graph.render`):
the nodes, edges, stage clusters and labels of the examples, in text, Mermaid and DOT; DOT
checked by Graphviz's ``dot`` where it is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from kstream.graph.picture import Edge, Picture, job_picture
from kstream.graph.plan import build_plan
from kstream.graph.render import render, to_dot, to_mermaid, to_text
from kstream.pipeline.load import load_pipeline, load_pipeline_text
from kstream.pipeline.spec import KeyBySpec

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
ALL_EXAMPLES = sorted(p.name for p in EXAMPLES.glob("*.yaml"))
NO_DOT = "Graphviz's dot is not installed (apt-get install graphviz): DOT syntax not checked"


def picture_of(example: str) -> Picture:
    return job_picture(build_plan(load_pipeline(EXAMPLES / example)))


def clusters(picture: Picture) -> dict[str, list[str]]:
    """``stage title -> node names`` in order."""
    return {c.title: [picture.node(k).name for k in c.nodes] for c in picture.clusters}


def edges(picture: Picture) -> dict[tuple[str, str], Edge]:
    """``(tail name, head name) -> edge``."""
    return {(picture.node(e.tail).name, picture.node(e.head).name): e for e in picture.edges}


def details(picture: Picture) -> dict[str, str]:
    return {n.name: n.detail for n in picture.nodes}


def dot_svg(dot_source: str) -> str:
    """``dot -Tsvg`` of ``dot_source``; fails the test on any Graphviz error or warning."""
    proc = subprocess.run(
        ["dot", "-Tsvg"], input=dot_source, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0 and not proc.stderr, proc.stderr
    return proc.stdout


# -- flights-graph: two sources, a union, a branch, two windows, a key_by, three sinks ---------


def test_graph_stages_hold_their_nodes() -> None:
    picture = picture_of("flights-graph.yaml")
    assert clusters(picture) == {
        "stage 0 (id ewr)": [
            "ewr",
            "nyc",
            "all-flights",
            "departed",
            "routed",
            "delay-hours",
            "delay-hours-hourly",
            "by-carrier",
            "flights-delay-hours",
            "flights-delayed-late",
        ],
        "stage 1 (id by-carrier)": ["on-time-daily", "flights-on-time-daily"],
    }
    assert picture.outside == ()


def test_graph_nodes_say_what_they_are() -> None:
    picture = picture_of("flights-graph.yaml")
    assert details(picture) == {
        "ewr": "source (topic ewr-flights)",
        "nyc": "source (topic nyc-flights)",
        "all-flights": "union",
        "departed": "filter",
        "routed": "branch (delayed, on-time)",
        "delay-hours": "flat_map",
        "delay-hours-hourly": "window tumbling 1h",
        "by-carrier": "key_by carrier",
        "on-time-daily": "window tumbling 1d",
        "flights-delay-hours": "sink",
        "flights-delayed-late": "sink",
        "flights-on-time-daily": "sink",
    }
    roles = {n.name: n.role for n in picture.nodes}
    assert roles["ewr"] == "source" and roles["by-carrier"] == "key_by"
    assert roles["routed"] == "operator" and roles["flights-delayed-late"] == "sink"


def test_graph_edges_carry_ports_and_the_repartition_topic() -> None:
    found = {pair: (e.kind, e.label) for pair, e in edges(picture_of("flights-graph.yaml")).items()}
    assert found == {
        ("ewr", "all-flights"): ("record", ()),
        ("nyc", "all-flights"): ("record", ()),
        ("all-flights", "departed"): ("record", ()),
        ("departed", "routed"): ("record", ()),
        ("routed", "delay-hours"): ("record", ("delayed",)),
        ("routed", "by-carrier"): ("record", ("on-time",)),
        ("delay-hours", "delay-hours-hourly"): ("record", ()),
        ("delay-hours-hourly", "flights-delay-hours"): ("record", ()),
        ("delay-hours-hourly", "flights-delayed-late"): ("record", ("late",)),
        ("by-carrier", "on-time-daily"): (
            "repartition",
            ("flights-graph.by-carrier.repartition",),
        ),
        ("on-time-daily", "flights-on-time-daily"): ("record", ()),
    }


def test_graph_mermaid() -> None:
    text = to_mermaid(picture_of("flights-graph.yaml"))
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    assert '    subgraph stage_0 ["stage 0 (id ewr)"]' in lines
    assert '    subgraph stage_1 ["stage 1 (id by-carrier)"]' in lines
    assert lines.count("    end") == 2
    assert '        src_ewr[("ewr<br/>source (topic ewr-flights)")]' in lines
    assert '        op_routed("routed<br/>branch (delayed, on-time)")' in lines
    assert '        op_by_carrier{{"by-carrier<br/>key_by carrier"}}' in lines
    assert '        sink_flights_delayed_late[("flights-delayed-late<br/>sink")]' in lines
    assert '    op_routed -->|"delayed"| op_delay_hours' in lines
    assert '    op_delay_hours_hourly -->|"late"| sink_flights_delayed_late' in lines
    assert '    op_by_carrier ==>|"flights-graph.by-carrier.repartition"| op_on_time_daily' in lines
    assert "    src_ewr --> op_all_flights" in lines


def test_graph_dot() -> None:
    text = to_dot(picture_of("flights-graph.yaml"))
    assert text.startswith('digraph "flights-graph" {\n  rankdir=LR;\n')
    assert '  subgraph "cluster_stage_0" {\n    label="stage 0 (id ewr)";' in text
    assert '    "op_routed" [label="routed\\nbranch (delayed, on-time)", shape=box' in text
    assert '  "op_routed" -> "op_delay_hours" [label="delayed"];' in text
    assert (
        '  "op_by_carrier" -> "op_on_time_daily" '
        '[label="flights-graph.by-carrier.repartition", style=bold];'
    ) in text
    assert text.endswith("}\n")


def test_graph_text() -> None:
    text = to_text(picture_of("flights-graph.yaml"))
    assert text.splitlines()[:5] == [
        "pipeline flights-graph: 2 stage(s)",
        "",
        "stage 0 (id ewr)",
        "  ewr: source (topic ewr-flights)",
        "  nyc: source (topic nyc-flights)",
    ]
    assert "  all-flights: union <- ewr, nyc\n" in text
    assert "  by-carrier: key_by carrier <- routed.on-time\n" in text
    assert "  flights-delayed-late: sink <- delay-hours-hourly.late\n" in text
    assert (
        "stage 1 (id by-carrier)\n  on-time-daily: window tumbling 1d <- by-carrier via "
        "flights-graph.by-carrier.repartition\n"
    ) in text


def test_docs_show_the_current_mermaid_of_flights_graph() -> None:
    """docs/pipeline.md shows examples/flights-graph.yaml as Mermaid: the renderer's output."""
    doc = (REPO / "docs" / "pipeline.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```mermaid\n(.*?)^```$", doc, re.S | re.M)
    assert blocks == [render(build_plan(load_pipeline(EXAMPLES / "flights-graph.yaml")), "mermaid")]


# -- flights-weather: a temporal join on a versioned table, repartitioned on both sides -------


def test_weather_join_sides_come_through_repartition_topics() -> None:
    picture = picture_of("flights-weather.yaml")
    assert clusters(picture) == {
        "stage 0 (id flights)": ["flights", "departed", "with-weather.left"],
        "stage 1 (id weather)": ["weather", "with-weather.right"],
        "stage 2 (id with-weather.left)": ["with-weather", "by-visibility"],
        "stage 3 (id by-visibility)": ["daily", "flights-weather-daily"],
    }
    found = edges(picture)
    left = found[("with-weather.left", "with-weather")]
    right = found[("with-weather.right", "with-weather")]
    assert (left.kind, left.label) == (
        "repartition",
        ("left", "flights-weather.with-weather.left.repartition"),
    )
    assert (right.kind, right.label) == (
        "repartition",
        ("right", "flights-weather.with-weather.right.repartition"),
    )
    assert found[("by-visibility", "daily")].topic == "flights-weather.by-visibility.repartition"
    assert details(picture)["with-weather"] == "join temporal (how: left)"
    assert details(picture)["weather"] == "table (key origin, versioned 2d)"
    assert details(picture)["with-weather.left"] == "key_by origin"
    assert details(picture)["by-visibility"] == "key_by [origin, visibility]"


def test_weather_mermaid_and_dot_label_the_join_sides() -> None:
    picture = picture_of("flights-weather.yaml")
    mermaid = to_mermaid(picture)
    assert (
        '    op_with_weather_left ==>|"left<br/>flights-weather.with-weather.left.repartition"| '
        "op_with_weather\n"
    ) in mermaid
    assert '    subgraph stage_2 ["stage 2 (id with-weather.left)"]' in mermaid
    dot = to_dot(picture)
    assert (
        '  "op_with_weather_right" -> "op_with_weather" '
        '[label="right\\nflights-weather.with-weather.right.repartition", style=bold];'
    ) in dot
    text = to_text(picture)
    assert (
        "  with-weather: join temporal (how: left) <- left: with-weather.left via "
        "flights-weather.with-weather.left.repartition, right: with-weather.right via "
        "flights-weather.with-weather.right.repartition\n"
    ) in text


# -- flights-planes: a lookup join of a broadcast table ----------------------------------------


def test_planes_broadcast_table_is_outside_the_stages() -> None:
    picture = picture_of("flights-planes.yaml")
    assert [n.name for n in picture.outside] == ["planes"]
    assert picture.outside[0].role == "broadcast"
    assert picture.outside[0].detail == "broadcast table (key tailnum)"
    assert all("planes" not in names for names in clusters(picture).values())
    assert clusters(picture)["stage 0 (id flights)"] == [
        "flights",
        "departed",
        "with-plane",
        "by-maker-month",
    ]
    found = edges(picture)
    read = found[("planes", "with-plane")]
    assert (read.kind, read.side, read.label) == ("broadcast", "right", ("right", "broadcast"))
    assert found[("departed", "with-plane")].label == ("left",)
    assert details(picture)["with-plane"] == "join lookup (how: left)"


def test_planes_broadcast_edge_is_dashed() -> None:
    picture = picture_of("flights-planes.yaml")
    mermaid = to_mermaid(picture).splitlines()
    assert '    table_planes[("planes<br/>broadcast table (key tailnum)")]' in mermaid
    assert '    table_planes -.->|"right<br/>broadcast"| op_with_plane' in mermaid
    assert mermaid[-2:] == [
        "    classDef broadcast stroke-dasharray: 5 5",
        "    class table_planes broadcast",
    ]
    # the table is declared after the last subgraph: outside every stage
    assert mermaid.index('    table_planes[("planes<br/>broadcast table (key tailnum)")]') > max(
        i for i, line in enumerate(mermaid) if line == "    end"
    )
    dot = to_dot(picture)
    assert '  "table_planes" -> "op_with_plane" [label="right\\nbroadcast", style=dashed];' in dot
    assert "shape=cylinder, style=dashed];" in dot
    assert "  planes: broadcast table (key tailnum)\n" in to_text(picture)
    assert "<- left: departed, right: planes (broadcast)\n" in to_text(picture)


@pytest.mark.parametrize(
    ("example", "node", "detail"),
    [
        ("flights-window-join.yaml", "same-hour", "join window tumbling 1h (how: inner)"),
        ("flights-window-join.yaml", "airport", "branch (jfk, lga)"),
        ("flights-weather-interval.yaml", "near-weather", "join interval -30m..30m (how: inner)"),
        ("flights-sessions.yaml", "day-of-flying", "window session gap 3h"),
        ("flights-dedup.yaml", "first-per-day", "dedup within 1d"),
        ("flights-delay-streak.yaml", "streak", "process flights_delay_streak:DelayStreak"),
    ],
)
def test_other_kinds_say_what_they_are(example: str, node: str, detail: str) -> None:
    assert details(picture_of(example))[node] == detail


def test_branch_ports_label_the_edges_into_a_join_key_by() -> None:
    found = edges(picture_of("flights-window-join.yaml"))
    assert found[("airport", "same-hour.left")].label == ("jfk",)
    assert found[("airport", "same-hour.right")].label == ("lga",)
    assert found[("same-hour.right", "same-hour")].label == (
        "right",
        "flights-window-join.same-hour.right.repartition",
    )


# -- every example ---------------------------------------------------------------------------


@pytest.mark.parametrize("example", ALL_EXAMPLES)
def test_every_node_and_input_is_drawn(example: str) -> None:
    spec = load_pipeline(EXAMPLES / example)
    picture = job_picture(build_plan(spec))
    names = [n.name for n in picture.nodes if n.role not in ("late", "dead_letter")]
    assert sorted(names) == sorted(
        [s.id for s in spec.sources] + [o.id for o in spec.operators] + [s.name for s in spec.sinks]
    )
    inputs = sum(len(o.inputs) for o in (*spec.operators, *spec.sinks))
    broadcast_reads = sum(1 for o in spec.operators if getattr(o, "broadcast_table", None))
    assert len([e for e in picture.edges if e.kind != "broadcast"]) >= inputs
    assert len([e for e in picture.edges if e.kind == "broadcast"]) == broadcast_reads
    key_bys = {o.id for o in spec.operators if isinstance(o, KeyBySpec)}
    for edge in picture.edges:
        assert (edge.kind == "repartition") == (picture.node(edge.tail).name in key_bys)
    keys = [n.key for n in picture.nodes]
    assert len(set(keys)) == len(keys)
    assert all(re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", k) for k in keys)


@pytest.mark.skipif(shutil.which("dot") is None, reason=NO_DOT)
@pytest.mark.parametrize("example", ALL_EXAMPLES)
def test_dot_parses_with_graphviz(example: str) -> None:
    svg = dot_svg(render(build_plan(load_pipeline(EXAMPLES / example)), "dot"))
    assert "<svg" in svg and "stage 0 (id " in svg


# -- names that need escaping, side topics -----------------------------------------------------

AWKWARD = """\
pipeline: odd.names-pipe
sources:
  - id: end
    topic: o.x-topic
    event_time: {field: ts}
    on_error: dead_letter
    dead_letter_topic: bad-records
operators:
  - id: a-b
    filter: 'origin != "#<a&b>`q`"'
  - id: a.b
    key_by: 'origin + "\\"q\\" \\\\ x"'
  - id: a_b
    window: {type: sliding, size: 1h, slide: 5m, aggregate: {n: count}, late_topic: late-out}
sinks:
  - {topic: subgraph}
"""


@pytest.fixture(scope="module")
def awkward() -> Picture:
    return job_picture(build_plan(load_pipeline_text(AWKWARD, "<awkward>")))


def test_awkward_ids_get_distinct_safe_keys(awkward: Picture) -> None:
    keys = {n.name: n.key for n in awkward.nodes}
    assert keys["end"] == "src_end"
    assert [keys["a-b"], keys["a.b"], keys["a_b"]] == ["op_a_b", "op_a_b_2", "op_a_b_3"]
    assert keys["subgraph"] == "sink_subgraph"
    assert details(awkward)["a.b"] == 'key_by origin + "\\"q\\" \\\\ x"'
    assert details(awkward)["a_b"] == "window sliding 1h every 5m"


def test_side_topics_are_drawn(awkward: Picture) -> None:
    found = edges(awkward)
    assert found[("a_b", "late-out")].label == ("late",)
    assert found[("end", "bad-records")].label == ("errors",)
    assert details(awkward)["late-out"] == "late data"
    assert details(awkward)["bad-records"] == "dead letters"
    assert clusters(awkward)["stage 1 (id a.b)"][-1] == "late-out"
    assert clusters(awkward)["stage 0 (id end)"][-1] == "bad-records"


def test_mermaid_escapes_labels(awkward: Picture) -> None:
    mermaid = to_mermaid(awkward)
    line = next(x for x in mermaid.splitlines() if x.strip().startswith("op_a_b_2"))
    assert line.strip() == (
        'op_a_b_2{{"a.b<br/>key_by origin + #quot;\\#quot;q\\#quot; \\\\ x#quot;"}}'
    )
    line = next(x for x in mermaid.splitlines() if x.strip().startswith("op_a_b("))
    assert line.strip() == 'op_a_b("a-b<br/>filter")'  # the filter's expression is not shown


def test_mermaid_escapes_every_special_character() -> None:
    from kstream.graph.picture import Cluster, Node

    odd = 'x "#<a&b>`'
    node = Node("op_x", odd, "operator", "filter", "s")
    picture = Picture("p", (node,), (), (Cluster("stage_0", 0, "s", ("op_x",)),))
    assert 'op_x("x #quot;#35;#lt;a#amp;b#gt;#96;<br/>filter")' in to_mermaid(picture)
    assert '"op_x" [label="x \\"#<a&b>`\\nfilter"' in to_dot(picture)


@pytest.mark.skipif(shutil.which("dot") is None, reason=NO_DOT)
def test_awkward_dot_parses_with_graphviz(awkward: Picture) -> None:
    svg = dot_svg(to_dot(awkward))
    assert "odd.names&#45;pipe" in svg or "odd.names-pipe" in svg


def test_render_refuses_an_unknown_format() -> None:
    plan = build_plan(load_pipeline(EXAMPLES / "flights-hourly.yaml"))
    with pytest.raises(ValueError, match="unknown graph format 'png'"):
        render(plan, "png")
