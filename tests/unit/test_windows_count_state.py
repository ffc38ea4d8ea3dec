"""Count-window state: the stored format is unchanged (``{"n", "open": [[start, acc, min ts,
max ts], ...]}``), state written before sliding count windows followed Flink still restores,
and the savepoint view shows the windows with the bounds their results will carry."""

from __future__ import annotations

from typing import Any

import orjson

from kstream.operators.window.base import WindowOperator, encode_window_key
from kstream.operators.window.node import build_window
from kstream.pipeline.load import load_pipeline_text
from kstream.pipeline.spec import WindowSpec
from kstream.pipeline.view import operator_to_dict
from kstream.savepoint.format import SavedEntry
from kstream.savepoint.view import decode_windows

AGG = "aggregate: {n: count, pos: {collect: v}}"


def operator(body: str) -> tuple[WindowOperator, dict[str, Any]]:
    text = f"pipeline: t\nsources:\n  - topic: in\noperators:\n  - id: w\n    window: {body}\n"
    spec = load_pipeline_text(text + "sinks:\n  - topic: out\n")
    window = spec.operators[0]
    assert isinstance(window, WindowSpec)
    return build_window(window, spec), operator_to_dict(window)


def feed(op: WindowOperator, key: str, values: range) -> list[list[int]]:
    out = []
    for v in values:
        out += [value["pos"] for _, value, _ in op.process(key, {"v": v}, v, 0)]
    return out


def saved(op: WindowOperator) -> list[SavedEntry]:
    return [SavedEntry(0, 0, k, v, b"") for k, v in op.changes() if v is not None]


def test_state_written_with_window_starts_at_multiples_of_slide_still_restores() -> None:
    op, _ = operator(f"{{type: count, size: 4, slide: 2, {AGG}}}")
    # what kstream stored before: elements 0, 1, 2 in [0, 4) and element 2 in [2, 6)
    stored = {"n": 3, "open": [[0, [3, [0, 1, 2]], 0, 2], [2, [1, [2]], 2, 2]]}
    op.restore([(encode_window_key(("a", 0, 0)), orjson.dumps(stored))], 0)
    assert feed(op, "a", range(3, 10)) == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7], [6, 7, 8, 9]]


def test_partial_windows_are_stored_with_a_negative_start_and_shown_clipped() -> None:
    op, definition = operator(f"{{type: count, size: 4, slide: 1, {AGG}}}")
    feed(op, "a", range(2))  # fired [0, 1) and [0, 2); open: [0, 3) [0, 4) [1, 5)
    entries = saved(op)
    (entry,) = entries
    assert sorted(start for start, *_ in orjson.loads(entry.value)["open"]) == [-1, 0, 1]
    rows = sorted(
        (r["window_start"], r["window_end"], r["pos"]) for r in decode_windows(definition, entries)
    )
    assert rows == [(0, 3, [0, 1]), (0, 4, [0, 1]), (1, 5, [1])]
    restored, _ = operator(f"{{type: count, size: 4, slide: 1, {AGG}}}")
    restored.restore([(e.key, e.value) for e in entries], 0)
    assert feed(restored, "a", range(2, 5)) == feed(op, "a", range(2, 5))


def test_discarding_windows_are_shown_with_their_span() -> None:
    op, definition = operator(
        f"{{type: count, size: 3, slide: 2, accumulation: discarding, {AGG}}}"
    )
    feed(op, "a", range(3))
    rows = [
        (r["window_start"], r["window_end"], r["pos"])
        for r in decode_windows(definition, saved(op))
    ]
    assert rows == [(2, 4, [2])]  # the next firing holds elements 2 and 3, not 1, 2, 3


def test_elements_between_windows_are_counted_only() -> None:
    op, definition = operator(f"{{type: count, size: 2, slide: 3, {AGG}}}")
    feed(op, "a", range(4))  # fired [1, 3); element 3 is in no window
    (entry,) = saved(op)
    assert orjson.loads(entry.value) == {"n": 4, "open": []}
    assert list(decode_windows(definition, [entry])) == []
