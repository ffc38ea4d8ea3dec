"""The ``flat_map`` operator through the broker-free PipelineDriver: ``explode`` on a field and
on an expression, null and empty lists, ``python`` functions emitting 0, 1 or many records, bad
records under every error policy, and a flat_map feeding a ``key_by`` and a window, checked
against a plain-Python count."""

from __future__ import annotations

import math
import random
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from kstream.pipeline.load import load_pipeline_text
from kstream.runtime.policy import BadRecordFailure
from kstream.testing import OutputRecord, PipelineDriver

TESTS = Path(__file__).resolve().parents[1]  # flat_map_udfs.py lives there
HOUR = 3_600_000
T0 = 1_357_000_000_000


def driver(ops: str, source: str = "", partitions: int = 1) -> PipelineDriver:
    """Source ``in`` (event time ``ts``, bound 1 h, then ``source`` lines) -> ``ops`` -> sink
    ``out``; the pipeline file is placed in ``tests/`` so ``flat_map_udfs`` imports."""
    text = (
        "pipeline: fm\n"
        "sources:\n"
        "  - topic: in\n"
        "    event_time: ts\n"
        "    watermark: {max_out_of_orderness: 1h}\n"
        f"{source}"
        "operators:\n"
        f"{ops}"
        "sinks:\n"
        "  - topic: out\n"
    )
    return PipelineDriver(load_pipeline_text(text, str(TESTS / "fm.yaml")), partitions)


def triples(records: list[OutputRecord], field: str) -> list[tuple[Any, int, Any]]:
    return [(r.key, r.timestamp_ms, r.value[field]) for r in records]


# -- explode ----------------------------------------------------------------------------------


def test_explode_a_list_field_keeps_key_time_and_the_other_fields() -> None:
    d = driver("  - flat_map: {explode: reasons, as: reason}\n")
    d.send("in", {"ts": T0, "flight": 1, "reasons": ["weather", "crew"]}, key="JFK")
    d.send("in", {"ts": T0 + 5, "flight": 2, "reasons": ["late aircraft"]}, key="LGA")
    d.end_of_input()
    out = d.output("out")
    assert triples(out, "reason") == [
        ("JFK", T0, "weather"),
        ("JFK", T0, "crew"),
        ("LGA", T0 + 5, "late aircraft"),
    ]
    assert out[0].value == {
        "ts": T0,
        "flight": 1,
        "reasons": ["weather", "crew"],
        "reason": "weather",
    }


def test_explode_may_replace_the_list_field_itself() -> None:
    d = driver("  - flat_map: {explode: reasons, as: reasons}\n")
    d.send("in", {"ts": T0, "reasons": [{"code": "W"}, {"code": "C"}]}, key="k")
    d.end_of_input()
    assert [r.value for r in d.output("out")] == [
        {"ts": T0, "reasons": {"code": "W"}},
        {"ts": T0, "reasons": {"code": "C"}},
    ]


def test_explode_an_expression() -> None:
    ops = (
        '  - flat_map: {explode: "[origin, dest] if dep_delay > 0 else []", as: airport}\n'
        "  - map: {select: [airport, dep_delay]}\n"
    )
    d = driver(ops)
    d.send("in", {"ts": T0, "origin": "JFK", "dest": "BOS", "dep_delay": 3}, key="a")
    d.send("in", {"ts": T0, "origin": "EWR", "dest": "ORD", "dep_delay": -2}, key="b")
    d.send("in", {"ts": T0, "origin": "LGA", "dest": "ATL", "dep_delay": 1}, key="c")
    d.end_of_input()
    assert [(r.key, r.value) for r in d.output("out")] == [
        ("a", {"airport": "JFK", "dep_delay": 3}),
        ("a", {"airport": "BOS", "dep_delay": 3}),
        ("c", {"airport": "LGA", "dep_delay": 1}),
        ("c", {"airport": "ATL", "dep_delay": 1}),
    ]


def test_null_and_empty_lists_emit_nothing_and_null_elements_are_kept() -> None:
    d = driver("  - flat_map: {explode: xs, as: x}\n")
    for i, xs in enumerate((None, [], [None], (1,))):
        d.send("in", {"ts": T0 + i, "xs": xs}, key="k")
    d.end_of_input()
    assert triples(d.output("out"), "x") == [("k", T0 + 2, None), ("k", T0 + 3, 1)]


def test_keep_empty_emits_a_null_or_empty_list_once_with_the_field_null() -> None:
    d = driver("  - flat_map: {explode: xs, as: x, keep_empty: true}\n")
    for i, xs in enumerate((None, [], ["a", "b"])):
        d.send("in", {"ts": T0 + i, "xs": xs}, key="k")
    d.end_of_input()
    assert triples(d.output("out"), "x") == [
        ("k", T0, None),
        ("k", T0 + 1, None),
        ("k", T0 + 2, "a"),
        ("k", T0 + 2, "b"),
    ]


def test_a_record_that_emits_nothing_still_moves_the_watermark() -> None:
    d = driver("  - flat_map: {explode: xs, as: x}\n")
    d.send("in", {"ts": T0, "xs": []}, key="k")
    assert d.current_watermark("in") == T0 - HOUR - 1


