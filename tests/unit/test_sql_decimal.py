"""Flink's DECIMAL in SQL jobs: derived precision and scale, exact values, HALF_UP rounding,
NULLs, and the JSON a DECIMAL is written as. Expected values are those Flink 2.2 gives."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import sqlglot

from kstream.errors import ConfigError
from kstream.expr.compiler import compile_expression
from kstream.io.codecs import encoder
from kstream.sql import load_sql_text
from kstream.sql.decimals import SqlDecimal
from kstream.sql.exprs import translate_typed
from kstream.sql.scope import sql_type_kind
from kstream.testing.driver import PipelineDriver

_COLUMNS = {"i": "INT", "b": "BIGINT", "d": "DOUBLE", "m": "DECIMAL(10, 2)"}


def evaluate(sql: str, **record: Any) -> tuple[Any, str | None]:
    """The value of SQL expression ``sql`` over ``record`` (columns of :data:`_COLUMNS`) and
    its type."""

    def column(col: Any) -> tuple[str, str | None]:
        return col.name, sql_type_kind(_COLUMNS[col.name])

    text, kind = translate_typed(sqlglot.parse_one(sql), column)
    return compile_expression(text).fn(record), kind


@pytest.mark.parametrize(
    ("sql", "value", "precision", "scale"),
    [
        ("CAST(1 AS BIGINT) / 60.0", "0.016667", 26, 6),
        ("CAST(100 AS DECIMAL(10, 2)) / 3", "33.3333333333333", 21, 13),
        ("CAST(200 AS DECIMAL(10, 2)) / 3", "66.6666666666667", 21, 13),  # HALF_UP
        ("1 / 8.0", "0.125000", 17, 6),
        ("CAST(1 AS DECIMAL(2, 0)) / 16", "0.06250000000", 13, 11),
        ("1.0 / 0.3", "3.333333", 8, 6),
        ("-2.0 / 3", "-0.666666666667", 13, 12),  # half away from zero below zero too
        ("100.0 * CAST(7 AS BIGINT)", "700.0", 24, 1),
        ("0.1 + 0.2", "0.3", 3, 1),
        ("1.5 - 2", "-0.5", 12, 1),
        ("CAST(1 AS DECIMAL(38, 10)) / 3.0", "0.333333333", 38, 9),  # adjusted to 38 digits
        ("CAST(2.345 AS DECIMAL(10, 2))", "2.35", 10, 2),  # HALF_UP at .5
        ("CAST(-2.345 AS DECIMAL(10, 2))", "-2.35", 10, 2),
        ("CAST(2.344 AS DECIMAL(10, 2))", "2.34", 10, 2),
        ("CAST(7 AS DECIMAL)", "7", 10, 0),
    ],
)
def test_decimal_arithmetic_gives_flinks_value_and_type(
    sql: str, value: str, precision: int, scale: int
) -> None:
    result, kind = evaluate(sql)
    assert isinstance(kind, SqlDecimal)
    assert (kind.precision, kind.scale) == (precision, scale)
    assert isinstance(result, Decimal)
    assert str(result) == value


def test_division_by_a_column_derives_from_the_column_width() -> None:
    """INT(10, 0) / DECIMAL(3, 1) is DECIMAL(17, 6); INT / that is DECIMAL(34, 18)."""
    result, kind = evaluate("i / (i / 60.0)", i=150)
    assert (kind.precision, kind.scale) == (34, 18)  # type: ignore[union-attr]
    assert result == Decimal("60")
    assert evaluate("b / 60.0", b=1)[0] == Decimal("0.016667")


def test_nulls_propagate_and_overflow_is_null() -> None:
    assert evaluate("i / 60.0", i=None)[0] is None
    assert evaluate("CAST(i AS DECIMAL(10, 2)) + 1", i=None)[0] is None
    assert evaluate("CAST(12345.675 AS DECIMAL(4, 2))")[0] is None  # Flink: overflow is NULL
    assert evaluate("COALESCE(CAST(i AS DECIMAL(5, 1)), 0.25)", i=None)[0] == Decimal("0.25")


def test_decimal_meets_double_and_casts() -> None:
    value, kind = evaluate("1.5 * d", d=2.0)
    assert (value, kind) == (3.0, "float")
    assert evaluate("1.5 > d", d=1.25)[0] is True
    assert evaluate("CAST(2.5 AS INT)")[0] == 2  # truncated toward zero
    assert evaluate("CAST(-2.5 AS INT)")[0] == -2
    assert evaluate("CAST(1.25 AS DOUBLE)")[0] == 1.25
    assert evaluate("CAST(0.0000001 AS STRING)")[0] == "0.0000001"  # no exponent
    assert evaluate("CAST(d AS DECIMAL(5, 2))", d=0.125)[0] == Decimal("0.13")
    assert evaluate("m / 2", m=1.5)[0] == Decimal("0.7500000000000")  # a DECIMAL column
    assert evaluate("CASE WHEN i > 1 THEN 1.5 ELSE 2 END", i=0)[0] == 2


def test_a_decimal_is_written_as_a_json_number() -> None:
    encode = encoder("json")
    assert encode({"x": Decimal("33.3333333333333")}) == b'{"x":33.3333333333333}'
    assert encode({"x": Decimal("1E-7"), "y": [Decimal("-0.50")]}) == b'{"x":1E-7,"y":[-0.50]}'


EVENTS = """
CREATE TABLE events (v BIGINT, d DOUBLE)
WITH ('connector' = 'kafka', 'topic' = 'events', 'format' = 'json');
CREATE TABLE out (q DOUBLE, m DECIMAL(10, 2), a DECIMAL(20, 6))
WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
"""


def test_a_job_writes_decimals_as_flink_does() -> None:
    """A DOUBLE column gets the DECIMAL as a float; a DECIMAL(10, 2) column the value rounded
    HALF_UP to 2 digits (Flink's implicit cast on INSERT); NULL stays null."""
    query = "INSERT INTO out SELECT v / 60.0, CAST(v AS DECIMAL(10, 2)) / 3, v / 8.0 FROM events;"
    driver = PipelineDriver(load_sql_text(EVENTS + query, "d.sql"))
    driver.send("events", {"v": 2, "d": 0.5})
    driver.send("events", {"v": None, "d": 0.5})
    raw = [value for _, value, *_ in driver.topics["out"]]
    assert raw == [b'{"q":0.033333,"m":0.67,"a":0.250000}', b'{"q":null,"m":null,"a":null}']


def test_decimals_in_aggregations_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="AVG of a DECIMAL is not supported yet"):
        query = "INSERT INTO out SELECT AVG(v * 1.5), 1, 1 FROM events GROUP BY d;"
        load_sql_text(EVENTS + query, "a.sql")
