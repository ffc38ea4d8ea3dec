"""``kstream validate`` and ``kstream plan`` on pipelines with a ``flat_map``, without a broker."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result
from kstream_cli.main import cli

from kstream.tools.process import free_port

PIPELINE = """\
pipeline: reasons
sources:
  - topic: flights
    event_time: sched_dep_ts
operators:
  - id: per-reason
    flat_map: {explode: delay_reasons, as: reason}
  - id: by-reason
    key_by: reason
  - id: hourly
    window: {type: tumbling, size: 1h, aggregate: {n: count}}
sinks:
  - topic: reasons-hourly
"""


def invoke(*args: str) -> Result:
    return CliRunner(env={"COLUMNS": "250"}).invoke(cli, list(args), obj={})


def test_validate_and_plan_show_the_flat_map(tmp_path: Path) -> None:
    path = tmp_path / "reasons.yaml"
    path.write_text(PIPELINE)
    result = invoke("validate", str(path))
    assert result.exit_code == 0, result.output
    assert "pipeline 'reasons', 3 operators, 2 stage(s), 1 sink(s)" in result.stdout
    result = invoke(
        "plan", str(path), "--bootstrap-servers", f"127.0.0.1:{free_port()}", "--output", "table"
    )
    assert result.exit_code == 0, result.output
    assert "flat_map(per-reason) -> key_by(by-reason)" in result.stdout


def test_validate_reports_every_flat_map_mistake_with_file_and_line(tmp_path: Path) -> None:
    text = PIPELINE.replace(
        "flat_map: {explode: delay_reasons, as: reason}",
        "flat_map: {explode: delay_reasons, python: 'udfs:split'}\n"
        "  - flat_map: {explode: delay_reasons, as: a.b, keep_emtpy: true}",
    )
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = invoke("validate", str(path))
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {path}:7: operators[0].flat_map.explode: 'python' and 'explode' cannot be "
        "combined — write flat_map: {python: module:function} or flat_map: "
        "{explode: <expression>, as: <field>}",
        f"error: {path}:8: operators[1].flat_map.keep_emtpy: unknown key 'keep_emtpy' — "
        "did you mean 'keep_empty'?",
        f"error: {path}:8: operators[1].flat_map.as: 'a.b' is a nested path; 'as' names a "
        "top-level field — write one top-level field name, e.g. 'as: reason'",
    ]