# -- bad records ------------------------------------------------------------------------------

EXPLODE = "  - id: explode-xs\n    flat_map: {explode: xs, as: x}\n"
DLQ = "    on_error: dead_letter\n    dead_letter_topic: dlq\n"


@pytest.mark.parametrize("where", ["source", "operator"])
def test_a_non_list_is_dead_lettered_with_its_original_bytes(where: str) -> None:
    d = driver(EXPLODE + DLQ) if where == "operator" else driver(EXPLODE, source=DLQ)
    bad = orjson.dumps({"ts": T0 + 1, "xs": "weather"})
    d.send("in", {"ts": T0, "xs": [1]}, key="k")
    d.send("in", bad, key="k")
    d.send("in", {"ts": T0 + 2, "xs": [2, 3]}, key="k")
    d.end_of_input()
    assert [r.value["x"] for r in d.output("out")] == [1, 2, 3]
    (letter,) = d.topic("dlq")
    h = letter.headers
    assert (h["kstream.error.stage"], h["kstream.error.class"]) == ("expression", "RecordError")
    assert h["kstream.error.operator"] == "explode-xs"
    assert (h["kstream.source.topic"], h["kstream.source.partition"]) == ("in", "0")
    assert h["kstream.source.offset"] == "1"
    assert h["kstream.error.message"] == (
        "explode-xs.flat_map.explode: expression 'xs' gave str 'weather', expected a list"
    )
    assert d.topics["dlq"][0][:2] == (b"k", bad)  # the original key and value bytes
    assert d.tasks[("in", 0)].counters["dead_letter"] == 1


def test_a_non_list_is_skipped_under_skip() -> None:
    d = driver(EXPLODE + "    on_error: skip\n", source=DLQ)  # the operator's policy wins
    for i, xs in enumerate(([1], 7, {"a": 1}, "s", [2])):
        d.send("in", {"ts": T0 + i, "xs": xs}, key="k")
    d.end_of_input()
    assert [r.value["x"] for r in d.output("out")] == [1, 2]
    assert d.tasks[("in", 0)].counters["skipped"] == 3
    assert d.topic("dlq") == []


def test_a_non_list_stops_the_job_under_fail() -> None:
    d = driver(EXPLODE, source="    on_error: fail\n")
    d.send("in", {"ts": T0, "xs": [1]}, key="k")
    with pytest.raises(BadRecordFailure) as info:
        d.send("in", {"ts": T0 + 1, "xs": 7}, key="k")
    assert str(info.value) == (
        "bad record at in[0]@1 (expression): operator 'explode-xs': "
        "explode-xs.flat_map.explode: expression 'xs' gave int 7, expected a list"
    )
    assert d.tasks[("in", 0)].position == 1  # not past the bad record


def test_a_failing_explode_expression_names_the_field() -> None:
    d = driver(EXPLODE + DLQ)
    d.send("in", {"ts": T0}, key="k")
    (letter,) = d.topic("dlq")
    assert letter.headers["kstream.error.class"] == "KeyError"
    assert "field 'xs' is missing" in letter.headers["kstream.error.message"]


def test_an_error_after_the_flat_map_drops_only_the_failing_outputs() -> None:
    """Each failing output dead-letters the input record once; the input, partly rejected,
    does not move the watermark."""
    ops = EXPLODE + "  - id: inverse\n    map: {fields: {inv: '1 / x'}}\n" + DLQ
    d = driver(ops)
    d.send("in", {"ts": T0, "xs": [4]}, key="k")
    d.send("in", {"ts": T0 + 10 * HOUR, "xs": [1, 0, 2, 0]}, key="k")
    assert d.current_watermark("in") == T0 - HOUR - 1
    d.end_of_input()
    assert [r.value["inv"] for r in d.output("out")] == [0.25, 1.0, 0.5]
    letters = d.topic("dlq")
    assert [r.headers["kstream.error.operator"] for r in letters] == ["inverse", "inverse"]
    assert {r.headers["kstream.source.offset"] for r in letters} == {"1"}
    assert letters[0].value == {"ts": T0 + 10 * HOUR, "xs": [1, 0, 2, 0]}


# -- python -----------------------------------------------------------------------------------

COPIES = "  - id: copies\n    flat_map: {python: 'flat_map_udfs:copies'}\n"


def test_a_python_flat_map_emits_zero_one_or_many_records() -> None:
    d = driver(COPIES)
    for i, n in enumerate((0, 1, 3, 0, 2)):
        d.send("in", {"ts": T0 + i, "n": n}, key=f"k{i}")
    d.end_of_input()
    assert [(r.key, r.timestamp_ms, r.value["i"]) for r in d.output("out")] == [
        ("k1", T0 + 1, 0),
        ("k2", T0 + 2, 0),
        ("k2", T0 + 2, 1),
        ("k2", T0 + 2, 2),
        ("k4", T0 + 4, 0),
        ("k4", T0 + 4, 1),
    ]


