"""Tests for kstream.expr: the safe expression language and the python escape hatch."""

from __future__ import annotations

import dataclasses
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from kstream.errors import ExpressionError, KStreamError
from kstream.expr.compiler import compile_expression
from kstream.expr.expression import Expression, explain_failure
from kstream.expr.udf import load_python_callable

FLIGHT = {
    "dep_delay": 25,
    "arr_delay": -3,
    "origin": "JFK",
    "carrier": "UA",
    "distance": 1400.0,
    "tailnum": None,
    "route": {"src": {"code": "JFK", "tz": -5}, "stops": ["ORD", "DEN"]},
    "field with space": 7,
}


def ev(text: str, record: dict[str, Any] | None = None) -> Any:
    return compile_expression(text).evaluate(FLIGHT if record is None else record)


def compile_error(text: str) -> str:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text)
    return str(info.value)


def eval_error(text: str, record: dict[str, Any], where: str = "") -> str:
    with pytest.raises(ExpressionError) as info:
        compile_expression(text, where=where).evaluate(record)
    return str(info.value)


# --- evaluation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("2 ** 10", 1024),
        ("-dep_delay", -25),
        ("+arr_delay", -3),
        ("dep_delay - arr_delay", 28),
        ("distance / 2", 700.0),
        ("dep_delay * 2", 50),
        ("origin * 2", "JFKJFK"),
        ("origin + '-' + carrier", "JFK-UA"),
        ("2 ** -1", 0.5),
    ],
)
def test_arithmetic(text: str, expected: Any) -> None:
    assert ev(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("dep_delay > 10", True),
        ("dep_delay >= 25 and dep_delay <= 25", True),
        ("0 < dep_delay < 30", True),
        ("0 < dep_delay < 20", False),
        ("origin == 'JFK'", True),
        ('origin != "JFK"', False),
        ("carrier in ['UA', 'AA']", True),
        ("carrier in ('DL',)", False),
        ("carrier not in ['DL']", True),
        ("'F' in origin", True),
        ("tailnum is None", True),
        ("tailnum is not None", False),
        ("tailnum == None", True),
        ("tailnum == null", True),
        ("origin != None", True),
        ("None is tailnum", True),
        ("not dep_delay > 10", False),
        ("dep_delay > 100 or origin == 'JFK'", True),
        ("tailnum is None or tailnum > 3", True),  # short-circuit: no null comparison
        ("true and not false", True),
        ("null", None),
        ("True if dep_delay > 10 else False", True),
        ("'late' if dep_delay > 60 else 'ok'", "ok"),
    ],
)
def test_comparisons_and_logic(text: str, expected: Any) -> None:
    assert ev(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("route.src.code", "JFK"),
        ("route['src']['tz']", -5),
        ("route.stops[0]", "ORD"),
        ("route.stops[-1]", "DEN"),
        ("route.stops[0:1]", ["ORD"]),
        ("len(route.stops)", 2),
        ("record['field with space'] + 1", 8),
        ("record.origin", "JFK"),
        ("record['route'].src.code", "JFK"),
        ("'tailnum' in record", True),
        ("'missing' in record", False),
        ("record['missing'] if 'missing' in record else 0", 0),
        ("[dep_delay, arr_delay]", [25, -3]),
        ("(origin, carrier)", ("JFK", "UA")),
    ],
)
def test_fields_nested_and_subscripts(text: str, expected: Any) -> None:
    assert ev(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("abs(arr_delay)", 3),
        ("round(2.567, 2)", 2.57),
        ("round(2.5)", 2),
        ("min(dep_delay, arr_delay)", -3),
        ("max(route.stops)", "ORD"),
        ("len(origin)", 3),
        ("str(dep_delay)", "25"),
        ("int('42')", 42),
        ("int('ff', 16)", 255),
        ("float('1.5')", 1.5),
        ("bool(0)", False),
        ("lower(origin)", "jfk"),
        ("upper('abc')", "ABC"),
        ("strip('  x ')", "x"),
        ("lower(tailnum)", None),
        ("concat(origin, '-', dep_delay)", "JFK-25"),
        ("concat(origin, tailnum)", None),  # SQL CONCAT: a null argument gives null
        ("concat()", ""),
        ("coalesce(tailnum, 'unknown')", "unknown"),
        ("coalesce(tailnum, null)", None),
        ("floor(2.7)", 2),
        ("ceil(2.1)", 3),
        ("startswith(origin, 'JF')", True),
        ("endswith(origin, 'X')", False),
        ("startswith(tailnum, 'N')", None),
        ("contains(origin, 'FK')", True),
        ("contains(tailnum, 'FK')", None),
        ("substr(origin, 1)", "FK"),
        ("substr(origin, 0, 2)", "JF"),
        ("substr(tailnum, 0, 2)", None),
    ],
)
def test_functions(text: str, expected: Any) -> None:
    assert ev(text) == expected


