"""``accumulation: discarding`` (Flink ``PurgingTrigger``): every firing purges the window's
contents, so the next firing of the same window carries only the elements added since::

    tumbling [0, 10), allowed_lateness 100
    time         1  2 │wm 9         3 │      4
    accumulating      │ n=2       n=3 │    n=4      a re-fire carries the whole window
    discarding        │ n=2       n=1 │    n=1      a re-fire carries the new element only

The window itself (bounds, timers, a session's extent) lives until ``end - 1 + lateness``; a
firing with nothing new emits nothing, and nothing is ever retracted (``changelog``: all ``+I``).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from windowkit import Harness, pipeline_yaml

from kstream.errors import ConfigError
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import WindowSpec
from kstream.pipeline.view import fingerprint, operator_to_dict

AGG = "aggregate: {n: count, total: {sum: v}}"


def window(body: str, **kwargs: Any) -> Harness:
    return Harness(f"{{{body}, {AGG}}}", **kwargs)


@pytest.mark.parametrize(("mode", "refires"), [("accumulating", [3, 4]), ("discarding", [1, 1])])
def test_late_but_allowed_element_refires_with_the_whole_window_or_only_itself(
    mode: str, refires: list[int]
) -> None:
    h = window(f"type: tumbling, size: 10, allowed_lateness: 100, accumulation: {mode}")
    h.send(1)
    h.send(2)
    h.watermark(9)
    assert h.fired() == [("a", 0, 10, 2, 9)]
    h.send(3)
    h.watermark(50)
    h.send(4)
    assert [n for *_, n, _ts in h.fired()] == refires
    h.watermark(109)  # end - 1 + lateness: purged
    h.send(5)
    assert h.fired() == []
    assert h.open_windows() == 0


def test_default_is_accumulating() -> None:
    spec = load_pipeline_text(pipeline_yaml(f"{{type: tumbling, size: 10, {AGG}}}")).operators[0]
    assert isinstance(spec, WindowSpec) and spec.accumulation == "accumulating"


def test_discarding_early_firings_split_the_window_into_panes() -> None:
    #   elements 1 2 │ count 2: early n=2 │ 3 │ wm 9: on time n=1
    h = window("type: tumbling, size: 10, trigger: {count: 2}, accumulation: discarding")
    h.send(1, v=1)
    h.send(2, v=2)
    assert [(n, r) for *_, n, r in h.fired()] == [(2, 9)]
    h.send(3, v=3)
    h.watermark(9)
    assert h.fired() == [("a", 0, 10, 1, 9)]


def test_a_window_with_nothing_new_since_its_last_firing_does_not_fire() -> None:
    h = window("type: tumbling, size: 10, trigger: {count: 2}, accumulation: discarding")
    h.send(1)
    h.send(2)
    assert len(h.fired()) == 1  # early firing; the pane is empty afterwards
    h.watermark(9)
    assert h.fired() == []  # as Flink skips a window whose contents are empty
    assert h.open_windows() == 0


def test_every_trigger_fires_panes() -> None:
    h = window("type: tumbling, size: 10000, trigger: {every: 1s}, accumulation: discarding")
    h.send(1)
    h.send(2)
    h.driver.advance_time(1000)
    h.send(3)
    h.driver.advance_time(1000)
    h.driver.advance_time(1000)  # nothing new: no firing
    assert [n for *_, n, _ts in h.fired()] == [2, 1]


def test_sliding_windows_each_discard_their_own_contents() -> None:
    #   size 10, slide 5:  [0, 10) and [5, 15) both hold ts 7
    h = window("type: sliding, size: 10, slide: 5, allowed_lateness: 100, accumulation: discarding")
    h.send(7)
    h.send(8)
    h.watermark(14)
    assert [(s, e, n) for _k, s, e, n, _ts in h.fired()] == [(0, 10, 2), (5, 15, 2)]
    h.send(9)
    assert sorted((s, e, n) for _k, s, e, n, _ts in h.fired()) == [(0, 10, 1), (5, 15, 1)]


def test_a_late_element_merges_into_a_fired_session_and_fires_with_its_bounds() -> None:
    #   gap 10      0    5         │wm 14       12
    #   session     [0 ─────── 15) │ n=2        [0 ────────── 22)  n=1 at wm 21
    h = window("type: session, gap: 10, allowed_lateness: 100, accumulation: discarding")
    h.send(0)
    h.send(5)
    h.watermark(14)
    assert h.fired() == [("a", 0, 15, 2, 14)]
    h.send(12)  # joins the fired (emptied) session: [0, 22) ends after the watermark
    assert h.fired() == []
    h.watermark(21)
    assert h.fired() == [("a", 0, 22, 1, 21)]


@pytest.mark.parametrize(
    ("emit", "ops"),
    [
        ("changelog", [("+I", 1), ("+I", 1), ("+I", 1)]),
        ("update", [(None, 1), (None, 1), (None, 1)]),
        ("final", [(None, 1), (None, 1), (None, 1)]),
    ],
)
def test_merging_fired_sessions_under_discarding_retracts_nothing(
    emit: str, ops: list[tuple[str | None, int]]
) -> None:
    #   gap 10     0            20         │wm 29          10 bridges them
    #              [0 ─── 10)   [20 ─── 30)│ n=1, n=1      [0 ───────────── 30)  n=1 at once
    h = window(
        f"type: session, gap: 10, allowed_lateness: 100, emit: {emit}, accumulation: discarding"
    )
    h.send(0)
    h.send(20)
    h.watermark(29)
    h.send(10)
    out = h.new()
    assert [(r.value.get("op"), r.value["n"]) for r in out] == ops
    bounds = [(r.value["window_start"], r.value["window_end"]) for r in out]
    assert bounds == [(0, 10), (20, 30), (0, 30)]
    if emit == "update":
        assert json.loads(out[-1].key) == {"key": "a", "window_start": 0, "window_end": 30}


def test_merging_fired_sessions_when_accumulating_retracts_them() -> None:
    h = window("type: session, gap: 10, allowed_lateness: 100, emit: changelog")
    h.send(0)
    h.send(20)
    h.watermark(29)
    h.send(10)
    ops = [(r.value["op"], r.value["n"]) for r in h.new()]
    assert ops == [("+I", 1), ("+I", 1), ("-D", 1), ("-D", 1), ("+I", 3)]


@pytest.mark.parametrize(
    ("emit", "rows"),
    [
        ("changelog", [("+I", 2), ("+I", 1)]),
        ("update", [(None, 2), (None, 1)]),
    ],
)
def test_upsert_modes_emit_each_pane(emit: str, rows: list[tuple[str | None, int]]) -> None:
    h = window(
        f"type: tumbling, size: 10, allowed_lateness: 100, emit: {emit}, accumulation: discarding"
    )
    h.send(1)
    h.send(2)
    h.watermark(9)
    h.send(3)
    out = h.new()
    assert [(r.value.get("op"), r.value["n"]) for r in out] == rows
    assert {r.key for r in out} == {'{"key":"a","window_start":0,"window_end":10}'}


def test_an_emptied_window_stays_empty_across_a_restore() -> None:
    body = f"{{type: tumbling, size: 10, trigger: {{count: 2}}, accumulation: discarding, {AGG}}}"
    first = Harness(body)
    first.send(1)
    first.send(2)
    assert len(first.fired()) == 1
    stores = {
        store: sorted((k, v) for k, v in changes if v is not None)
        for store, changes in first.task.state_changes().items()
    }
    resumed = Harness(body)
    resumed.task.restore(first.task.meta(), stores)
    assert resumed.open_windows() == 1
    resumed.watermark(9)
    assert resumed.fired() == []
    resumed = Harness(body)
    resumed.task.restore(first.task.meta(), stores)
    resumed.send(5, v=7)
    resumed.watermark(9)
    assert [(r.value["n"], r.value["total"]) for r in resumed.new()] == [(1, 7)]


# -- the YAML key -------------------------------------------------------------------------------


def issues(window: str) -> list[tuple[int | None, str, str]]:
    text = (
        "pipeline: t\n"  # line 1
        "sources: [{topic: in}]\n"
        "operators:\n"
        "  - id: w\n"
        "    window:\n"  # line 5
        f"{window}"
        "      aggregate: {n: count}\n"
        "sinks: [{topic: out}]\n"
    )
    with pytest.raises(ConfigError) as info:
        load_pipeline_text(text)
    return [(i.line, i.key_path, i.message) for i in info.value.issues]


@pytest.mark.parametrize(
    "wtype",
    ["tumbling, size: 10", "sliding, size: 10, slide: 5", "session, gap: 5", "count, size: 3"],
)
def test_accumulation_applies_to_time_and_count_windows(wtype: str) -> None:
    text = pipeline_yaml(f"{{type: {wtype}, accumulation: discarding, {AGG}}}")
    spec = load_pipeline_text(text).operators[0]
    assert isinstance(spec, WindowSpec) and spec.accumulation == "discarding"


def test_accumulation_errors_name_the_line_and_key() -> None:
    found = issues("      type: tumbling\n      size: 10\n      accumulation: discard\n")
    assert found == [(8, "operators[0].window.accumulation", "invalid value 'discard'")]
    found = issues("      type: global\n      accumulation: discarding\n")
    message = (
        "'accumulation' is for tumbling, sliding, cumulate, session and count windows, not global "
        "windows"
    )
    assert found == [(7, "operators[0].window.accumulation", message)]


def test_the_fingerprint_changes_only_when_discarding() -> None:
    def spec_of(extra: str) -> Any:
        return load_pipeline_text(pipeline_yaml(f"{{type: tumbling, size: 10, {extra}{AGG}}}"))

    plain, explicit, discarding = (
        spec_of(""),
        spec_of("accumulation: accumulating, "),
        spec_of("accumulation: discarding, "),
    )
    assert fingerprint(plain) == fingerprint(explicit) != fingerprint(discarding)
    assert operator_to_dict(discarding.operators[0])["accumulation"] == "discarding"
