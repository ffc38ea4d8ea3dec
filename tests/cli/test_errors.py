"""User errors reach the terminal as one actionable line and a non-zero exit, no traceback
(unless ``--debug``). Broker-free: the broker cases point at a port nobody listens on.

The "field missing from the data" case needs records, so it lives in
``tests/integration/test_cli_errors.py``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kstream_cli.main import cli

from kstream.errors import ConfigError
from kstream.tools.process import free_port

REPO = Path(__file__).resolve().parents[2]
HOURLY = REPO / "examples" / "flights-hourly.yaml"

INVALID_YAML = """\
pipeline: broken
sources:
  - topic: flights
    event_time: {field: sched_dep_ts, unit: ms
operators: []
sinks:
  - topic: out
"""


def one_error_line(result: Result, exit_code: int, *fragments: str) -> str:
    """Assert ``exit_code``, no traceback, and exactly one ``error: ...`` line on stderr that
    contains every fragment; returns that line."""
    assert result.exit_code == exit_code, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # handled, not a crash
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    return line


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj={})


@pytest.fixture
def invalid_yaml(tmp_path: Path) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(INVALID_YAML, encoding="utf-8")
    return path


@pytest.fixture
def unknown_operator(tmp_path: Path) -> Path:
    """flights-hourly.yaml with ``key_by`` misspelt ``key_bye``."""
    text = HOURLY.read_text(encoding="utf-8")
    assert text.count("key_by: origin") == 1
    path = tmp_path / "typo.yaml"
    path.write_text(text.replace("key_by: origin", "key_bye: origin"), encoding="utf-8")
    return path


@pytest.fixture
def restore_signals() -> Iterator[None]:
    """``kstream run`` installs SIGINT/SIGTERM handlers; give pytest its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


# -- invalid YAML --------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "plan", "run"])
def test_invalid_yaml(command: str, invalid_yaml: Path, restore_signals: None) -> None:
    extra = ["--bootstrap-servers", f"127.0.0.1:{free_port()}"] if command != "validate" else []
    result = invoke(command, str(invalid_yaml), *extra)
    line = one_error_line(result, 2, f"{invalid_yaml}:", "invalid YAML")
    # It names a line of the file and says what to check.
    assert f"{invalid_yaml}:5:" in line or f"{invalid_yaml}:4:" in line, line
    assert "check" in line, line


def test_invalid_yaml_real_process_has_no_traceback(invalid_yaml: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "from kstream_cli.main import main; main()", "validate",
         str(invalid_yaml)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "Traceback" not in proc.stderr


def test_debug_shows_the_traceback(invalid_yaml: Path) -> None:
    result = invoke("--debug", "validate", str(invalid_yaml))
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)

    proc = subprocess.run(
        [sys.executable, "-c", "from kstream_cli.main import main; main()", "--debug",
         "validate", str(invalid_yaml)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "Traceback (most recent call last)" in proc.stderr
    assert "ConfigError" in proc.stderr


# -- unknown operator ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["validate", "run"])
def test_unknown_operator(command: str, unknown_operator: Path, restore_signals: None) -> None:
    extra = ["--bootstrap-servers", f"127.0.0.1:{free_port()}"] if command == "run" else []
    result = invoke(command, str(unknown_operator), *extra)
    line = one_error_line(
        result, 2, f"{unknown_operator}:", "unknown operator 'key_bye'", "did you mean 'key_by'"
    )
    assert "operators[1]" in line, line


def test_unknown_operator_lists_the_operators(tmp_path: Path) -> None:
    text = HOURLY.read_text(encoding="utf-8").replace("filter:", "frobnicate:", 1)
    path = tmp_path / "frob.yaml"
    path.write_text(text, encoding="utf-8")
    line = one_error_line(invoke("validate", str(path)), 2, "unknown operator 'frobnicate'")
    for name in ("filter", "map", "key_by", "window"):
        assert name in line.split("expected", 1)[-1], line


def test_every_issue_on_its_own_line(tmp_path: Path) -> None:
    """Two independent mistakes: two lines, each with file:line and key path."""
    text = (
        HOURLY.read_text(encoding="utf-8")
        .replace("key_by: origin", "key_bye: origin")
        .replace("size: 1h", "size: 1 hour")
    )
    path = tmp_path / "two.yaml"
    path.write_text(text, encoding="utf-8")
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, result.stderr
    assert all(line.startswith(f"error: {path}:") for line in lines), lines
    assert "Traceback" not in result.output


def test_missing_pipeline_file(tmp_path: Path) -> None:
    result = invoke("validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.output


# -- unreachable broker --------------------------------------------------------------------------


def test_run_with_unreachable_broker(tmp_path: Path, restore_signals: None) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    result = invoke(
        "run", str(HOURLY), "--bounded", "--state-dir", str(tmp_path / "state"),
        "--bootstrap-servers", bootstrap,
    )  # fmt: skip
    one_error_line(result, 3, f"cannot reach Kafka at {bootstrap}", "kstream broker")


def test_run_reads_bootstrap_from_the_environment(tmp_path: Path, restore_signals: None) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"
    result = CliRunner(env={"KSTREAM_BOOTSTRAP_SERVERS": bootstrap}).invoke(
        cli, ["run", str(HOURLY), "--bounded", "--state-dir", str(tmp_path / "s")], obj={}
    )
    one_error_line(result, 3, f"cannot reach Kafka at {bootstrap}")


def test_plan_without_broker_still_shows_the_graph() -> None:
    """``plan`` works offline: partition counts are assumed and the note says so."""
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        cli,
        ["plan", str(HOURLY), "--bootstrap-servers", f"127.0.0.1:{free_port()}", "-o", "table"],
        obj={},
    )
    assert result.exit_code == 0, result.output
    assert "broker not reachable" in result.stdout


# -- run rejects what validate reports, with file:line, before reaching the broker ----------------


def test_run_reports_a_bad_python_reference_with_its_line(
    tmp_path: Path, restore_signals: None
) -> None:
    text = HOURLY.read_text(encoding="utf-8")
    assert text.count("key_by: origin") == 1
    path = tmp_path / "udf.yaml"
    path.write_text(
        text.replace("key_by: origin", "key_by: {python: 'nosuch_run_mod:key'}"), encoding="utf-8"
    )
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "key_by: origin" in row)
    result = invoke(
        "run", str(path), "--bounded", "--state-dir", str(tmp_path / "state"),
        "--bootstrap-servers", f"127.0.0.1:{free_port()}",
    )  # fmt: skip
    one_error_line(
        result, 2, f"{path}:{line}:", ".key_by.python: module 'nosuch_run_mod' not found"
    )


def test_run_reports_a_short_transaction_timeout_with_its_line(
    tmp_path: Path, restore_signals: None
) -> None:
    path = tmp_path / "txn.yaml"
    path.write_text(
        "pipeline: p\nkafka:\n  transaction.timeout.ms: 10000\n"
        "sources:\n  - topic: t\nsinks:\n  - topic: o\n",
        encoding="utf-8",
    )
    result = invoke(
        "run", str(path), "--bounded", "--state-dir", str(tmp_path / "state"),
        "--bootstrap-servers", f"127.0.0.1:{free_port()}",
    )  # fmt: skip
    one_error_line(
        result, 2, f"{path}:3: kafka.transaction.timeout.ms: 10000 is too small",
        "set kafka: {transaction.timeout.ms: 35000} or more",
    )  # fmt: skip
