"""``kstream top`` drawn in a real pseudo-terminal (tests/ptykit.py), broker-free: the command
runs in a child Python whose status reading is replaced by two fabricated process records of
examples/flights-graph.yaml. ``--once`` prints one frame showing every node and both processes;
the live view redraws in place until Ctrl-C (SIGINT), then exits 0 with its last frame on the
terminal. tests/integration/test_top.py does the same against a running job."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ptykit import run_in_pty

from kstream.runtime.status_record import NodeRow, ProcessStatus, TaskRow

GRAPH = Path(__file__).resolve().parents[2] / "examples" / "flights-graph.yaml"
NODES = (
    "ewr", "nyc", "all-flights", "departed", "routed", "delay-hours", "delay-hours-hourly",
    "by-carrier", "on-time-daily", "flights-delay-hours", "flights-delayed-late",
    "flights-on-time-daily",
)  # fmt: skip

#: Runs ``kstream top`` with ``read_statuses`` and ``StatusFeed`` answering with the records
#: in argv[1] (JSON), each made "now"; argv[2:] are the command's arguments.
CHILD = """\
import json, sys, time
from dataclasses import replace
from kstream_cli import top_cmd
from kstream_cli.main import cli
from kstream.runtime.status_record import ProcessStatus

def statuses():
    now = int(time.time() * 1000)
    return [replace(ProcessStatus.from_json(json.dumps(r).encode()), time_ms=now)
            for r in json.loads(sys.argv[1])]

class Feed:
    def __init__(self, *args, **kwargs):
        self.polls = 0
    def poll(self):
        self.polls += 1
        print(f"poll {self.polls}", file=sys.stderr)
        return statuses()
    def close(self):
        print("feed closed", file=sys.stderr)

top_cmd.read_statuses = lambda *args, **kwargs: statuses()
top_cmd.StatusFeed = Feed
cli(sys.argv[2:], obj={})
"""


def records() -> str:
    one = ProcessStatus(
        "flights-graph", "flights-graph", "host-a", 4242, 0, 0, 2000,
        tasks=(TaskRow("ewr:0", 100, in_per_s=10.0),),
        nodes=(NodeRow("ewr", "source", 100, 100, 0, 10.0, 10.0, 1_357_016_400_000),),
    )  # fmt: skip
    two = ProcessStatus(
        "flights-graph", "flights-graph", "host-b", 4343, 0, 0, 2000,
        tasks=(TaskRow("by-carrier:1", 7, in_per_s=1.0),),
    )  # fmt: skip
    return json.dumps([json.loads(one.to_json()), json.loads(two.to_json())])


def top(*args: str) -> list[str]:
    return [sys.executable, "-c", CHILD, records(), "top", str(GRAPH), *args]


def test_top_once_in_a_terminal_shows_every_node_and_both_processes() -> None:
    run = run_in_pty(top("--once"), cols=200, timeout_s=60)
    assert run.returncode == 0, run.text
    shown = run.text
    for node in NODES:
        assert f"│ {node} " in shown, (node, shown)
    assert "host-a:4242" in shown and "host-b:4343" in shown
    assert "2 processes alive" in shown and "by-carrier:1" in shown
    assert "\x1b[" in run.raw  # drawn for a terminal: styles


def test_the_live_view_redraws_in_place_until_ctrl_c_and_exits_0() -> None:
    run = run_in_pty(
        top("--interval", "0.2"),
        cols=200,
        timeout_s=60,
        interrupt_when=lambda text: "poll 3" in text,
    )
    assert run.returncode == 0, run.text
    assert "interrupted" not in run.text and "Traceback" not in run.text
    assert "\x1b[1A" in run.raw or "\x1b[A" in run.raw  # the cursor goes up: a redraw in place
    assert "feed closed" in run.text
    last = run.text.rsplit("kstream top flights-graph", 1)[1]  # the last frame stays
    for node in NODES:
        assert f"│ {node} " in last, (node, last)
    assert "host-a:4242" in last and "host-b:4343" in last
