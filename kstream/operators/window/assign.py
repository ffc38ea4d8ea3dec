"""Window assigners (Flink DataStream semantics). Windows are half-open ``[start, end)``.

Tumbling, sliding and cumulate windows align to the epoch plus ``offset_ms``; windows before
time 0 exist (Python's floor modulo gives ``[-5, 5)`` for ts = -3, size 10, offset 5). Session
windows start as ``[ts, ts + gap)`` and merge when they overlap or touch (:func:`intersects`).
Count windows (:func:`count_window_starts`) are ``[start, end)`` ranges of element positions
(0, 1, 2, ... per key) instead of milliseconds.
"""

from __future__ import annotations


def window_start(ts: int, size_ms: int, offset_ms: int = 0) -> int:
    """Start (ms) of the tumbling window of ``size_ms`` containing ``ts`` (Flink
    ``TimeWindow.getWindowStartWithOffset``), for any sign of ``ts`` and ``offset_ms``."""
    return ts - (ts - offset_ms) % size_ms


def sliding_windows(
    ts: int, size_ms: int, slide_ms: int, offset_ms: int = 0
) -> list[tuple[int, int]]:
    """Every ``[start, end)`` of length ``size_ms`` sliding by ``slide_ms`` that contains ``ts``,
    latest start first (Flink ``SlidingEventTimeWindows.assignWindows`` order)."""
    last = window_start(ts, slide_ms, offset_ms)
    out = []
    start = last
    while start > ts - size_ms:
        out.append((start, start + size_ms))
        start -= slide_ms
    return out


def cumulate_windows(
    ts: int, size_ms: int, step_ms: int, offset_ms: int = 0
) -> list[tuple[int, int]]:
    """Every cumulative window that contains ``ts``, earliest end first (Flink SQL's
    ``CUMULATE``): all start where the tumbling window of ``size_ms`` containing ``ts`` starts
    and end at each multiple of ``step_ms`` after it, up to ``start + size_ms``."""
    start = window_start(ts, size_ms, offset_ms)
    first_end = start + (ts - start) // step_ms * step_ms + step_ms
    return [(start, end) for end in range(first_end, start + size_ms + 1, step_ms)]


def count_window_starts(index: int, span: int, slide: int) -> list[int]:
    """The count windows that open with the ``index``-th element (0-based) of a key, as their
    start positions (latest first). Flink ``countWindow(size, slide)`` fires every ``slide``
    elements with the last ``span`` elements (``span`` = size): the window fired by element
    count ``c`` (a multiple of ``slide``) is ``[c - span, c)``. Its start may be negative (the
    first firings, with fewer than ``span`` elements); those windows all open with element 0.
    """
    if index == 0:
        return [end - span for end in range(span - span % slide, 0, -slide)]
    return [index] if (index + span) % slide == 0 else []


def intersects(a_start: int, a_end: int, b_start: int, b_end: int) -> bool:
    """True when two windows overlap or touch (``a_end == b_start`` counts): they merge."""
    return a_start <= b_end and a_end >= b_start