def test_multiline_expression_and_comments() -> None:
    expr = compile_expression("dep_delay > 10\n  and origin == 'JFK'  # late from JFK\n")
    assert expr.evaluate(FLIGHT) is True


def test_expression_object() -> None:
    expr = compile_expression("  dep_delay > 10 and route.src.code == record['origin']  ")
    assert isinstance(expr, Expression)
    assert expr.text == "dep_delay > 10 and route.src.code == record['origin']"
    assert expr.fields == frozenset({"dep_delay", "route", "origin"})
    assert compile_expression("record[k]").fields == frozenset({"k"})
    assert compile_expression("a[b.c]").fields == frozenset({"a", "b"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        expr.text = "x"  # type: ignore[misc]


def test_field_names_that_shadow_functions_and_aliases_are_fields() -> None:
    assert ev("lower + 1", {"lower": 1}) == 2
    assert ev("lower(upper)", {"upper": "ABC"}) == "abc"
    assert ev("record['true']", {"true": 5}) == 5


def test_compiled_callable_is_a_plain_lambda() -> None:
    fn = compile_expression("latency_ms > 100").fn
    assert fn({"latency_ms": 101}) is True
    assert fn.__code__.co_names == ()  # no global or attribute lookups at all
    assert fn.__globals__["__builtins__"] == {}


def test_raw_callable_raises_plain_exceptions() -> None:
    expr = compile_expression("dep_delay > 10")
    with pytest.raises(KeyError):
        expr.fn({})
    with pytest.raises(TypeError):
        expr.fn({"dep_delay": "late"})
    assert expr.fn({"dep_delay": None}) is None  # a null operand is not an error


# --- run-time errors ----------------------------------------------------------------------


def test_missing_field_message() -> None:
    msg = eval_error("dep_delay > 10", {})
    assert msg == "expression 'dep_delay > 10': field 'dep_delay' is missing from the record"


def test_missing_nested_field_message() -> None:
    msg = eval_error("route.src.code == 'JFK'", {"route": {"src": {}}})
    assert msg.endswith("field 'route.src.code' is missing from the record")
    msg = eval_error("record['a b'] > 1", {})
    assert "field \"record['a b']\" is missing" in msg


def test_null_operands_give_null_not_errors() -> None:
    # was an error before SQL null semantics (issue 12); tests/unit/test_expr_nulls.py has more
    assert ev("dep_delay > 10", {"dep_delay": None}) is None
    assert ev("a + 1", {"a": None}) is None
    assert ev("-a", {"a": None}) is None
    assert ev("x.y * 2", {"x": {"y": None}}) is None
    assert ev("a < b", {"a": None, "b": None}) is None
    assert ev("len(s)", {"s": None}) is None


def test_null_index_is_still_explained() -> None:
    msg = eval_error("a[i]", {"a": [1], "i": None})
    assert "a null (None) value cannot be used here (list indices" in msg


def test_null_intermediate_and_wrong_type_lookups() -> None:
    assert "field 'a.b' is null (None), cannot look up 'c'" in eval_error(
        "a.b.c", {"a": {"b": None}}
    )
    assert "field 'a' is a str, cannot look up 'b'" in eval_error("a.b", {"a": "x"})
    assert "index 5 is out of range for field 'a' (length 1)" in eval_error("a[5]", {"a": [1]})


@pytest.mark.parametrize("text", ["a / b", "a // b", "a % b", "1.0 / b"])
def test_division_by_zero(text: str) -> None:
    assert eval_error(text, {"a": 1, "b": 0}) == f"expression {text!r}: division by zero"


def test_type_mismatch_messages() -> None:
    assert eval_error("a > 1", {"a": "x"}).endswith("cannot compare str with int ('>')")
    assert "cannot apply '-' to str and int" in eval_error("a - 1", {"a": "x"})
    assert "use concat(a, b)" in eval_error("a + 1", {"a": "x"})
    assert "ValueError: invalid literal for int()" in eval_error("int(a)", {"a": "x"})


def test_runtime_limits() -> None:
    assert ev("2 ** n", {"n": 1000}) == 2**1000
    assert "exponent 1001 is too large" in eval_error("2 ** n", {"n": 1001})
    assert "too large" in eval_error("n ** 1000", {"n": 10**200})
    assert "beyond 1000000 items" in eval_error("s * n", {"s": "ab", "n": 10**9})
    assert "beyond 1000000 items" in eval_error("'-' * 10 ** 9", {})
    assert "out of range" in eval_error("round(x, n)", {"x": 5, "n": -(10**8)})
    assert "beyond 1000000 items" in eval_error("b * n", {"b": b"ab", "n": 10**9})
    assert ev("n * s", {"s": "ab", "n": 2}) == "abab"
    assert ev("n % 60", {"n": 125}) == 5
    assert "string formatting is not supported" in eval_error("f % n", {"f": "%9d", "n": 1})


def test_where_prefix_record_not_dict_and_cause() -> None:
    expr = compile_expression("a > 1", where="operators[2].filter")
    with pytest.raises(ExpressionError) as info:
        expr.evaluate({})
    assert str(info.value).startswith("operators[2].filter: expression 'a > 1': ")
    assert isinstance(info.value.__cause__, KeyError)
    assert isinstance(info.value, KStreamError)
    assert "the record is a NoneType" in eval_error("a", None)  # type: ignore[arg-type]


def test_explain_failure_for_hot_loops() -> None:
    expr = compile_expression("dep_delay / n")
    record = {"dep_delay": 3, "n": 0}
    try:
        expr.fn(record)
    except Exception as exc:
        err = explain_failure(expr, record, exc)
    assert isinstance(err, ExpressionError)
    assert str(err) == "expression 'dep_delay / n': division by zero"


# --- compile-time errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("__import__('os')", "function '__import__' is not allowed; allowed functions: abs,"),
        ("open('x')", "function 'open' is not allowed; allowed functions:"),
        ("eval('1')", "function 'eval' is not allowed"),
        ("getattr(a, 'b')", "function 'getattr' is not allowed"),
        ("hash(a)", "function 'hash' is not allowed"),
        ("().__class__", "attribute access '.__class__' is only allowed on record fields"),
        ("'abc'.upper", "attribute access '.upper' is only allowed on record fields"),
        ("(1).real", "attribute access '.real' is only allowed on record fields"),
        ("lower(a).b", "attribute access '.b' is only allowed on record fields"),
        ("true.x", "attribute access '.x' is only allowed on record fields"),
        ("a.lower()", "only the built-in functions can be called"),
        ("a.__class__", "name '__class__' is not allowed"),
        ("__builtins__", "name '__builtins__' is not allowed"),
        ("record.__dict__", "name '__dict__' is not allowed"),
        ("lambda: 1", "lambda is not allowed; use 'python: module:function'"),
        ("[x for x in a]", "comprehensions are not allowed"),
        ("{x for x in a}", "comprehensions are not allowed"),
        ("{k: 1 for k in a}", "comprehensions are not allowed"),
        ("any(x for x in a)", "function 'any' is not allowed"),
        ("(x := 1)", "assignment (:=) is not allowed"),
        ("f'{a}'", "f-strings are not allowed; use concat("),
        ("min(*a)", "starred arguments (*x) are not allowed"),
        ("[*a]", "starred arguments (*x) are not allowed"),
        ("round(a, ndigits=2)", "keyword arguments are not allowed in round()"),
        ("{'a': 1}", "dict literals are not allowed"),
        ("{1, 2}", "set literals are not allowed"),
        ("a & b", "operator '&' is not allowed"),
        ("a << 2", "operator '<<' is not allowed"),
        ("~a", "operator '~' is not allowed"),
        ("a is 1", "'is' only compares with None"),
        ("'%d' % a", "'%' string formatting is not allowed; use concat("),
        ("1j", "literal 1j is not allowed"),
        ("b'x'", "literal b'x' is not allowed"),
        ("lower(a, b)", "lower() takes 1 argument(s), got 2"),
        ("substr(a)", "substr() takes 2-3 argument(s), got 1"),
        ("coalesce()", "coalesce() takes at least 1 argument(s), got 0"),
        ("a[0](1)", "only the built-in functions can be called"),
    ],
)
def test_forbidden_constructs(text: str, fragment: str) -> None:
    msg = compile_error(text)
    assert msg.startswith(f"expression {text!r}, column ")
    assert fragment in msg


