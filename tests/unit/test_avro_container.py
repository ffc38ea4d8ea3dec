"""Avro object container files: ``kstream.io.avro.write_container`` / ``read_container``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from kstream.errors import RecordError
from kstream.io.avro import ContainerError, read_container, write_container

SCHEMA = {
    "type": "record",
    "name": "Row",
    "namespace": "test",
    "fields": [{"name": "n", "type": "int"}, {"name": "raw", "type": "bytes"}],
}


def test_round_trip_with_metadata(tmp_path: Path) -> None:
    path = tmp_path / "rows.avro"
    rows = [{"n": i, "raw": bytes([i % 256])} for i in range(1000)]
    assert write_container(path, SCHEMA, iter(rows), metadata={"kstream.x": "y"}) == 1000
    schema, records = read_container(path)
    assert schema["name"] == "test.Row" and [f["name"] for f in schema["fields"]] == ["n", "raw"]
    assert list(records) == rows


def test_a_record_that_does_not_match_is_a_serialize_error(tmp_path: Path) -> None:
    with pytest.raises(RecordError, match=r"serialize.*record #2 does not match"):
        write_container(tmp_path / "x.avro", SCHEMA, [{"n": 1, "raw": b""}, {"n": "two"}])


def test_an_error_of_the_record_source_propagates_unchanged(tmp_path: Path) -> None:
    def rows() -> Iterator[dict[str, Any]]:
        yield {"n": 1, "raw": b""}
        raise LookupError("source failed")

    with pytest.raises(LookupError, match="source failed"):
        write_container(tmp_path / "x.avro", SCHEMA, rows())


def test_unwritable_path(tmp_path: Path) -> None:
    with pytest.raises(ContainerError, match="cannot write"):
        write_container(tmp_path / "missing" / "x.avro", SCHEMA, [])


def test_missing_not_avro_and_truncated_files(tmp_path: Path) -> None:
    with pytest.raises(ContainerError, match="cannot read"):
        read_container(tmp_path / "none.avro")
    (tmp_path / "text.avro").write_text("hello")
    with pytest.raises(ContainerError, match="is not an Avro container file"):
        read_container(tmp_path / "text.avro")
    path = tmp_path / "rows.avro"
    write_container(path, SCHEMA, [{"n": i, "raw": b"x" * 50} for i in range(100)])
    path.write_bytes(path.read_bytes()[:-30])
    _schema, records = read_container(path)
    with pytest.raises(ContainerError, match="is truncated or corrupt"):
        list(records)
