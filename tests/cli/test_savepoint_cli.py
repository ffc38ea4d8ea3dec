"""``kstream savepoint create|list|inspect|dispose`` and ``kstream state dump`` (no broker)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import savepoint_kit as kit
from click.testing import CliRunner, Result
from kstream_cli.main import cli

from kstream.runtime.control import Quiesced
from kstream.savepoint import list_savepoints, open_savepoint


def invoke(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "250"}).invoke(cli, list(args), obj={})


def table_rows(output: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in output.splitlines()
        if line.startswith("│")
    ]


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``(pipeline file, state dir)`` holding one checkpoint of the test pipeline."""
    root = tmp_path_factory.mktemp("job")
    pipeline = root / "sp-test.yaml"
    pipeline.write_text(kit.PIPELINE)
    kit.write_state(kit.run(), root / "state")
    return pipeline, root / "state"


@pytest.fixture
def saved(tmp_path: Path, job: tuple[Path, Path]) -> Path:
    pipeline, state = job
    target = tmp_path / "sps" / "one"
    result = invoke(
        "savepoint",
        "create",
        str(pipeline),
        "--state-dir",
        str(state),
        "--dir",
        str(target),
        "--no-quiesce",
    )
    assert result.exit_code == 0, result.output
    return target


def test_create_writes_a_savepoint_and_reports_it(saved: Path) -> None:
    sp = open_savepoint(saved)
    assert sp.operator_ids == ["pairs", "per-minute", "totals"] and len(sp.tasks()) == 4


def test_create_output(tmp_path: Path, job: tuple[Path, Path]) -> None:
    pipeline, state = job
    result = invoke(
        "savepoint",
        "create",
        str(pipeline),
        "--state-dir",
        str(state),
        "--dir",
        str(tmp_path / "x"),
        "--no-quiesce",
    )
    assert result.exit_code == 0, result.output
    assert "read 4 tasks, 3 operators, 20 entries, 5 timers" in result.output
    assert f"savepoint {tmp_path / 'x'}: " in result.output
    assert "3 operators, 20 entries, 5 timers, 4 tasks in " in result.output


