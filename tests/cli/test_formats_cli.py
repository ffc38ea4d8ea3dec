"""``kstream produce`` / ``tail`` format options that need no broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from kstream_cli.produce_cmd import produce
from kstream_cli.tail_cmd import record_dict

from kstream.io import avro
from kstream.pipeline import schemas
from kstream.tools import loader
from kstream.tools.process import free_port

REPO = Path(__file__).resolve().parents[2]
V1 = str(REPO / "schemas" / "flight-v1.avsc")


@pytest.fixture
def dead(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(loader, "ADMIN_TIMEOUT_S", 1.0)
    return f"127.0.0.1:{free_port()}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "avro"], "--format avro needs --schema FILE"),
        (["--schema", V1], "--schema and --schema-registry need --format avro"),
        (["--schema-registry", "mock://x"], "need --format avro"),
    ],
)
def test_produce_format_usage_errors(args: list[str], message: str, dead: str) -> None:
    argv = ["t", "--dataset", "nycflights13", *args, "--bootstrap-servers", dead]
    result = CliRunner().invoke(produce, argv)
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_produce_format_still_names_the_input_file_format(tmp_path: Path, dead: str) -> None:
    path = tmp_path / "rows.txt"
    path.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(
        produce, ["t", str(path), "--format", "csv", "--bootstrap-servers", dead]
    )
    assert result.exit_code == 3, result.stderr  # got as far as the (unreachable) broker
    result = CliRunner().invoke(produce, ["t", str(path), "--bootstrap-servers", dead])
    assert result.exit_code == 2 and "pass --input-format" in result.stderr


class Msg:
    """A consumed record for :func:`record_dict`."""

    def __init__(self, value: bytes | None, headers: list[tuple[str, bytes]] | None = None) -> None:
        self._value, self._headers = value, headers

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, 5)

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return 7

    def headers(self) -> Any:
        return self._headers


def test_tail_decodes_avro_and_falls_back_for_other_bytes() -> None:
    schema = schemas.parse_schema(
        {"type": "record", "name": "P", "fields": [{"name": "x", "type": "long"}]}
    )
    decode = avro.decoder(schema)
    assert record_dict(Msg(avro.encoder(schema)({"x": 3})), decode)["value"] == {"x": 3}
    assert record_dict(Msg(b'{"x": 1}'), decode)["value"] == {"x": 1}  # not Avro: as JSON
    assert record_dict(Msg(b"\xff\xff"), decode)["value"] == {"base64": "//8="}


def test_tail_summarises_dead_letter_headers() -> None:
    headers = [
        ("kstream.error.class", b"ZeroDivisionError"),
        ("kstream.error.message", b"division by zero"),
        ("kstream.error.stage", b"expression"),
        ("kstream.error.operator", b"enrich"),
        ("kstream.source.topic", b"readings"),
        ("kstream.source.partition", b"0"),
        ("kstream.source.offset", b"1500"),
        ("kstream.source.timestamp", b"5"),
    ]
    record = record_dict(Msg(b"{}", headers))
    assert record["error"] == {
        "class": "ZeroDivisionError",
        "stage": "expression",
        "operator": "enrich",
        "message": "division by zero",
        "source": "readings[0]@1500",
    }
    assert "error" not in record_dict(Msg(b"{}", [("other", b"x")]))
