"""What ``kstream validate`` checks beyond the file's shape (kstream.pipeline.checks): the
transaction timeout against the checkpoint interval, ``python:`` references, durations and
format/schema combinations; each issue with its line, key path and a fix."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

from kstream.errors import ConfigError, ConfigIssue
from kstream.pipeline.checks import check_imports
from kstream.pipeline.durations import parse_duration_ms, suggest_duration
from kstream.pipeline.load import load_pipeline, load_pipeline_text

_NAMES = itertools.count()

UDFS = """\
CALLS = []

def keep(value):
    CALLS.append(value)
    return True

LIMIT = 3

class Median:
    def __init__(self):
        CALLS.append("init")
    def initialize(self):
        return []
    def add(self, acc, value):
        return acc + [value]
    def merge(self, a, b):
        return a + b
    def result(self, acc):
        return acc

class NoMerge:
    def initialize(self):
        return []
    def add(self, acc, value):
        return acc
    def result(self, acc):
        return acc

def median_factory():
    CALLS.append("factory")
    return Median()
"""


def issues_of(text: str) -> list[ConfigIssue]:
    with pytest.raises(ConfigError) as info:
        load_pipeline_text(text)
    return info.value.issues


def checkpoint_pipeline(checkpoint: str, kafka: str = "") -> str:
    return (
        f"pipeline: p\n{kafka}checkpoint: {checkpoint}\n"
        "sources:\n  - topic: t\nsinks:\n  - topic: o\n"
    )


# -- transaction.timeout.ms against the checkpoint interval ---------------------------------------


def test_a_transaction_timeout_below_interval_plus_restart_is_rejected() -> None:
    text = checkpoint_pipeline("{interval: 40s}", "kafka:\n  transaction.timeout.ms: 60000\n")
    (issue,) = issues_of(text)
    assert (issue.line, issue.key_path) == (3, "kafka.transaction.timeout.ms")
    assert issue.message.startswith("60000 is too small for checkpoint interval 40s")
    assert issue.hint.startswith("set kafka: {transaction.timeout.ms: 70000} or more")


def test_the_default_timeout_is_checked_on_the_interval() -> None:
    (issue,) = issues_of(checkpoint_pipeline("\n  interval: 1m"))
    assert (issue.line, issue.key_path) == (3, "checkpoint.interval")
    assert "the default transaction.timeout.ms (60000) is too small for interval 1m" in (
        issue.message
    )
    hint = "set kafka: {transaction.timeout.ms: 90000} or more, or a shorter interval"
    assert issue.hint == hint


def test_a_transaction_timeout_that_is_no_integer_is_rejected() -> None:
    text = checkpoint_pipeline("{interval: 5s}", "kafka:\n  transaction.timeout.ms: 1m\n")
    (issue,) = issues_of(text)
    assert issue.key_path == "kafka.transaction.timeout.ms"
    assert issue.message == "expected an integer of ms, got a string ('1m')"


@pytest.mark.parametrize(
    ("checkpoint", "kafka"),
    [
        ("{interval: 30s}", ""),  # the default 60000 is exactly enough
        ("{interval: 5m, guarantee: at_least_once}", ""),  # no transactions
        ("{interval: 5m}", "kafka:\n  transaction.timeout.ms: '330000'\n"),
    ],
)
def test_transaction_timeouts_that_fit(checkpoint: str, kafka: str) -> None:
    assert load_pipeline_text(checkpoint_pipeline(checkpoint, kafka)).name == "p"


# -- python: references ---------------------------------------------------------------------------


def udf_pipeline(tmp_path: Path, operators: str, module_text: str = UDFS) -> tuple[Path, str]:
    """A pipeline file in ``tmp_path`` with a module of a fresh name next to it; ``operators``
    says ``MOD`` for that name."""
    module = f"kstream_test_udfs_{next(_NAMES)}"
    (tmp_path / f"{module}.py").write_text(module_text, encoding="utf-8")
    text = (
        "pipeline: p\nsources:\n  - topic: t\noperators:\n"
        + operators.replace("MOD", module)
        + "sinks:\n  - topic: o\n"
    )
    path = tmp_path / "p.yaml"
    path.write_text(text, encoding="utf-8")
    return path, module


def import_issues(path: Path) -> list[ConfigIssue]:
    spec = load_pipeline(path)  # the file itself is valid
    with pytest.raises(ConfigError) as info:
        check_imports(spec)
    return info.value.issues


def test_good_references_are_imported_but_not_called(tmp_path: Path) -> None:
    ops = (
        "  - filter: {python: 'MOD:keep'}\n"
        "  - map: {python: 'MOD:Median'}\n"
        "  - id: w\n    window:\n      type: tumbling\n      size: 1h\n"
        "      aggregate: {m: {python: 'MOD:Median'}, f: {python: 'MOD:median_factory'}}\n"
    )
    path, module = udf_pipeline(tmp_path, ops)
    check_imports(load_pipeline(path))
    assert sys.modules[module].CALLS == []  # imported, nothing called or instantiated


def test_a_missing_module_names_the_folder_searched(tmp_path: Path) -> None:
    path, _ = udf_pipeline(tmp_path, "  - map: {python: 'nosuch_udfs_mod:shape'}\n")
    (issue,) = import_issues(path)
    assert (issue.file, issue.line, issue.key_path) == (str(path), 5, "operators[0].map.python")
    assert issue.message.startswith("module 'nosuch_udfs_mod' not found")
    assert issue.hint == (
        f"put nosuch_udfs_mod.py in {tmp_path} (the pipeline's folder), or install the module"
    )


def test_a_missing_attribute_and_a_value_that_is_not_callable(tmp_path: Path) -> None:
    ops = "  - flat_map: {python: 'MOD:explode'}\n  - key_by: {python: 'MOD:LIMIT'}\n"
    path, module = udf_pipeline(tmp_path, ops)
    missing, value = import_issues(path)
    assert (missing.line, missing.key_path) == (5, "operators[0].flat_map.python")
    assert missing.message == f"module '{module}' has no attribute 'explode'"
    assert missing.hint == f"define explode in module {module}, or fix the name after ':'"
    assert (value.line, value.key_path) == (6, "operators[1].key_by.python")
    assert value.message == f"'{module}:LIMIT' is a int, not callable"
    assert value.hint == f"name a function or class defined in {module}"


def test_an_aggregate_class_needs_the_aggregate_methods(tmp_path: Path) -> None:
    ops = (
        "  - id: w\n    window:\n      type: tumbling\n      size: 1h\n"
        "      aggregate:\n        m: {python: 'MOD:NoMerge'}\n"
    )
    path, module = udf_pipeline(tmp_path, ops)
    (issue,) = import_issues(path)
    assert (issue.line, issue.key_path) == (10, "operators[0].window.aggregate.m.python")
    assert issue.message == f"aggregate class {module}:NoMerge has no method merge()"
    assert "initialize(), add(acc, value), merge(acc1, acc2) and result(acc)" in issue.hint


def test_a_module_that_fails_to_import(tmp_path: Path) -> None:
    path, module = udf_pipeline(
        tmp_path, "  - filter: {python: 'MOD:keep'}\n", "raise RuntimeError('no config')\n"
    )
    (issue,) = import_issues(path)
    assert issue.message == f"importing '{module}' failed: RuntimeError: no config"
    assert (
        issue.hint == f"fix the error raised while importing {module} (validation only imports it)"
    )


def test_a_pipeline_from_text_is_not_import_checked() -> None:
    text = "pipeline: p\nsources:\n  - topic: t\noperators:\n  - filter: {python: 'nosuch_x:f'}\n"
    check_imports(load_pipeline_text(text + "sinks:\n  - topic: o\n"))  # no file to point into


# -- durations ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "fix"),
    [
        ("5 minutes", "5m"),
        ("2 Hours", "2h"),
        ("1.5h", "90m"),
        ("1.5s", "1500ms"),
        ("10 sec", "10s"),
        ("1 week", "7d"),
        ("-5 min", "-5m"),
        ("0.0001ms", None),
        ("5 parsecs", None),
        ("1h30m", None),
    ],
)
def test_suggest_duration(written: str, fix: str | None) -> None:
    assert suggest_duration(written) == fix


def test_a_duration_error_says_what_is_accepted_and_the_fix() -> None:
    (issue,) = issues_of(checkpoint_pipeline("{interval: 5 minutes, guarantee: at_least_once}"))
    assert issue.key_path == "checkpoint.interval"
    assert issue.message == "invalid duration a string ('5 minutes')"
    assert issue.hint == (
        "write 5m (a duration is an integer with a unit ms, s, m, h or d (500ms, 10s, 5m, 1h, "
        "1d), or an integer of ms)"
    )
    with pytest.raises(ValueError, match=r"write 5m$"):
        parse_duration_ms("5 minutes")


# -- formats and schemas that cannot work together ------------------------------------------------


def test_key_schema_with_a_string_key_format(tmp_path: Path) -> None:
    schemas = Path(__file__).resolve().parents[2] / "schemas"
    text = (
        "pipeline: p\nsources:\n  - topic: t\n    key_format: string\n"
        f"    key_schema: {schemas / 'flight.avsc'}\nsinks:\n  - topic: o\n"
    )
    (issue,) = issues_of(text)
    assert (issue.line, issue.key_path) == (5, "sources[0].key_schema")
    assert issue.message == "'key_schema' is only used with key_format: avro"
    assert issue.hint == "remove 'key_schema', or set key_format: avro"


def test_writer_schema_with_a_registry_says_why() -> None:
    schemas = Path(__file__).resolve().parents[2] / "schemas"
    text = (
        "pipeline: p\nschema_registry: mock://p\nsources:\n  - topic: t\n    format: avro\n"
        f"    writer_schema: {schemas / 'flight-v1.avsc'}\nsinks:\n  - topic: o\n"
    )
    (issue,) = issues_of(text)
    assert (issue.line, issue.key_path) == (6, "sources[0].writer_schema")
    assert issue.hint == (
        "remove 'writer_schema': with a schema_registry each record names its writer schema"
    )