def test_a_raising_function_is_a_bad_record_of_the_operator() -> None:
    d = driver(COPIES + DLQ)
    d.send("in", {"ts": T0, "n": 1}, key="k")
    d.send("in", {"ts": T0 + 1, "n": -1}, key="k")
    d.send("in", {"ts": T0 + 2}, key="k")
    d.end_of_input()
    assert len(d.output("out")) == 1
    letters = d.topic("dlq")
    assert [
        (r.headers["kstream.error.class"], r.headers["kstream.source.offset"]) for r in letters
    ] == [
        ("ValueError", "1"),
        ("KeyError", "2"),
    ]
    assert {r.headers["kstream.error.stage"] for r in letters} == {"expression"}
    assert {r.headers["kstream.error.operator"] for r in letters} == {"copies"}
    assert letters[0].headers["kstream.error.message"] == (
        "flat_map flat_map_udfs:copies raised ValueError: negative n: -1"
    )


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("none", "returned null, expected an iterable of records (dicts); return [] to emit"),
        ("int", "returned int 42, expected an iterable of records"),
        ("dict", "returned dict {'a': 1}, expected an iterable of records"),
        ("strings", "returned str 'a' as a record, expected a dict"),
    ],
)
def test_a_function_returning_no_records_of_dicts_is_a_bad_record(kind: str, message: str) -> None:
    ops = (
        "  - id: wrong\n    flat_map: {python: 'flat_map_udfs:wrong_result'}\n    on_error: fail\n"
    )
    d = driver(ops, source=DLQ)
    d.send("in", {"ts": T0, "kind": "ok"}, key="k")
    with pytest.raises(BadRecordFailure) as info:
        d.send("in", {"ts": T0 + 1, "kind": kind}, key="k")
    assert info.value.stage == "expression"
    assert f"operator 'wrong': flat_map flat_map_udfs:wrong_result {message}" in str(info.value)
    assert [r.value for r in d.output("out")] == [{"ts": T0, "kind": "ok"}]


# -- before a key_by and a window -------------------------------------------------------------


def random_flights(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    reasons = ("weather", "crew", "security", "carrier", "nas")
    return [
        {
            "ts": T0 + i * 7 * 60_000,
            "origin": rng.choice(("JFK", "LGA", "EWR")),
            "dep_delay": rng.choice((None, rng.randint(-20, 400))),
            "reasons": rng.choice((None, [], rng.sample(reasons, rng.randint(1, 3)))),
        }
        for i in range(n)
    ]


WINDOW = (
    "  - id: by-key\n    key_by: {key}\n"
    "  - id: hourly\n    window: {{type: tumbling, size: 1h, aggregate: {{n: count}}}}\n"
)


def window_counts(d: PipelineDriver) -> dict[tuple[str, int], int]:
    counts = {(r.value["key"], r.value["window_start"]): r.value["n"] for r in d.output("out")}
    assert len(counts) == len(d.output("out"))  # every window fires once
    return counts


def test_explode_then_key_by_and_window_counts_match_plain_python() -> None:
    flights = random_flights(600, seed=11)
    d = driver(
        "  - flat_map: {explode: reasons, as: reason}\n" + WINDOW.format(key="reason"), partitions=3
    )
    for i, f in enumerate(flights):
        d.send("in", f, key=f["origin"], partition=i % 3)
    d.end_of_input()
    truth = Counter(
        (reason, f["ts"] - f["ts"] % HOUR) for f in flights for reason in f["reasons"] or ()
    )
    assert window_counts(d) == dict(truth)
    assert sum(truth.values()) > 300


def test_python_flat_map_then_key_by_and_window_counts_match_plain_python() -> None:
    flights = random_flights(600, seed=12)
    ops = "  - flat_map: {python: 'flat_map_udfs:delay_hours'}\n" + WINDOW.format(key="origin")
    d = driver(ops, partitions=2)
    for i, f in enumerate(flights):
        d.send("in", f, key=str(i), partition=i % 2)
    d.end_of_input()
    truth: Counter[tuple[str, int]] = Counter()
    for f in flights:
        if f["dep_delay"] is not None and f["dep_delay"] > 0:
            truth[(f["origin"], f["ts"] - f["ts"] % HOUR)] += math.ceil(f["dep_delay"] / 60)
    assert window_counts(d) == dict(truth)
    assert sum(truth.values()) > 400


def test_a_flat_map_after_a_window_expands_its_results() -> None:
    ops = (
        "  - id: hourly\n"
        "    window: {type: tumbling, size: 1h, aggregate: {tails: {collect: tail}}}\n"
        "  - flat_map: {explode: tails, as: tail}\n"
        "  - map: {select: [key, window_start, tail]}\n"
    )
    d = driver(ops)
    for i, tail in enumerate(("N1", "N2", "N3")):
        d.send("in", {"ts": T0 + i, "tail": tail}, key="JFK")
    d.end_of_input()
    start = T0 - T0 % HOUR
    assert [(r.timestamp_ms, r.value) for r in d.output("out")] == [
        (start + HOUR - 1, {"key": "JFK", "window_start": start, "tail": tail})
        for tail in ("N1", "N2", "N3")
    ]
