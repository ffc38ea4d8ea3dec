"""``kstream sql`` without a broker: the result table, the view of its records, the prompt."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from kstream_cli.main import cli
from kstream_cli.sql_repl import read_statements
from kstream_cli.sql_screen import ResultView
from rich.console import Console

from kstream.errors import ConfigError
from kstream.sql import load_sql_text

DDL = """CREATE TABLE events (k STRING, v BIGINT, at_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(at_ms, 3), WATERMARK FOR ts AS ts
) WITH ('connector' = 'kafka', 'topic' = 'events', 'format' = 'json');
"""


def test_a_bare_select_writes_its_columns_to_the_result_topic() -> None:
    spec = load_sql_text(
        DDL + "SELECT k, v * 2, v * 3 AS v, UPPER(k) AS v, ts FROM events;", "q", "res"
    )
    assert spec.sinks[0].topic == "res"
    fields = dict(spec.operators[-1].fields)
    assert list(fields) == ["k", "EXPR$1", "v", "v0", "ts"]  # Flink's names
    assert fields["ts"] == "sql_timestamp_ltz(at_ms)"  # a timestamp as text, by its own type


def test_select_star_and_updating_queries_need_no_sink_table() -> None:
    star = load_sql_text(DDL + "SELECT * FROM events WHERE v > 1;", "q", "res")
    assert list(dict(star.operators[-1].fields)) == ["k", "v", "at_ms", "ts"]
    grouped = load_sql_text(DDL + "SELECT k, COUNT(*) AS n FROM events GROUP BY k;", "q", "res")
    assert grouped.sinks[0].topic == "res"
    with pytest.raises(ConfigError, match="a SELECT without INSERT INTO has nowhere to go"):
        load_sql_text(DDL + "SELECT k FROM events;", "job.sql")


def test_an_updating_result_is_a_table_by_key() -> None:
    view = ResultView(updating=True, max_rows=10)
    assert view.add("a", {"k": "a", "n": 1}) == {"op": "+I", "k": "a", "n": 1}
    assert view.add("b", {"k": "b", "n": 1}) == {"op": "+I", "k": "b", "n": 1}
    assert view.add("a", {"k": "a", "n": 2}) == {"op": "+U", "k": "a", "n": 2}
    assert view.add("b", None) == {"op": "-D", "k": "b", "n": 1}
    assert view.table == {"a": {"k": "a", "n": 2}}
    console = Console(width=80, record=True)
    console.print(view.render("kstream sql · q", "finished"))
    text = console.export_text()
    assert "1 row in the table · finished" in text and "│ a │ 2 │" in text


def test_an_updating_result_keyed_by_several_columns() -> None:
    """A Top-N's or a multi-column GROUP BY's record key decodes as a JSON list."""
    view = ResultView(updating=True, max_rows=10)
    assert view.add(["EWR", 1], {"origin": "EWR", "rn": 1})["op"] == "+I"
    assert view.add(["EWR", 1], {"origin": "EWR", "rn": 1, "n": 2})["op"] == "+U"
    assert view.add(["EWR", 2], None) == {"op": "-D"}
    assert list(view.table) == [("EWR", 1)]


def test_an_append_result_keeps_the_latest_rows() -> None:
    view = ResultView(updating=False, max_rows=2)
    for n in range(5):
        view.add(None, {"n": n})
    assert [r["n"] for r in view.rows] == [3, 4]
    console = Console(width=80, record=True)
    console.print(view.render("q", "running (Ctrl-C stops)"))
    assert "5 rows (showing the last 2)" in console.export_text()


def test_the_prompt_reads_statements_up_to_their_semicolon() -> None:
    typed = (
        "CREATE TABLE t (a INT)\n  WITH ('connector' = 'kafka');\nSELECT a\nFROM t;\nquit;\n"
        "SELECT 1;\n"
    )
    assert list(read_statements(io.StringIO(typed))) == [
        "CREATE TABLE t (a INT)\n  WITH ('connector' = 'kafka')",
        "SELECT a\nFROM t",
    ]


TABLES = Path(__file__).resolve().parents[2] / "examples" / "flights-tables.sql"


@pytest.mark.parametrize(
    "query",
    [
        "SELECT origin, COUNT(*) AS flights FROM flights GROUP BY origin",
        "SELECT f.carrier, w.temp FROM flights f JOIN weather w ON f.origin = w.origin "
        "AND w.ts BETWEEN f.ts - INTERVAL '30' MINUTE AND f.ts",
        "SELECT tailnum, manufacturer FROM planes WHERE seats > 300",
    ],
)
def test_the_tables_example_serves_the_shell(query: str) -> None:
    spec = load_sql_text(TABLES.read_text() + query + ";", "<kstream sql>", "res")
    assert spec.sinks[0].topic == "res"


def test_the_shell_refuses_a_job_script(tmp_path: Path) -> None:
    job = Path(__file__).resolve().parents[2] / "examples" / "flights-hourly.sql"
    result = CliRunner().invoke(cli, ["sql", str(job), "-e", "SELECT 1"], obj={})
    assert result.exit_code == 2
    assert "has INSERT INTO statements: kstream sql takes the CREATE TABLE" in result.output
