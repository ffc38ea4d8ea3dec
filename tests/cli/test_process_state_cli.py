"""``kstream savepoint inspect`` and ``kstream state dump`` on a savepoint holding a process
function's state and timers (no broker; the savepoint comes from the driver's tasks)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner, Result
from kstream_cli.main import cli
from process_kit import write_process_savepoint


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return write_process_savepoint(tmp_path)


def invoke(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "250"}).invoke(cli, list(args), obj={})


def test_state_dump_prints_each_key_and_state(saved: Path) -> None:
    result = invoke(
        "state", "dump", str(saved), "--operator", "fn", "--key", "k2", "--output", "jsonl"
    )
    assert result.exit_code == 0, result.output
    rows = [orjson.loads(line) for line in result.output.splitlines()]
    assert {r["state"]: r["value"] for r in rows} == {
        "count": 5,
        "seen": [2, 8, 14, 20, 26],
        "parity": {"even": 5},
    }
    table = invoke("state", "dump", str(saved), "--operator", "fn")
    assert table.exit_code == 0, table.output
    assert "parity" in table.output and "k5" in table.output


def test_inspect_lists_the_process_node(saved: Path) -> None:
    result = invoke("savepoint", "inspect", str(saved))
    assert result.exit_code == 0, result.output
    assert "fn" in result.output and "process" in result.output
