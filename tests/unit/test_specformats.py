"""The YAML of formats, schemas, the schema registry and error policies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kstream.errors import ConfigError, ConfigIssue
from kstream.pipeline.load import load_pipeline, load_pipeline_text
from kstream.pipeline.spec import KeyBySpec, MapSpec, WindowSpec
from kstream.pipeline.view import fingerprint, spec_to_dict

REPO = Path(__file__).resolve().parents[2]

AVRO = """\
pipeline: p
schema_registry: {url: "mock://p", basic.auth.user.info: "me:s3cr3t-pw"}
sources:
  - topic: flights
    format: avro
    schema: schemas/flight.avsc
    key_format: string
    event_time: sched_dep_ts
    on_error: dead_letter
    dead_letter_topic: bad
operators:
  - id: m
    map: {fields: {h: "dep_delay / 60"}}
    on_error: skip
  - id: by-origin
    key_by: origin
    on_error: dead_letter
    dead_letter_topic: bad-keys
  - id: hourly
    window: {type: tumbling, size: 1h, aggregate: {n: count}}
    on_error: fail
sinks:
  - topic: out
    format: avro
    on_error: dead_letter
    dead_letter_topic: bad-out
"""


def issues_of(text: str, path: Path | None = None) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        if path is None:
            load_pipeline_text(text)
        else:
            path.write_text(text)
            load_pipeline(path)
    return info.value.issues


@pytest.fixture
def pipe_dir(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "schemas", tmp_path / "schemas")
    return tmp_path


def test_formats_schemas_and_policies_load(pipe_dir: Path) -> None:
    (pipe_dir / "p.yaml").write_text(AVRO)
    spec = load_pipeline(pipe_dir / "p.yaml")
    source = spec.sources[0]
    assert source.format == "avro"
    assert source.schema == str(pipe_dir / "schemas" / "flight.avsc")  # relative to the file
    assert spec.schema_registry == {"url": "mock://p", "basic.auth.user.info": "me:s3cr3t-pw"}
    ops = {op.id: op for op in spec.operators}
    assert isinstance(ops["m"], MapSpec) and ops["m"].on_error == "skip"
    assert isinstance(ops["by-origin"], KeyBySpec)
    assert ops["by-origin"].dead_letter_topic == "bad-keys"
    assert isinstance(ops["hourly"], WindowSpec) and ops["hourly"].on_error == "fail"
    assert (spec.sinks[0].on_error, spec.sinks[0].dead_letter_topic) == ("dead_letter", "bad-out")
    assert spec.dead_letter_topics() == ["bad", "bad-keys", "bad-out"]
    shown = str(spec_to_dict(spec))
    assert "s3cr3t-pw" not in shown and "mock://p" in shown


def test_policies_do_not_change_the_fingerprint(pipe_dir: Path) -> None:
    (pipe_dir / "a.yaml").write_text(AVRO)
    (pipe_dir / "b.yaml").write_text(AVRO.replace("    on_error: fail\n", ""))
    assert fingerprint(load_pipeline(pipe_dir / "a.yaml")) == fingerprint(
        load_pipeline(pipe_dir / "b.yaml")
    )


def test_schema_problems_are_reported_with_their_lines(pipe_dir: Path) -> None:
    text = AVRO.replace("schemas/flight.avsc", "schemas/nope.avsc")
    (issue,) = issues_of(text, pipe_dir / "p.yaml")
    assert (issue.line, issue.key_path) == (6, "sources[0].schema")
    assert "cannot read Avro schema" in issue.message and "relative to the pipeline" in issue.hint


def test_a_schema_may_be_given_inline_and_is_checked_there() -> None:
    text = (
        "pipeline: p\nsources:\n  - topic: t\n    format: avro\n"
        "    schema: {type: record, name: r, fields: [{name: a, type: long}]}\n"
        "sinks:\n  - topic: o\n    format: avro\n    schema:\n      type: record\n"
        "      name: r\n      fields: [{name: a, type: long}]\n"
    )
    spec = load_pipeline_text(text)
    inline = '{"type":"record","name":"r","fields":[{"name":"a","type":"long"}]}'
    assert spec.sources[0].schema == inline and spec.sinks[0].schema == inline
    (issue,) = issues_of(text.replace("type: long}]}", "type: lng}]}"))
    assert (issue.line, issue.key_path) == (5, "sources[0].schema")
    assert "invalid Avro inline schema" in issue.message and "inline schema" in issue.hint


def test_a_plain_avro_source_needs_a_schema() -> None:
    text = "pipeline: p\nsources:\n  - topic: t\n    format: avro\nsinks:\n  - topic: o\n"
    (issue,) = issues_of(text)
    assert (issue.line, issue.key_path) == (4, "sources[0].format")
    assert "needs 'schema'" in issue.message and "schema_registry" in issue.hint


def test_writer_schema_needs_plain_avro(pipe_dir: Path) -> None:
    text = AVRO.replace("    key_format: string\n", "    writer_schema: schemas/flight-v1.avsc\n")
    (issue,) = issues_of(text, pipe_dir / "p.yaml")
    assert issue.key_path == "sources[0].writer_schema"
    assert "format: avro without a registry" in issue.message


def test_an_avro_sink_of_plain_records_needs_a_schema() -> None:
    text = (
        "pipeline: p\nsources:\n  - topic: t\noperators:\n  - map: {select: [a]}\n"
        "sinks:\n  - topic: o\n    format: avro\n"
    )
    (issue,) = issues_of(text)
    assert issue.key_path == "sinks[0].format" and "needs 'schema'" in issue.message


def test_a_given_sink_schema_must_hold_the_window_results(pipe_dir: Path) -> None:
    (pipe_dir / "out.avsc").write_text(
        '{"type": "record", "name": "Out", "fields": [{"name": "key", "type": "string"}, '
        '{"name": "extra", "type": "long"}]}'
    )
    text = AVRO.replace(
        "    format: avro\n    on_error: dead_letter\n",
        "    format: avro\n    schema: out.avsc\n    on_error: dead_letter\n",
    )
    issues = issues_of(text, pipe_dir / "p.yaml")
    assert [i.key_path for i in issues] == ["sinks[0].schema"] * 4
    assert "no field 'window_start'" in issues[0].message
    assert "'extra' is not a result field" in issues[-1].message


def test_policy_keys_are_checked_at_every_level() -> None:
    text = """\