def test_compile_error_column_and_where() -> None:
    msg = compile_error("a + open('x')")
    assert msg.startswith("expression \"a + open('x')\", column 5: function 'open'")
    with pytest.raises(ExpressionError, match=r"^operators\[0\]\.map\.y: expression"):
        compile_expression("open(1)", where="operators[0].map.y")


def test_syntax_errors_give_the_column() -> None:
    assert compile_error("a > > 1") == "expression 'a > > 1', column 5: invalid syntax"
    assert compile_error("a >").startswith("expression 'a >', column 4: ")
    assert "was never closed" in compile_error("(a")
    assert compile_error("a > 1\n  and > 2").startswith("expression 'a > 1\\n  and > 2', line 2,")


@pytest.mark.parametrize("text", ["", "   ", None, 5])
def test_empty_or_non_string(text: Any) -> None:
    with pytest.raises(ExpressionError, match="non-empty text"):
        compile_expression(text)


def test_deep_nesting_is_refused_not_crashing() -> None:
    with pytest.raises(ExpressionError):
        compile_expression("(" * 5000 + "1" + ")" * 5000)


# --- python escape hatch ------------------------------------------------------------------


@pytest.fixture
def udf_dir(tmp_path: Path) -> Path:
    (tmp_path / "kstream_test_udfs.py").write_text(
        textwrap.dedent(
            """
            def enrich(record):
                return {**record, "enriched": True}

            class Scaler:
                def __init__(self, factor=2):
                    self.factor = factor

                @staticmethod
                def double(x):
                    return 2 * x

            NOT_CALLABLE = 42
            """
        )
    )
    (tmp_path / "kstream_test_broken.py").write_text("raise RuntimeError('boom')\n")
    (tmp_path / "kstream_test_needs_dep.py").write_text("import kstream_no_such_dep_xyz\n")
    return tmp_path


