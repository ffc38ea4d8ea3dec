"""Loading ``process:`` nodes: keyed input, ports, state declarations, ids, python refs."""

from __future__ import annotations

from pathlib import Path

import pytest

from kstream.errors import ConfigError
from kstream.pipeline.checks import check_imports
from kstream.pipeline.load import load_pipeline, load_pipeline_text
from kstream.pipeline.spec import ProcessSpec

HEAD = """\
pipeline: p
sources:
  - {topic: events, event_time: {field: ts}}
operators:
"""
KEYED = "  - key_by: k\n"
PROCESS = """\
  - id: fn
    process:
      python: process_udfs:Everything
      state: {count: value, seen: list}
      ports: [odd]
"""
SINKS = """\
sinks:
  - {topic: out, from: fn}
  - {topic: odd, from: fn.odd}
"""


def load(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_pipeline_text(text)
    return info.value


def test_a_keyed_process_node_loads() -> None:
    spec = load_pipeline_text(HEAD + KEYED + PROCESS + SINKS)
    op = spec.operators[-1]
    assert isinstance(op, ProcessSpec)
    assert op.state == (("count", "value"), ("seen", "list"))
    assert op.ports == ("odd",)
    assert spec.stateful_ids() == ["fn"]


def test_process_without_key_by_is_an_error_with_line_and_fix() -> None:
    error = load(HEAD + PROCESS + SINKS)
    text = str(error)
    assert "process 'fn' is not keyed" in text and "key_by" in text
    assert "<string>:6:" in text  # the line of the process key


def test_reading_an_undeclared_port_is_an_error() -> None:
    error = load(HEAD + KEYED + PROCESS + SINKS.replace("fn.odd", "fn.even"))
    assert "has no port 'even'" in str(error) and "odd" in str(error)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("seen: list", "seen: queue", "unknown state kind 'queue'"),
        ("ports: [odd]", "ports: [odd, late]", "'late' is a reserved port name"),
        ("  - id: fn\n", "  - \n", "needs an 'id'"),
        ("      python: process_udfs:Everything\n", "", "process needs 'python"),
    ],
)
def test_invalid_process_items(old: str, new: str, message: str) -> None:
    error = load(HEAD + KEYED + PROCESS.replace(old, new) + SINKS)
    assert message in str(error)


def test_check_imports_requires_a_process_method(tmp_path: Path) -> None:
    (tmp_path / "fns.py").write_text("class NoProcess:\n    pass\n")
    text = HEAD + KEYED + PROCESS.replace("process_udfs:Everything", "fns:NoProcess") + SINKS
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match="has no method process"):
        check_imports(load_pipeline(path))