pipeline: p
sources:
  - topic: t
    dead_letter_topic: dlq
operators:
  - filter: "x > 1"
    on_error: dead_letter
  - map: {select: [x]}
    on_error: ignore
sinks:
  - topic: o
    dead_letter_topic: dlq2
"""
    issues = {(i.line, i.key_path): i for i in issues_of(text)}
    assert "unused with on_error: fail" in issues[(4, "sources[0].dead_letter_topic")].message
    assert "needs 'dead_letter_topic'" in issues[(7, "operators[0].on_error")].message
    assert "invalid value 'ignore'" in issues[(9, "operators[1].on_error")].message
    unset = issues[(12, "sinks[0].dead_letter_topic")].message
    assert "the source's policy applies" in unset


def test_the_dead_letter_topic_cannot_be_the_source() -> None:
    text = (
        "pipeline: p\nsources:\n  - topic: t\n    on_error: dead_letter\n"
        "    dead_letter_topic: t\nsinks:\n  - topic: o\n"
    )
    (issue,) = issues_of(text)
    assert "is a source topic" in issue.message


def test_registry_as_a_url_string() -> None:
    text = (
        "pipeline: p\nschema_registry: http://registry:8081\nsources:\n  - topic: t\n"
        "    format: avro\nsinks:\n  - topic: o\n    format: avro\n"
    )
    with pytest.raises(ConfigError) as info:  # the sink of plain records still needs a schema
        load_pipeline_text(text)
    assert [i.key_path for i in info.value.issues] == ["sinks[0].format"]
