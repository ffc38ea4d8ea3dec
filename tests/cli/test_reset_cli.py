"""``kstream reset`` through click, with the Kafka side replaced by :class:`resetkit.FakeBroker`:
the help, one-line errors, ``--dry-run`` and the confirmation prompt change nothing, ``--yes``
carries the reset out. Against a real broker: tests/integration/test_reset_job.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kstream_cli.main import cli
from resetkit import FakeBroker

from kstream.graph.plan import Plan
from kstream.io.kafka import GroupMember
from kstream.runtime import reset as job_reset
from kstream.tools.process import free_port

REPO = Path(__file__).resolve().parents[2]
HOURLY = str(REPO / "examples" / "flights-hourly.yaml")
REPARTITION = "flights-hourly.by-origin.repartition"


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> FakeBroker:
    """flights-hourly after a run on 2 partitions; ``kstream reset`` gets it instead of Kafka."""
    fake = FakeBroker(
        topics_={"flights": 2, "flights-hourly": 2, REPARTITION: 2, "flights-hourly.control": 1},
        committed_={("flights", 0): 900, ("flights", 1): 1000},
        ranges={("flights", 0): (0, 900), ("flights", 1): (0, 1000)},
    )

    def connect(plan: Plan, bootstrap: str) -> FakeBroker:
        fake.groups.append(plan.prefix)
        return fake

    monkeypatch.setattr(job_reset, "connect", connect)
    return fake


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """A state dir holding two task directories of flights-hourly."""
    for task in ("flights.p0", "by-origin.p0"):
        (tmp_path / "state" / "flights-hourly" / task / "db").mkdir(parents=True)
    return tmp_path / "state"


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, ["reset", HOURLY, *args], obj={}, input=stdin)


def one_error_line(result: Result, exit_code: int, *fragments: str) -> str:
    assert result.exit_code == exit_code, (result.output, result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_help_names_the_targets_and_has_examples() -> None:
    result = CliRunner().invoke(cli, ["reset", "--help"], obj={})
    assert result.exit_code == 0, result.output
    for option in ("--to-earliest", "--to-datetime", "--to-offsets", "--dry-run", "--yes"):
        assert option in result.stdout
    text = " ".join(result.stdout.split())
    assert "without a UTC offset the time is UTC" in text and "Example" in text
    assert "--from-savepoint" in text.replace("- ", "-")  # help text wraps after hyphens


def test_dry_run_prints_the_plan_and_changes_nothing(broker: FakeBroker, state: Path) -> None:
    result = invoke("--dry-run", "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "reset of pipeline flights-hourly (group flights-hourly) to earliest" in out
    assert "flights" in out and "900" in out and "1000" in out
    assert REPARTITION in out and "flights-hourly.control" in out
    assert "flights-hourly.hourly.changelog" not in out  # not on the broker: nothing to delete
    assert str(state / "flights-hourly" / "flights.p0") in out
    assert "dry run: nothing was changed" in result.stderr
    assert broker.changes == [] and broker.closed
    assert (state / "flights-hourly" / "flights.p0").is_dir()


def test_declining_the_prompt_changes_nothing(broker: FakeBroker, state: Path) -> None:
    result = invoke("--state-dir", str(state), stdin="n\n")
    assert result.exit_code == 1, result.output
    assert "Reset group flights-hourly: commit 2 source offsets, delete 2 internal topics" in (
        result.stderr
    )
    assert "reset cancelled: nothing was changed" in result.stderr
    assert broker.changes == [] and (state / "flights-hourly" / "by-origin.p0").is_dir()


def test_no_answer_at_the_prompt_changes_nothing(broker: FakeBroker, state: Path) -> None:
    result = invoke("--state-dir", str(state), stdin="")
    assert result.exit_code == 1 and "nothing was changed" in result.stderr
    assert broker.changes == []


def test_confirming_resets(broker: FakeBroker, state: Path) -> None:
    result = invoke("--state-dir", str(state), stdin="y\n")
    assert result.exit_code == 0, result.output
    assert [kind for kind, _ in broker.changes] == ["delete_group", "commit", "delete_topics"]
    assert broker.committed_ == {("flights", 0): 0, ("flights", 1): 0}
    assert not (state / "flights-hourly").exists()
    assert "reset group flights-hourly: committed 2 source offsets, deleted 2 internal topics" in (
        result.stderr
    )


def test_yes_does_not_ask_and_group_names_the_group(broker: FakeBroker, state: Path) -> None:
    (state / "v2" / "flights.p0").mkdir(parents=True)
    result = invoke("--yes", "--group", "v2", "--state-dir", str(state), "--to-datetime", "2013")
    assert result.exit_code == 2, result.output  # "2013" is not a date-time
    result = invoke("-y", "--group", "v2", "--state-dir", str(state), "--to-datetime", "2013-06-01")
    assert result.exit_code == 0, result.output
    assert "Reset group" not in result.stderr
    assert broker.groups == ["v2"]
    assert "(group v2)" in result.stdout and "2013-06-01T00:00:00.000Z" in result.stdout
    assert not (state / "v2").exists() and (state / "flights-hourly").is_dir()
    assert "`kstream run" in result.stderr and "--group v2`" in result.stderr


def test_a_wrong_offsets_file_is_one_line_naming_file_and_line(
    broker: FakeBroker, state: Path, tmp_path: Path
) -> None:
    path = tmp_path / "offsets.csv"
    path.write_text("# reset\nflights,0,10\nflights,1,ten\n", encoding="utf-8")
    result = invoke("--to-offsets", str(path), "--yes", "--state-dir", str(state))
    one_error_line(result, 2, f"{path}:3:", "offset 'ten' is not a whole number", "e.g.")
    assert broker.changes == []


def test_the_offsets_of_a_file_are_committed(
    broker: FakeBroker, state: Path, tmp_path: Path
) -> None:
    path = tmp_path / "offsets.csv"
    path.write_text("flights,0,10\nflights,1,20\n", encoding="utf-8")
    result = invoke("--to-offsets", str(path), "--yes", "--state-dir", str(state))
    assert result.exit_code == 0, result.output
    assert ("commit", {("flights", 0): 10, ("flights", 1): 20}) in broker.changes


def test_two_targets_are_one_line(broker: FakeBroker) -> None:
    result = invoke("--to-earliest", "--to-datetime", "2013-01-01")
    one_error_line(result, 2, "--to-earliest, --to-datetime and --to-offsets exclude each other")


def test_live_members_are_named_in_one_line(broker: FakeBroker, state: Path) -> None:
    broker.members_ = [GroupMember("m-1", "rdkafka", "/127.0.0.1")]
    result = invoke("--yes", "--state-dir", str(state))
    one_error_line(result, 2, "live members (rdkafka@/127.0.0.1)", "stop every `kstream run`")
    assert broker.changes == [] and (state / "flights-hourly").is_dir()


def test_an_unreachable_broker_is_one_line(tmp_path: Path) -> None:
    port = free_port()  # nobody listens there
    result = invoke("--dry-run", "--bootstrap-servers", f"127.0.0.1:{port}")
    one_error_line(result, 3, f"cannot reach Kafka at 127.0.0.1:{port}", "kstream broker")