def test_load_function_class_and_dotted_attribute(udf_dir: Path) -> None:
    before = list(sys.path)
    fn = load_python_callable("kstream_test_udfs:enrich", search_paths=[str(udf_dir)])
    assert fn({"a": 1}) == {"a": 1, "enriched": True}
    assert sys.path == before  # the search path was only added during the import
    cls = load_python_callable("kstream_test_udfs:Scaler", search_paths=[str(udf_dir)])
    assert cls(3).factor == 3
    double = load_python_callable(" kstream_test_udfs:Scaler.double ")
    assert double(4) == 8


@pytest.mark.parametrize("ref", ["enrich", "a:b:c", "mod:", ":fn", "mod:1fn", "a b:c", ""])
def test_load_bad_form(ref: str) -> None:
    with pytest.raises(ExpressionError, match="is not of the form 'module:function'"):
        load_python_callable(ref)


def test_load_errors(udf_dir: Path) -> None:
    paths = [str(udf_dir)]
    with pytest.raises(ExpressionError, match="module 'kstream_nope_mod' not found"):
        load_python_callable("kstream_nope_mod:f", search_paths=paths)
    with pytest.raises(ExpressionError, match="has no attribute 'missing'"):
        load_python_callable("kstream_test_udfs:missing", search_paths=paths)
    with pytest.raises(ExpressionError, match="is a int, not callable"):
        load_python_callable("kstream_test_udfs:NOT_CALLABLE", search_paths=paths)
    with pytest.raises(ExpressionError, match="importing 'kstream_test_broken' failed: Runtime"):
        load_python_callable("kstream_test_broken:f", search_paths=paths)
    with pytest.raises(ExpressionError, match="kstream_no_such_dep_xyz"):
        load_python_callable("kstream_test_needs_dep:f", search_paths=paths)


def test_python_keyword_field_names_need_brackets() -> None:
    assert ev("route['from'].code", {"route": {"from": {"code": "JFK"}}}) == "JFK"
    assert "invalid syntax" in compile_error("route.from.code")
