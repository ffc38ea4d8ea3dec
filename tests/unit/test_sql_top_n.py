"""Flink SQL's window Top-N run in memory: the first N rows of each window by the order, once
the window ends, ties in the order kept in arrival order (each expected row is Flink's)."""

from __future__ import annotations

from typing import Any

import pytest

from kstream.errors import ConfigError
from kstream.expr.sql_rank import RANK_FIELD, SQL_RANK_FUNCTIONS
from kstream.sql import load_sql_text
from kstream.testing.driver import PipelineDriver

TABLES = """CREATE TABLE sales (
  shop STRING, item STRING, amount BIGINT, at_ms BIGINT,
  ts AS TO_TIMESTAMP_LTZ(at_ms, 3),
  WATERMARK FOR ts AS ts - INTERVAL '1' SECOND
) WITH ('connector' = 'kafka', 'topic' = 'sales', 'format' = 'json');
CREATE TABLE out (window_start TIMESTAMP(3), rn BIGINT, item STRING, total BIGINT)
WITH ('connector' = 'kafka', 'topic' = 'out', 'format' = 'json');
"""
TOP_2 = """INSERT INTO out SELECT window_start, rn, item, total FROM (
  SELECT *, ROW_NUMBER() OVER (
      PARTITION BY window_start, window_end ORDER BY total DESC, item ASC) AS rn
  FROM (
    SELECT window_start, window_end, item, SUM(amount) AS total
    FROM TABLE({tvf})
    GROUP BY window_start, window_end, item
  )
) WHERE rn <= 2;"""
TUMBLE = "TUMBLE(TABLE sales, DESCRIPTOR(ts), INTERVAL '10' SECOND)"
#: sales, seconds:  0    1    2    3    9   |  12   15
#:                  a:5  b:7  c:2  a:3  c:6 |  b:1  a:1
#:  window [0, 10): a 8, b 7, c 8 -> a (8, before c by item), c (8); b is third
#:  window [10, 20): a 1, b 1 -> a, b (tie broken by item ASC)
SALES = [
    ("a", 5, 0),
    ("b", 7, 1),
    ("c", 2, 2),
    ("a", 3, 3),
    ("c", 6, 9),
    ("b", 1, 12),
    ("a", 1, 15),
]


def send_sales(driver: PipelineDriver, sales: list[tuple[str, int, int]]) -> None:
    """Send ``(item, amount, second)`` sales of shop ``s``."""
    for item, amount, second in sales:
        driver.send("sales", {"shop": "s", "item": item, "amount": amount, "at_ms": second * 1000})


def top(query: str, sales: list[tuple[str, int, int]]) -> list[tuple[Any, ...]]:
    driver = PipelineDriver(load_sql_text(TABLES + query, "top.sql"))
    send_sales(driver, sales)
    driver.end_of_input()
    rows = [r.value for r in driver.output("out")]
    return sorted((r["window_start"], r["rn"], r["item"], r["total"]) for r in rows)


def test_window_top_n_ranks_each_tumbling_window_once() -> None:
    assert top(TOP_2.format(tvf=TUMBLE), SALES) == [
        ("1970-01-01 00:00:00", 1, "a", 8),
        ("1970-01-01 00:00:00", 2, "c", 8),
        ("1970-01-01 00:00:10", 1, "a", 1),
        ("1970-01-01 00:00:10", 2, "b", 1),
    ]


