"""The output rule of the table-printing commands (docs/cli.md): jsonl when piped (CliRunner is
not a terminal), ``--output`` to choose, tables whose cells are never cut, ``Example:`` in the
help. Broker-free: the savepoint fixture, ``plan`` offline, rendering functions for status and
tail."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from kstream_cli.main import cli
from kstream_cli.options import output_format
from kstream_cli.output import iso_utc, new_table, watermark_text
from kstream_cli.savepoint_show import list_table
from kstream_cli.status_cmd import status_json, status_notes, status_table
from kstream_cli.tail_cmd import _TablePrinter
from rich.console import Console
from rich.table import Table

from kstream.runtime.status import COMMITTED_PAST_END, TaskStatus
from kstream.savepoint import list_savepoints
from kstream.time.watermarks import MIN_WATERMARK
from kstream.tools.process import free_port

REPO = Path(__file__).resolve().parents[2]
HOURLY = REPO / "examples" / "flights-hourly.yaml"
FIXTURE = REPO / "tests" / "fixtures" / "savepoint-v1"
T = 1_357_016_400_000  # 2013-01-01 05:00:00 UTC


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj={})


def jsonl(result: Result) -> list[dict[str, Any]]:
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def render(table: Table, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(table)
    return console.file.getvalue()  # type: ignore[attr-defined]


def column(text: str, index: int) -> str:
    """The text of column ``index`` of a rendered table's body, lines joined (folded values
    come back whole)."""
    return "".join(
        line.split("│")[index + 1].strip() for line in text.splitlines() if line.startswith("│")
    )


def offline_plan(*args: str) -> Result:
    return invoke("plan", str(HOURLY), "--bootstrap-servers", f"127.0.0.1:{free_port()}", *args)


# -- the default: jsonl when piped ------------------------------------------------------------


def test_the_default_is_table_on_a_terminal_and_jsonl_when_piped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert output_format(None) == "table" and output_format("jsonl") == "jsonl"
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    assert output_format(None) == "jsonl" and output_format("table") == "table"


def test_plan_jsonl_by_default_stages_then_topics() -> None:
    result = offline_plan()
    rows = jsonl(result)
    assert [r["row"] for r in rows] == ["stage"] * 2 + ["topic"] * 9
    flights, hourly = rows[0], rows[1]
    assert flights["id"] == "flights" and flights["tasks"] == 1
    assert flights["operators"] == [{"id": "not-cancelled", "kind": "filter"}]
    assert flights["key_bys"] == [
        {"id": "by-origin", "topic": "flights-hourly.by-origin.repartition"}
    ]
    assert hourly["inputs"] == [
        {
            "topic": "flights-hourly.by-origin.repartition",
            "node": "by-origin",
            "kind": "repartition",
        }
    ]
    assert hourly["sinks"] == [{"name": "flights-hourly", "topic": "flights-hourly"}]
    assert [s["column_family"] for s in hourly["stores"]] == ["op.hourly", "op.hourly.timers"]
    topics = {r["topic"]: r for r in rows[2:]}
    assert topics["flights"]["role"] == "source" and topics["flights"]["status"] is None
    assert topics["flights-hourly.hourly.changelog"]["compacted"] is True
    assert topics["flights-hourly.status"]["role"] == "status"
    assert topics["flights-hourly.status"]["compacted"] is True
    assert "broker not reachable" in result.stderr


def test_plan_json_is_one_document_of_the_whole_plan() -> None:
    result = offline_plan("--output", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert set(doc) == {"pipeline", "group", "broker_reachable", "stages", "topics"}
    assert doc["pipeline"] == "flights-hourly" and doc["broker_reachable"] is False
    assert [s["id"] for s in doc["stages"]] == ["flights", "by-origin"]
    assert doc["stages"][1]["writes"] == ["flights-hourly"]
    # the jsonl lines are the same data
    lines = jsonl(offline_plan("-o", "jsonl"))
    assert [{k: v for k, v in r.items() if k != "row"} for r in lines] == (
        doc["stages"] + doc["topics"]
    )


def test_savepoint_list_and_inspect_jsonl_by_default() -> None:
    [listed] = jsonl(invoke("savepoint", "list", str(FIXTURE.parent)))
    assert listed["path"] == str(FIXTURE) and listed["pipeline"] == "savepoint-v1"
    assert listed["created_ms"] == 1_700_000_000_000
    assert listed["created_utc"] == "2023-11-14T22:13:20.000Z"
    assert listed["operators"] == ["per-minute", "totals"] and listed["bytes"] > 0
    rows = jsonl(invoke("savepoint", "inspect", str(FIXTURE)))
    assert [r["row"] for r in rows] == ["savepoint", "source"] + ["operator"] * 2 + ["task"] * 4
    assert rows[1]["offsets"] == {"0": 15, "1": 15}
    task = rows[4]
    assert task["task"] == "savepoint-v1-events:0" and task["watermark_ms"] == 138_999
    assert task["watermark_utc"] == "1970-01-01T00:02:18.999Z"
    assert task["inputs"] == [{"topic": "savepoint-v1-events", "position": 15}]
    doc = json.loads(invoke("savepoint", "inspect", str(FIXTURE), "-o", "json").stdout)
    assert [t["task"] for t in doc["tasks"]] == [r["task"] for r in rows[4:]]


def test_state_dump_jsonl_by_default_with_utc_times() -> None:
    rows = jsonl(invoke("state", "dump", str(FIXTURE), "--operator", "per-minute"))
    assert rows[0] == {
        "key": "ann",
        "window_start": 120_000,
        "window_start_utc": "1970-01-01T00:02:00.000Z",
        "window_end": 180_000,
        "window_end_utc": "1970-01-01T00:03:00.000Z",
        "events": 2,
        "amount": 53,
    }
    totals = jsonl(invoke("state", "dump", str(FIXTURE), "--operator", "totals"))
    assert "window_start_utc" not in totals[0]  # a global window has no bounds


@pytest.mark.parametrize(
    "args",
    [
        ["plan"],
        ["status"],
        ["tail"],
        ["savepoint", "list"],
        ["savepoint", "inspect"],
        ["state", "dump"],
    ],
)
def test_every_table_command_declares_output_the_same_way(args: list[str]) -> None:
    text = invoke(*args, "--help").stdout
    assert "-o, --output [table|jsonl" in text
    assert "Default: table on a terminal, jsonl when piped." in " ".join(text.split())


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["validate"], "  kstream validate examples/flights-hourly.yaml"),
        (["plan"], "  kstream plan examples/flights-hourly.yaml"),
        (["status"], "  kstream status examples/flights-hourly.yaml"),
        (["tail"], "  kstream tail flights-hourly --from-beginning"),
        (["savepoint"], "  kstream savepoint inspect savepoints/hourly-1"),
        (["savepoint", "create"], "  kstream savepoint create examples/flights-hourly.yaml"),
        (["savepoint", "list"], "  kstream savepoint list"),
        (["savepoint", "inspect"], "  kstream savepoint inspect savepoints/hourly-1"),
        (["savepoint", "dispose"], "  kstream savepoint dispose savepoints/hourly-1"),
        (["state"], "  kstream state dump savepoints/hourly-1 --operator hourly --limit 10"),
        (["state", "dump"], "  kstream state dump savepoints/hourly-1 --operator hourly"),
    ],
)
def test_help_has_examples_kept_line_by_line(args: list[str], line: str) -> None:
    lines = invoke(*args, "--help").stdout.splitlines()
    assert "  Example:" in lines
    examples = lines[lines.index("  Example:") + 1 :]
    assert any(x == f"  {line}" or x.startswith(f"  {line} ") for x in examples), examples


# -- tables: never cut ---------------------------------------------------------------------


def test_a_wide_terminal_shows_every_value_whole(tmp_path: Path) -> None:
    found = list_savepoints(FIXTURE.parent)
    text = render(list_table(FIXTURE.parent, found), 250)
    assert "…" not in text
    assert f"│ {FIXTURE} " in text and "per-minute, totals" in text


def test_a_narrow_terminal_folds_values_instead_of_cutting_them() -> None:
    value = "flights-hourly.by-origin.repartition-" + "x" * 60
    table = new_table("t", ("topic", "n"), right=("n",))
    table.add_row(value, "12345678901234")
    text = render(table, 40)
    assert "…" not in text
    assert column(text, 0) == value and column(text, 1) == "12345678901234"


def test_the_tail_table_folds_long_keys_and_values() -> None:
    console = Console(width=80, file=io.StringIO(), color_system=None)
    key, value = "k" * 40, {"text": "v" * 150}
    printer = _TablePrinter(console)
    printer([{"partition": 0, "offset": 7, "timestamp": T, "key": key, "value": value}])
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "…" not in text
    body = text.splitlines()[1:]
    assert "".join(line[43:59].strip() for line in body) == key
    assert "".join(line[61:].strip() for line in body) == json.dumps(value, separators=(",", ":"))


# -- status rendering ----------------------------------------------------------------------


def status(**changes: Any) -> TaskStatus:
    base = TaskStatus(
        "by-origin:0", "flights-hourly.by-origin.repartition", 0, 10, 12, 2, 4, T, 2048, "-"
    )
    return replace(base, **changes)


def test_status_table_shows_dates_watermarks_and_explains_committed_past_end() -> None:
    rows = [
        status(watermark_ms=T - 1),
        status(task="flights:3", committed=120, end=100, lag=None, end_note=COMMITTED_PAST_END),
        status(task="by-origin:1", watermark_ms=MIN_WATERMARK, hint="task by-origin:1: held"),
    ]
    text = render(status_table("pipeline flights-hourly", rows), 250)
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if "│" in line}
    assert "2013-01-01 05:00:00" in lines["by-origin:0"]  # the checkpoint time, with its date
    assert "2013-01-01 04:59:59" in lines["by-origin:0"]  # the watermark
    assert "-inf" in lines["by-origin:1"]
    past = [cell.strip() for cell in lines["flights:3"].split("│")]
    assert past[3:6] == ["120", "100*", "?"]
    assert status_notes(rows) == [f"* {COMMITTED_PAST_END}", "task by-origin:1: held"]


def test_status_jsonl_keys() -> None:
    row = status_json(status(watermark_ms=MIN_WATERMARK, held_back_by="upstream task flights:3"))
    assert list(row) == [
        "task",
        "topic",
        "partition",
        "committed",
        "end",
        "lag",
        "checkpoint_id",
        "checkpoint_time_ms",
        "checkpoint_time_utc",
        "state_bytes",
        "owner",
        "watermark_ms",
        "watermark_utc",
        "end_note",
        "held_back_by",
        "hint",
        "in_per_s",  # added with the status topic: keys are only ever added
    ]
    assert row["checkpoint_time_utc"] == "2013-01-01T05:00:00.000Z"
    assert row["watermark_utc"] == "-inf" and row["watermark_ms"] == MIN_WATERMARK
    assert json.loads(json.dumps(row)) == row


def test_time_texts() -> None:
    assert iso_utc(T + 5) == "2013-01-01T05:00:00.005Z" and iso_utc(None) is None
    assert watermark_text(T) == "2013-01-01 05:00:00" and watermark_text(None) == "-"
    assert watermark_text(2**63 - 1) == "+inf" and iso_utc(2**63 - 1) == "+inf"
