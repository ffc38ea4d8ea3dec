"""The screen of ``kstream top`` (cli/top_screen.py) rendered to text from fabricated status
records: every node of examples/flights-graph.yaml and examples/flights-hourly.yaml (with or
without data), both processes of a two-process job with their tasks, sums over the live
processes, stale processes dimmed and left out, humanized lags."""

from __future__ import annotations

import io
from dataclasses import replace
from pathlib import Path
from typing import Any

from kstream_cli.top_screen import ago, graph_nodes, render_top, size_text, watermark_lag
from rich.console import Console

from kstream.graph.plan import Plan, build_plan
from kstream.pipeline.load import load_pipeline
from kstream.runtime.status_record import NodeRow, ProcessStatus, TaskRow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T = 1_357_016_400_000  # 2013-01-01 05:00:00 UTC
NOW = T + (3 * 3600 + 5 * 60) * 1000  # the watermarks below are 3h 05m behind


def plan_of(name: str) -> Plan:
    return build_plan(load_pipeline(EXAMPLES / name))


def text(renderable: Any, width: int = 200, styles: bool = False) -> str:
    console = Console(file=io.StringIO(), record=True, width=width, force_terminal=styles)
    console.print(renderable)
    return console.export_text(styles=styles)


def rows(shown: str) -> dict[str, list[str]]:
    """First cell -> cells of each table row (``│``-separated)."""
    out: dict[str, list[str]] = {}
    for line in shown.splitlines():
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells and cells[0]:
            out.setdefault(cells[0], cells)
    return out


def process(pid: int, host: str = "h1", time_ms: int = NOW - 1000, **changes: Any) -> ProcessStatus:
    base = ProcessStatus("flights-hourly", "flights-hourly", host, pid, T, time_ms, 2000)
    return replace(base, **changes)


GRAPH_NODES = {
    "ewr": "source",
    "nyc": "source",
    "all-flights": "union",
    "departed": "filter",
    "routed": "branch",
    "delay-hours": "flat_map",
    "delay-hours-hourly": "window",
    "by-carrier": "key_by",
    "flights-delay-hours": "sink",
    "flights-delayed-late": "sink",
    "on-time-daily": "window",
    "flights-on-time-daily": "sink",
}  # fmt: skip  (stage by stage, as kstream plan --output text)


def test_every_node_of_the_graph_shows_before_any_record() -> None:
    plan = plan_of("flights-graph.yaml")
    assert [(n.name, n.kind) for n in graph_nodes(plan)] == list(GRAPH_NODES.items())
    shown = text(render_top(plan, [], NOW))
    table = rows(shown)
    for name, kind in GRAPH_NODES.items():
        assert table[name][:3] == [name, kind, "-"], table[name]
    assert "kstream top flights-graph · group flights-graph · 0 processes alive" in shown
    assert "no status records in flights-graph.status yet" in shown


def hourly_processes() -> list[ProcessStatus]:
    """Two processes of flights-hourly, each with a source task and a by-origin task."""
    one = process(
        101, "h1",
        tasks=(
            TaskRow("flights:0", 500, 0, 0, 50.0, 0.0, T, 1200, 3 * 2**20, 7, NOW - 4000),
            TaskRow("by-origin:0", 400, 10, 2, 40.0, 1.0, T + 3_600_000, 0, 2048, 7, NOW - 4000),
        ),
        nodes=(
            NodeRow("flights", "source", 500, 500, 0, 50.0, 50.0, T),
            NodeRow("not-cancelled", "filter", 500, 490, 0, 50.0, 49.0, T),
            NodeRow("hourly", "window", 400, 10, 2, 40.0, 1.0, T + 3_600_000),
            NodeRow("sink:flights-hourly", "sink", 10, 10, 0, 1.0, 1.0, T + 3_600_000),
        ),
        checkpoints=7, cache_bytes=5 * 2**20,
    )  # fmt: skip
    two = process(
        202, "h2",
        tasks=(TaskRow("flights:1", 300, 0, 0, 30.0, 0.0, T + 60_000, None, 0, None, None),),
        nodes=(
            NodeRow("flights", "source", 300, 300, 0, 30.0, 30.0, T + 60_000),
            NodeRow("not-cancelled", "filter", 300, 299, 0, 30.0, 29.0, T + 60_000),
        ),
        checkpoints=3, checkpoint_failures=1,
    )  # fmt: skip
    return [one, two]


