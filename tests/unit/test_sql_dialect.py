"""The Flink SQL dialect: what sqlglot alone does not parse, and errors at file:line:col."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp

from kstream.errors import ConfigError
from kstream.sql.dialect import Flink, MetadataColumn, TableArgument
from kstream.sql.script import parse_script

DDL = """CREATE TABLE flights (
  origin STRING,
  sched_dep_ts BIGINT,
  ts AS TO_TIMESTAMP_LTZ(sched_dep_ts, 3),
  kts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  `partition` INT METADATA VIRTUAL,
  WATERMARK FOR ts AS ts - INTERVAL '5' SECOND,
  PRIMARY KEY (origin) NOT ENFORCED
) WITH ('connector' = 'kafka', 'topic' = 'flights', 'format' = 'json')"""


def parse(text: str) -> exp.Expression:
    tree = sqlglot.parse_one(text, read=Flink)
    assert tree is not None
    return tree


def test_create_table_with_watermark_computed_and_metadata_columns() -> None:
    schema = parse(DDL).this
    items = {type(i).__name__: i for i in schema.expressions}
    watermark = items["WatermarkColumnConstraint"]
    assert watermark.this.name == "ts"
    assert isinstance(watermark.expression, exp.Sub)
    columns = {c.name: c for c in schema.expressions if isinstance(c, exp.ColumnDef)}
    computed = columns["ts"].args["constraints"][0].args["kind"]
    assert isinstance(computed, exp.ComputedColumnConstraint)
    kts = columns["kts"].args["constraints"][0].args["kind"]
    assert isinstance(kts, MetadataColumn)
    assert (kts.this.name, kts.args["virtual"]) == ("timestamp", True)
    part = columns["partition"].args["constraints"][0].args["kind"]
    assert part.this is None  # METADATA without FROM: the column's own name
    assert isinstance(items["PrimaryKey"], exp.PrimaryKey)


def window_call(text: str) -> exp.Anonymous:
    outer = parse(text).args["from_"].this.this
    call = outer.expressions[0]
    assert isinstance(call, exp.Anonymous)
    return call


def test_window_tvf_takes_a_table_argument_and_a_descriptor() -> None:
    call = window_call(
        "SELECT * FROM TABLE(TUMBLE(TABLE flights, DESCRIPTOR(ts), INTERVAL '1' HOUR))"
    )
    assert str(call.this).upper() == "TUMBLE"
    table, descriptor, size = call.expressions
    assert isinstance(table, TableArgument) and table.this.name == "flights"
    assert str(descriptor.this).upper() == "DESCRIPTOR"
    assert isinstance(size, exp.Interval)


@pytest.mark.parametrize(
    ("keys", "expected"), [("origin", ["origin"]), ("(origin, dest)", ["origin", "dest"])]
)
def test_session_partition_by(keys: str, expected: list[str]) -> None:
    call = window_call(
        f"SELECT * FROM TABLE(SESSION(TABLE flights PARTITION BY {keys}, "
        "DESCRIPTOR(ts), INTERVAL '5' MINUTE))"
    )
    table = call.expressions[0]
    assert [k.name for k in table.args["partition_by"]] == expected


def test_named_window_arguments() -> None:
    call = window_call(
        "SELECT * FROM TABLE(HOP(DATA => TABLE flights, TIMECOL => DESCRIPTOR(ts), "
        "SLIDE => INTERVAL '5' MINUTE, SIZE => INTERVAL '10' MINUTE))"
    )
    names = [k.this.name for k in call.expressions]
    assert names == ["DATA", "TIMECOL", "SLIDE", "SIZE"]
    assert isinstance(call.expressions[0].expression, TableArgument)


def test_cast_is_strict_and_temporal_join_parses() -> None:
    assert isinstance(parse("SELECT CAST(a AS DOUBLE) FROM t").expressions[0], exp.Cast)
    join = parse("SELECT * FROM a JOIN b FOR SYSTEM_TIME AS OF a.ts ON a.k = b.k")
    assert join.args["joins"][0].this.args["version"] is not None


def test_statement_set_is_unwrapped() -> None:
    script = parse_script(
        "EXECUTE STATEMENT SET BEGIN\nINSERT INTO a SELECT 1;\nINSERT INTO b SELECT 2;\nEND;",
        "set.sql",
    )
    assert [type(s).__name__ for s in script.statements] == ["Insert", "Insert"]


def test_syntax_error_names_file_line_column_and_text() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_script("CREATE TABLE t (\n  a INT,\n  WATERMARK ts AS ts\n) WITH ()", "job.sql")
    text = str(caught.value)
    assert text.startswith("job.sql:3:")
    assert "syntax error" in text and "(at 'ts')" in text


def test_empty_script_is_an_error() -> None:
    with pytest.raises(ConfigError, match="no statements"):
        parse_script("-- nothing\n", "empty.sql")
