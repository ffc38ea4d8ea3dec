"""``kstream validate`` and ``kstream plan`` on the examples, without a broker."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kstream_cli.main import cli

from kstream.tools.process import free_port

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
HOURLY = EXAMPLES / "flights-hourly.yaml"
LATE = EXAMPLES / "flights-late.yaml"


def invoke(*args: str) -> Result:
    # Wide enough that rich never truncates a topic name.
    return CliRunner(env={"COLUMNS": "250"}).invoke(cli, list(args), obj={})


def table_rows(output: str) -> list[list[str]]:
    """The body rows of the rich tables in ``output``, as stripped cells."""
    return [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in output.splitlines()
        if line.startswith("│")
    ]


@pytest.fixture(scope="module")
def offline() -> str:
    """A bootstrap address nobody answers on."""
    return f"127.0.0.1:{free_port()}"


def test_validate_hourly() -> None:
    result = invoke("validate", str(HOURLY))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        f"ok: {HOURLY}: pipeline 'flights-hourly', 3 operators, 2 stage(s), 1 sink(s)"
    )
    assert result.stderr == ""


def test_validate_late() -> None:
    result = invoke("validate", str(LATE))
    assert result.exit_code == 0, result.output
    assert "pipeline 'flights-late', 2 operators, 1 stage(s), 1 sink(s)" in result.stdout


def _jobs() -> list[str]:
    """Every example job: the pipeline files and the SQL scripts with an INSERT (not the table
    definitions for kstream sql, flights-tables.sql)."""
    scripts = [p for p in EXAMPLES.glob("*.sql") if "INSERT INTO" in p.read_text().upper()]
    return sorted(p.name for p in [*EXAMPLES.glob("*.yaml"), *scripts])


@pytest.mark.parametrize("example", _jobs())
def test_every_example_validates(example: str) -> None:
    result = invoke("validate", str(EXAMPLES / example))
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("ok: ")


def test_validate_sql_job() -> None:
    result = invoke("validate", str(EXAMPLES / "flights-hourly.sql"))
    assert result.exit_code == 0, result.output
    assert "pipeline 'flights-hourly-sql', 4 operators, 2 stage(s), 1 sink(s)" in result.stdout


def test_validate_sql_error_gives_file_line_column(tmp_path: Path) -> None:
    job = tmp_path / "job.sql"
    job.write_text(
        "CREATE TABLE t (a BIGINT) WITH ('connector' = 'kafka', 'topic' = 't');\n"
        "CREATE TABLE o (a BIGINT) WITH ('connector' = 'kafka', 'topic' = 'o');\n"
        "INSERT INTO o\nSELECT a FROM t ORDER BY a;\n"
    )
    result = invoke("validate", str(job))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {job}:4:26: ORDER BY is not supported yet (at 'a') — see docs/sql.md for "
        "what kstream compiles"
    )


def test_validate_needs_no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """validate is static: it never contacts Kafka, even with a bogus bootstrap configured."""
    monkeypatch.setenv("KSTREAM_BOOTSTRAP_SERVERS", "256.0.0.1:1")
    assert invoke("validate", str(HOURLY)).exit_code == 0


def test_plan_hourly_offline(offline: str) -> None:
    result = invoke("plan", str(HOURLY), "--bootstrap-servers", offline, "--output", "table")
    assert result.exit_code == 0, result.output
    rows = table_rows(result.stdout)
    stages = [r for r in rows if len(r) == 6]
    topics = {r[0]: r[1:] for r in rows if len(r) == 4}
    # Stage "flights" reads the source, filters and repartitions by origin; stage "by-origin"
    # (named after the key_by it reads) windows.
    assert [s[0] for s in stages if s[0]] == ["flights", "by-origin"]
    assert "op.hourly.timers -> flights-hourly.hourly.timers.changelog" in result.stdout
    text = result.stdout
    assert "filter(not-cancelled)" in text
    assert "key_by(by-origin)" in text
    assert "window(hourly)" in text
    assert "op.hourly -> flights-hourly.hourly.changelog" in text
    assert topics["flights"] == ["source (read)", "1", "?"]
    assert topics["flights-hourly.by-origin.repartition"][0] == "repartition (written and read)"
    assert topics["flights-hourly.hourly.changelog"][0] == "changelog (compacted)"
    assert topics["flights-hourly"] == ["sink (written)", "1", "?"]
    assert "broker not reachable: partition counts assumed" in text


def test_plan_late_offline(offline: str) -> None:
    result = invoke("plan", str(LATE), "--bootstrap-servers", offline, "--output", "table")
    assert result.exit_code == 0, result.output
    topics = {r[0]: r[1:] for r in table_rows(result.stdout) if len(r) == 4}
    assert topics["flights-late"][0] == "late data (written)"
    assert topics["flights-late-hourly"][0] == "sink (written)"
    assert topics["flights-late.hourly.changelog"][0] == "changelog (compacted)"
    assert not any(name.endswith(".repartition") for name in topics)


REFS = """\
pipeline: refs
sources:
  - topic: flights
operators:
  - filter: {python: "MOD:keep"}
  - map: {python: "nosuch_refs_mod:shape"}
  - id: w
    window:
      type: tumbling
      size: 1h
      aggregate:
        m: {python: "MOD:Median"}
sinks:
  - topic: out
"""

REFS_MODULE = """\
def keep(value):
    raise AssertionError("validate must not call user code")

class Median:
    def initialize(self):
        return []
"""


def test_validate_imports_python_references(tmp_path: Path) -> None:
    """What ``run`` would reject when it builds its operators, ``validate`` reports first:
    every ``python:`` reference with its line, offline, without calling user code."""
    module = f"kstream_cli_refs_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(REFS_MODULE, encoding="utf-8")
    path = tmp_path / "refs.yaml"
    path.write_text(REFS.replace("MOD", module), encoding="utf-8")
    result = invoke("validate", str(path))
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error: {path}:6: operators[1].map.python: module 'nosuch_refs_mod' not found (also "
        f"searched {tmp_path}) — put nosuch_refs_mod.py in {tmp_path} (the pipeline's folder), "
        "or install the module",
        f"error: {path}:12: operators[2].window.aggregate.m.python: aggregate class "
        f"{module}:Median has no method add(), merge(), result() — a python aggregate is a class "
        "(or a factory returning an object) with initialize(), add(acc, value), merge(acc1, "
        "acc2) and result(acc) (docs/pipeline.md)",
    ]