def test_create_default_directory(
    tmp_path: Path, job: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    pipeline, state = job
    result = invoke("savepoint", "create", str(pipeline), "--state-dir", str(state), "--no-quiesce")
    assert result.exit_code == 0, result.output
    [found] = list_savepoints(tmp_path / "savepoints")
    assert found.path.name.startswith("sp-test-") and found.path.name.endswith("Z")


def test_create_asks_the_job_to_quiesce_and_uses_the_topic_partition_counts(
    tmp_path: Path, job: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []

    def quiesce(plan: Any, bootstrap: str, group: str, **kwargs: Any) -> Quiesced:
        calls.append({"bootstrap": bootstrap, "group": group, **kwargs})
        kwargs["progress"]("4/4 tasks acknowledged")
        return Quiesced(request_id=None, acks=2)

    class Admin:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            pass

        def topics(self) -> dict[str, int]:
            return {"sp-events": 3, "sp-test.by-key.repartition": 2}

    monkeypatch.setattr("kstream.runtime.control.quiesce", quiesce)
    monkeypatch.setattr("kstream.io.kafka.Admin", Admin)
    pipeline, state = job
    result = invoke(
        "savepoint",
        "create",
        str(pipeline),
        "--state-dir",
        str(state),
        "--dir",
        str(tmp_path / "sp"),
        "--stop",
        "--bootstrap-servers",
        "h:1",
        "--timeout",
        "5",
    )
    assert result.exit_code == 0, result.output
    assert calls[0]["bootstrap"] == "h:1" and calls[0]["group"] == "sp-test"
    assert calls[0]["stop"] is True and calls[0]["timeout_s"] == 5.0
    assert "2 running process(es) acknowledged the stop" in result.output
    assert "no local state for task(s) sp-events:2" in result.output
    manifest = open_savepoint(tmp_path / "sp").manifest
    assert [s.partitions for s in manifest.stages] == [3, 2]


def test_create_refusals(tmp_path: Path, job: tuple[Path, Path]) -> None:
    pipeline, state = job
    empty = invoke(
        "savepoint",
        "create",
        str(pipeline),
        "--state-dir",
        str(tmp_path / "none"),
        "--dir",
        str(tmp_path / "a"),
        "--no-quiesce",
    )
    assert empty.exit_code == 4
    assert "error: no committed state of job sp-test under" in empty.output
    both = invoke("savepoint", "create", str(pipeline), "--stop", "--no-quiesce")
    assert both.exit_code == 2 and "--stop needs to contact the job" in both.output
    (tmp_path / "b").mkdir()
    exists = invoke(
        "savepoint",
        "create",
        str(pipeline),
        "--state-dir",
        str(state),
        "--dir",
        str(tmp_path / "b"),
        "--no-quiesce",
    )
    assert exists.exit_code == 4 and "already exists" in exists.output


def test_list(saved: Path) -> None:
    result = invoke("savepoint", "list", str(saved.parent.parent), "--output", "table")
    assert result.exit_code == 0, result.output
    [row] = table_rows(result.output)
    assert row[0] == str(saved) and row[1] == "sp-test"
    assert row[4] == "pairs, per-minute, totals" and row[3].endswith("KiB")


def test_list_without_savepoints(tmp_path: Path) -> None:
    result = invoke("savepoint", "list", str(tmp_path), "--output", "table")
    assert result.exit_code == 0 and result.stdout == f"no savepoints under {tmp_path}\n"
    piped = invoke("savepoint", "list", str(tmp_path))  # jsonl: no line; the note on stderr
    assert piped.exit_code == 0 and piped.stdout == ""
    assert piped.stderr == f"no savepoints under {tmp_path}\n"


def test_inspect(saved: Path) -> None:
    result = invoke("savepoint", "inspect", str(saved), "--output", "table")
    assert result.exit_code == 0, result.output
    assert "pipeline     sp-test (group sp-test)" in result.output
    source = "source       sp-events: sp-events (2 partitions), next offsets 0=76 1=75"
    assert source in result.output
    rows = {r[0]: r for r in table_rows(result.output)}
    assert rows["pairs"][1:7] == ["count", "sp-events", "10", "9", "5", "0"]
    assert rows["per-minute"][1:7] == ["tumbling", "by-key", "5", "5", "5", "5"]
    assert rows["totals"][1:7] == ["global", "by-key", "5", "5", "5", "0"]
    assert rows["sp-events:0"][1:3] == ["sp-events", "76"]


def test_inspect_json(saved: Path) -> None:
    result = invoke("savepoint", "inspect", str(saved), "--json")
    body = json.loads(result.output)
    assert body["manifest"]["pipeline"] == "sp-test"
    assert [o["windows"] for o in body["operators"]] == [9, 5, 5]


def test_inspect_refuses_a_corrupt_savepoint(saved: Path) -> None:
    path = saved / "node-totals.avro"
    data = bytearray(path.read_bytes())
    data[-5] ^= 1
    path.write_bytes(bytes(data))
    result = invoke("savepoint", "inspect", str(saved))
    assert result.exit_code == 4
    assert "node-totals.avro is corrupt (its SHA-256 differs from the manifest)" in result.output


def test_dispose(saved: Path, tmp_path: Path) -> None:
    result = invoke("savepoint", "dispose", str(saved))
    assert result.exit_code == 0 and f"disposed {saved}" in result.output
    assert not saved.exists()
    (tmp_path / "not-one").mkdir()
    refused = invoke("savepoint", "dispose", str(tmp_path / "not-one"))
    assert refused.exit_code == 4 and "is not a savepoint" in refused.output
    assert (tmp_path / "not-one").exists()


def test_state_dump_table(saved: Path) -> None:
    result = invoke("state", "dump", str(saved), "--operator", "per-minute", "-o", "table")
    assert result.exit_code == 0, result.output
    rows = table_rows(result.output)
    assert len(rows) == 5 and "per-minute: 5 windows" in result.output
    assert {r[0] for r in rows} == {"u0", "u1", "u2", "u3", "u4"}
    assert rows[0][1] == "1970-01-01 00:02:00" and rows[0][2] == "1970-01-01 00:03:00"


def test_state_dump_jsonl_key_and_limit(saved: Path) -> None:
    result = invoke("state", "dump", str(saved), "--operator", "totals", "--output", "jsonl")
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 5 and set(lines[0]) == {"key", "windows", "best", "spread"}
    one = invoke(
        "state", "dump", str(saved), "--operator", "pairs", "--key", "u1", "--output", "jsonl"
    )
    rows = [json.loads(line) for line in one.output.splitlines()]
    assert rows and {r["key"] for r in rows} == {"u1"}
    quoted = invoke(
        "state",
        "dump",
        str(saved),
        "--operator",
        "pairs",
        "--key",
        '"u1"',
        "--output",
        "jsonl",
        "--limit",
        "1",
    )
    assert len(quoted.output.splitlines()) == 1


def test_state_dump_unknown_operator(saved: Path) -> None:
    result = invoke("state", "dump", str(saved), "--operator", "nope")
    assert result.exit_code == 4
    assert "has no operator 'nope' (operators: pairs, per-minute, totals)" in result.output