def test_window_top_n_over_hop_ranks_each_hop_window() -> None:
    hop = "HOP(TABLE sales, DESCRIPTOR(ts), INTERVAL '5' SECOND, INTERVAL '10' SECOND)"
    got = top(TOP_2.format(tvf=hop), SALES)
    #: [-5, 5): a 8, b 7, c 2 | [0, 10): a 8, c 8 | [5, 15): c 6, b 1 | [10, 20): a 1, b 1
    #: [15, 25): a 1
    assert got == [
        ("1969-12-31 23:59:55", 1, "a", 8),
        ("1969-12-31 23:59:55", 2, "b", 7),
        ("1970-01-01 00:00:00", 1, "a", 8),
        ("1970-01-01 00:00:00", 2, "c", 8),
        ("1970-01-01 00:00:05", 1, "c", 6),
        ("1970-01-01 00:00:05", 2, "b", 1),
        ("1970-01-01 00:00:10", 1, "a", 1),
        ("1970-01-01 00:00:10", 2, "b", 1),
        ("1970-01-01 00:00:15", 1, "a", 1),
    ]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            TOP_2.format(tvf="SESSION(TABLE sales PARTITION BY item, DESCRIPTOR(ts), "
                         "INTERVAL '5' SECOND)"),
            "Top-N is supported over a TUMBLE, HOP or CUMULATE aggregation",
        ),
        (
            TOP_2.format(tvf=TUMBLE).replace("PARTITION BY window_start, window_end",
                                             "PARTITION BY item"),
            "window Top-N needs PARTITION BY window_start, window_end",
        ),
        (
            TOP_2.format(tvf=TUMBLE).replace("WHERE rn <= 2", "WHERE rn = 2"),
            "a rank query needs WHERE rn <= N",
        ),
    ],
)  # fmt: skip
def test_window_top_n_refusals_name_the_construct(query: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_sql_text(TABLES + query, "top.sql")


def test_sql_top_n_orders_nulls_and_keeps_arrival_order_of_ties() -> None:
    top_n = SQL_RANK_FUNCTIONS["sql_top_n"][0]
    rows = [{"v": 1, "i": 0}, {"v": None, "i": 1}, {"v": 3, "i": 2}, {"v": 1, "i": 3}]
    asc = top_n(rows, 4, "v ASC NULLS FIRST")
    assert [r["i"] for r in asc] == [1, 0, 3, 2]
    assert [r[RANK_FIELD] for r in asc] == [1, 2, 3, 4]
    desc = top_n(rows, 3, "v DESC NULLS LAST")
    assert [r["i"] for r in desc] == [2, 0, 3]
    with pytest.raises(ValueError, match=r"is not .field \[ASC\|DESC\]"):
        top_n(rows, 1, "v DOWN")


UPDATING = """CREATE TABLE best (shop STRING, rn BIGINT, item STRING, total BIGINT,
  PRIMARY KEY (shop, rn) NOT ENFORCED
) WITH ('connector' = 'upsert-kafka', 'topic' = 'best', 'key.format' = 'json',
        'value.format' = 'json');
INSERT INTO best SELECT shop, rn, item, total FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY shop ORDER BY total DESC, item) AS rn
  FROM (SELECT shop, item, SUM(amount) AS total FROM sales GROUP BY shop, item)
) WHERE rn <= 2;"""


#: the keys of shop s's ranks: a JSON object of the PRIMARY KEY (shop, rn), as Flink writes it
S1, S2 = {"shop": "s", "rn": 1}, {"shop": "s", "rn": 2}


def test_top_n_over_a_group_by_emits_the_ranks_that_change() -> None:
    driver = PipelineDriver(load_sql_text(TABLES + UPDATING, "top.sql"))
    #: shop s: a 5 | b 7 | c 2 | a 8 | c 8 -> ranks after each:
    #:   [a5] [b7 a5] [b7 a5] [a8 b7] [a8 c8]
    send_sales(driver, SALES[:5])
    driver.end_of_input()
    changes = [(r.key, r.value["item"], r.value["total"]) for r in driver.output("best")]
    assert changes == [
        (S1, "a", 5),
        (S1, "b", 7),
        (S2, "a", 5),
        (S1, "a", 8),
        (S2, "b", 7),
        (S2, "c", 8),
    ]
    final = {key["rn"]: (value["item"], value["total"]) for key, value in
             ((r.key, r.value) for r in driver.output("best"))}  # fmt: skip
    assert final == {1: ("a", 8), 2: ("c", 8)}


ROWS = """CREATE TABLE big (shop STRING, rn BIGINT, item STRING, amount BIGINT,
  PRIMARY KEY (shop, rn) NOT ENFORCED
) WITH ('connector' = 'upsert-kafka', 'topic' = 'big', 'key.format' = 'json',
        'value.format' = 'json');
INSERT INTO big SELECT shop, rn, item, amount FROM (
  SELECT *, ROW_NUMBER() OVER (PARTITION BY shop ORDER BY amount DESC, item) AS rn
  FROM sales WHERE amount > 1
) WHERE rn <= 2;"""


def test_top_n_over_a_tables_rows_keeps_the_largest_rows() -> None:
    """Each sale is a row of its own (Flink's append-only Top-N); the 2 largest per shop::

    sale:   a 5   b 7   c 2   a 3   c 6   b 1 (filtered out)
    rank 1: a5    b7    .     .     .
    rank 2: .     a5    .     .     c6
    """
    driver = PipelineDriver(load_sql_text(TABLES + ROWS, "top.sql"))
    send_sales(driver, SALES[:6])
    changes = [(r.key, r.value["item"], r.value["amount"]) for r in driver.output("big")]
    assert changes == [
        (S1, "a", 5),
        (S1, "b", 7),
        (S2, "a", 5),
        (S2, "c", 6),
    ]