def test_two_processes_are_summed_per_node_and_each_shows_its_tasks() -> None:
    plan = plan_of("flights-hourly.yaml")
    shown = text(render_top(plan, hourly_processes(), NOW))
    assert "2 processes alive · in 80/s · out 1/s · 2013-01-01 08:05:00 UTC" in shown
    table = rows(shown)
    for name in ("flights", "not-cancelled", "by-origin", "hourly", "flights-hourly"):
        assert name in table, shown
    # records in, in/s, out/s, watermark (the lowest), its lag, late
    assert table["flights"][1:] == ["source", "800", "80", "80", "2013-01-01 05:00:00", "3h 05m",
                                    "0"]  # fmt: skip
    assert table["hourly"][1:] == ["window", "400", "40", "1", "2013-01-01 06:00:00", "2h 05m", "2"]
    assert table["by-origin"][1:] == ["key_by", "-", "-", "-", "-", "-", "-"]  # no data yet
    assert table["h1:101"][1:] == ["running", "2", "90", "7", "5.0 MiB", "1s"]
    assert table["h2:202"][1:] == ["running", "1", "30", "3 (1 failed)", "0 B", "1s"]
    assert "h1:101 tasks" in shown and "h2:202 tasks" in shown
    assert table["flights:0"][1:] == ["50", "2013-01-01 05:00:00", "3h 05m", "1,200", "3.0 MiB",
                                      "#7, 4s ago"]  # fmt: skip
    assert table["flights:1"][4:] == ["-", "0 B", "-"]


def test_a_stale_process_is_dimmed_marked_and_left_out_of_the_sums() -> None:
    plan = plan_of("flights-hourly.yaml")
    one, two = hourly_processes()
    dead = replace(two, time_ms=NOW - 42_000)
    shown = text(render_top(plan, [one, dead], NOW))
    assert "1 process alive (1 stale) · in 50/s" in shown
    table = rows(shown)
    assert table["h2:202"][-1] == "(no record for 42s)"
    assert "h2:202 tasks (no record for 42s)" in shown
    assert table["flights"][2:4] == ["500", "50"]  # process 2's rows left out
    styled = text(render_top(plan, [one, dead], NOW), styles=True)
    [line] = [line for line in styled.splitlines() if "h2:202" in line and "running" in line]
    assert "\x1b[2m" in line  # dim
    [line] = [line for line in styled.splitlines() if "h1:101" in line and "running" in line]
    assert "\x1b[2m" not in line


def test_nodes_only_the_records_name_are_listed_after_the_graph() -> None:
    plan = plan_of("flights-hourly.yaml")
    extra = process(1, nodes=(NodeRow("old-filter", "filter", 5, 5, 0, 1.0, 1.0, None),))
    names = [r[0] for r in rows(text(render_top(plan, [extra], NOW))).values()]
    assert names.index("old-filter") == names.index("flights-hourly") + 1


def test_humanized_durations_and_sizes() -> None:
    assert [ago(ms) for ms in (0, 999, 42_000, 307_000, 11_100_000)] == [
        "0s", "0s", "42s", "5m 07s", "3h 05m",
    ]  # fmt: skip
    assert ago((12 * 24 + 4) * 3_600_000) == "12d 4h"
    assert ago((11 * 365 + 3) * 86_400_000) == "11y 3d"
    assert ago(-5000) == "ahead 5s"
    assert watermark_lag(None, NOW) == watermark_lag(-(2**63), NOW) == "-"
    assert watermark_lag(2**63 - 1, NOW) == "-"
    assert [size_text(n) for n in (0, 512, 12_595, 4 * 2**20, 3 * 2**40)] == [
        "0 B", "512 B", "12.3 KiB", "4.0 MiB", "3,072.0 GiB",
    ]  # fmt: skip
