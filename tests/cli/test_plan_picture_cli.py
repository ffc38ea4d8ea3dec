"""``kstream plan --output text|mermaid|dot|svg``: the job graph as a picture, without a broker;
``svg`` through Graphviz's ``dot``, and the one-line error when it is missing or fails."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from kstream_cli.main import cli
from kstream_cli.plan_picture import NO_DOT

from kstream.graph.plan import build_plan
from kstream.graph.render import render
from kstream.pipeline.load import load_pipeline

REPO = Path(__file__).resolve().parents[2]
GRAPH = REPO / "examples" / "flights-graph.yaml"
PLANES = REPO / "examples" / "flights-planes.yaml"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), obj={})


@pytest.fixture(autouse=True)
def no_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """A picture never asks a broker: a bogus bootstrap address must not matter (nor delay)."""
    monkeypatch.setenv("KSTREAM_BOOTSTRAP_SERVERS", "256.0.0.1:1")


@pytest.mark.parametrize("output", ["text", "mermaid", "dot"])
def test_plan_prints_the_picture(output: str) -> None:
    result = invoke("plan", str(GRAPH), "--output", output)
    assert result.exit_code == 0, result.output
    assert result.stdout == render(build_plan(load_pipeline(GRAPH)), output)
    assert result.stderr == ""  # no "broker not reachable" note: no broker was asked


def test_plan_text() -> None:
    result = invoke("plan", str(PLANES), "-o", "text")
    assert result.exit_code == 0, result.output
    line = "  with-plane: join lookup (how: left) <- left: departed, right: planes (broadcast)"
    assert f"{line}\n" in result.stdout
    assert result.stdout.endswith("outside the stages\n  planes: broadcast table (key tailnum)\n")


def test_plan_mermaid() -> None:
    result = invoke("plan", str(GRAPH), "-o", "mermaid")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith('flowchart LR\n    subgraph stage_0 ["stage 0 (id ewr)"]\n')
    assert '    op_routed -->|"on-time"| op_by_carrier\n' in result.stdout


def test_plan_dot() -> None:
    result = invoke("plan", str(GRAPH), "-o", "dot")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith('digraph "flights-graph" {\n')
    assert 'subgraph "cluster_stage_1" {' in result.stdout


@pytest.mark.skipif(
    shutil.which("dot") is None,
    reason="Graphviz's dot is not installed (apt-get install graphviz): svg not rendered",
)
def test_plan_svg() -> None:
    result = invoke("plan", str(GRAPH), "--output", "svg")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("<?xml")
    assert "<svg" in result.stdout and result.stdout.rstrip().endswith("</svg>")
    assert "flights&#45;graph.by&#45;carrier.repartition" in result.stdout
    assert result.stderr == ""


def test_plan_svg_without_dot_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH without dot
    result = invoke("plan", str(GRAPH), "--output", "svg")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"error: {NO_DOT}"]
    assert "apt-get install graphviz" in result.stderr


def test_plan_svg_when_dot_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'Error: <stdin>: syntax error in line 3' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    result = invoke("plan", str(GRAPH), "--output", "svg")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: {fake} -Tsvg failed (exit 1): Error: <stdin>: syntax error in line 3"
    ]


def test_plan_refuses_an_unknown_output() -> None:
    result = invoke("plan", str(GRAPH), "--output", "png")
    assert result.exit_code == 2
    assert "'png' is not one of" in result.stderr
