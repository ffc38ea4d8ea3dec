"""Time windows keep their timers in the timer service (Flink ``WindowOperator``): a firing
timer at ``end - 1`` and a cleanup timer at ``end - 1 + allowed_lateness`` per window (one
timer when there is no lateness), removed when a session is merged away, gone with the window;
the node checkpoints them as its ``timers`` store.

Time is drawn left to right, one column per millisecond::

    key a   |0 ..... 9|10 .... 19|        tumbling, size 10, allowed lateness 5
    timers  fire 9, cleanup 14 ; fire 19, cleanup 24
"""

from __future__ import annotations

from typing import Any

from kstream.operators.window.base import WindowOperator
from kstream.operators.window.node import build_window
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import WindowSpec
from kstream.time.timers import decode_timer

AGG = "aggregate: {n: count}"


def operator(body: str) -> WindowOperator:
    text = f"pipeline: t\nsources:\n  - topic: in\noperators:\n  - id: w\n    window: {body}\n"
    spec = load_pipeline_text(text + "sinks:\n  - topic: out\n")
    window = spec.operators[0]
    assert isinstance(window, WindowSpec)
    return build_window(window, spec)


def timers(op: WindowOperator) -> list[tuple[int, Any, Any]]:
    assert op.timers is not None
    return list(op.timers.event_timers())


def test_a_window_has_a_firing_and_a_cleanup_timer() -> None:
    op = operator(f"{{type: tumbling, size: 10, allowed_lateness: 5, {AGG}}}")
    op.process("a", {}, 3, -1)
    op.process("a", {}, 12, -1)
    op.process("a", {}, 4, -1)  # same window: no new timer
    assert timers(op) == [
        (9, "a", (0, 10)),
        (14, "a", (0, 10)),
        (19, "a", (10, 20)),
        (24, "a", (10, 20)),
    ]
    assert op.next_timer == 9
    assert [v["n"] for _, v, _ in op.advance(9)] == [2]
    assert op.next_timer == 14 and op.open_windows() == 2
    op.advance(14)  # cleanup: the window and its timers are gone
    assert op.open_windows() == 1 and timers(op) == [(19, "a", (10, 20)), (24, "a", (10, 20))]


def test_without_lateness_firing_and_cleanup_are_one_timer() -> None:
    op = operator(f"{{type: tumbling, size: 10, {AGG}}}")
    op.process("a", {}, 3, -1)
    assert timers(op) == [(9, "a", (0, 10))]
    assert [v["n"] for _, v, _ in op.advance(9)] == [1]
    assert op.open_windows() == 0 and timers(op) == []


def test_a_window_opened_behind_the_watermark_gets_only_its_cleanup_timer() -> None:
    op = operator(f"{{type: tumbling, size: 10, allowed_lateness: 5, {AGG}}}")
    out = op.process("a", {}, 3, 11)  # late but allowed: fires at once
    assert [v["n"] for _, v, _ in out] == [1]
    assert timers(op) == [(14, "a", (0, 10))]
    assert op.advance(14) == [] and op.open_windows() == 0


def test_sessions_merged_away_lose_their_timers() -> None:
    #   a  |1...4)      |8...11)        gap 3
    #   a        |4.......8|            bridges both: one session [1, 11)
    op = operator(f"{{type: session, gap: 3, {AGG}}}")
    op.process("a", {}, 1, -1)
    op.process("a", {}, 8, -1)
    assert timers(op) == [(3, "a", (1, 4)), (10, "a", (8, 11))]
    op.process("a", {}, 4, -1)  # [4, 7) touches [1, 4) -> [1, 7); still apart from [8, 11)
    op.process("a", {}, 6, -1)  # [6, 9) overlaps both -> [1, 11)
    assert timers(op) == [(10, "a", (1, 11))]
    assert [(v["window_start"], v["n"]) for _, v, _ in op.advance(10)] == [(1, 4)]
    assert timers(op) == []


def test_the_node_checkpoints_its_timers_as_the_timers_store() -> None:
    from kstream.graph.plan import TIMERS_STORE
    from kstream.operators.window.node import WindowNode

    text = "pipeline: t\nsources:\n  - topic: in\noperators:\n  - id: w\n"
    text += f"    window: {{type: tumbling, size: 10, allowed_lateness: 5, {AGG}}}\n"
    spec = load_pipeline_text(text + "sinks:\n  - topic: out\n")
    window = spec.operators[0]
    assert isinstance(window, WindowSpec)
    node = WindowNode(window, spec, lambda: 0, lambda _w, _late: None)
    node.window.process("a", {}, 3, -1)
    stores = node.prepare_checkpoint()
    assert set(stores) == {"", TIMERS_STORE}
    assert sorted(decode_timer(k)[1] for k, _v in stores[TIMERS_STORE]) == [
        (9, "a", (0, 10)),
        (14, "a", (0, 10)),
    ]
    again = WindowNode(window, spec, lambda: 0, lambda _w, _late: None)
    again.restore({"": stores[""], TIMERS_STORE: stores[TIMERS_STORE]}, -1)
    assert timers(again.window) == [(9, "a", (0, 10)), (14, "a", (0, 10))]
    assert again.timers is not None and again.timers.next_event_time == 9
    assert again.timers is again.window.timers  # the runtime fires the restored timers


def test_the_runtime_fires_a_windows_timers_through_on_timer_before_on_watermark() -> None:
    """The operator interface: due event-time timers reach ``on_timer`` in time order, then
    the watermark reaches ``on_watermark`` (Flink: the timer service advances first)."""
    from windowkit import pipeline_yaml

    from kstream.testing import PipelineDriver

    driver = PipelineDriver.from_yaml(pipeline_yaml(f"{{type: tumbling, size: 10, {AGG}}}"))
    node = driver.tasks[("in", 0)].executor.nodes["w"]
    calls: list[tuple[Any, ...]] = []
    on_timer, on_watermark = node.on_timer, node.on_watermark

    def spy_timer(ts: int, key: Any, namespace: Any, domain: str = "e") -> None:
        calls.append(("timer", ts, key, namespace, domain))
        on_timer(ts, key, namespace, domain)

    def spy_watermark(watermark: int) -> None:
        calls.append(("watermark", watermark))
        on_watermark(watermark)

    node.on_timer, node.on_watermark = spy_timer, spy_watermark
    for ts, key in ((13, "b"), (3, "a"), (4, "b")):
        driver.send("in", {"ts": ts, "v": 1}, key=key)
    calls.clear()  # the watermark's first value, before any record
    driver.watermark("in", 19)
    assert calls == [
        ("timer", 9, "a", (0, 10), "e"),
        ("timer", 9, "b", (0, 10), "e"),
        ("timer", 19, "b", (10, 20), "e"),
        ("watermark", 19),
    ]
    assert [(r.key, r.value["window_start"], r.value["n"]) for r in driver.output("out")] == [
        ("a", 0, 1),
        ("b", 0, 1),
        ("b", 10, 1),
    ]
