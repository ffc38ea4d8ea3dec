"""Sliding (hopping) windows through the PipelineDriver. Size 10 ms, slide 5 ms::

time   -5    0    5    10   15   20
        [---------)                     [-5, 5)
             [---------)                [0, 10)
                  [---------)           [5, 15)
                       [---------)      [10, 20)

ts = 7 belongs to [0, 10) and [5, 15). An element is dropped only when it is late for
*every* window it belongs to; otherwise it goes to the windows that are not late.
"""

from __future__ import annotations

from windowkit import Harness

from kstream.operators.window.assign import sliding_windows

AGG = "aggregate: {n: count}"


def sliding(extra: str = "") -> Harness:
    return Harness(f"{{type: sliding, size: 10, slide: 5, {extra} {AGG}}}")


def test_assigner_order_and_negative_windows() -> None:
    assert sliding_windows(7, 10, 5) == [(5, 15), (0, 10)]
    assert sliding_windows(0, 10, 5) == [(0, 10), (-5, 5)]
    assert sliding_windows(-1, 10, 5) == [(-5, 5), (-10, 0)]
    assert sliding_windows(7, 10, 5, 2) == [(7, 17), (2, 12)]
    assert sliding_windows(3, 10, 3) == [(3, 13), (0, 10), (-3, 7), (-6, 4)]


def test_an_element_counts_in_every_window_it_belongs_to() -> None:
    h = sliding()
    h.send(7)
    h.watermark(100)
    assert h.fired() == [("a", 0, 10, 1, 9), ("a", 5, 15, 1, 14)]


def test_each_window_fires_at_its_own_end_minus_one() -> None:
    h = sliding()
    h.send(-1)  # [-10, 0) and [-5, 5)
    h.watermark(-2)
    assert h.fired() == []
    h.watermark(-1)
    assert h.fired() == [("a", -10, 0, 1, -1)]
    h.watermark(3)
    assert h.fired() == []
    h.watermark(4)
    assert h.fired() == [("a", -5, 5, 1, 4)]


def test_element_late_for_one_window_goes_to_the_other_only() -> None:
    """watermark 9: [0, 10) has fired (9 + 0 <= 9), [5, 15) has not."""
    h = sliding()
    h.send(6)
    h.watermark(9)
    assert h.fired() == [("a", 0, 10, 1, 9)]
    h.send(7)
    assert h.fired() == []  # [0, 10) did not re-fire: the element was late for it
    assert h.driver.late("in") == []  # not dropped
    h.watermark(14)
    assert h.fired() == [("a", 5, 15, 2, 14)]


def test_element_late_for_every_window_is_dropped_naming_its_latest_window() -> None:
    h = sliding()
    h.send(6)
    h.watermark(14)
    h.fired()
    h.send(7)  # [0,10): 9 <= 14, [5,15): 14 <= 14 -> late for both
    late = h.driver.late("in")
    assert [(r.value["ts"], r.headers["window_start"], r.headers["window_end"]) for r in late] == [
        (7, "5", "15")
    ]


def test_lateness_applies_per_window() -> None:
    """Lateness 3: [0,10) accepts until watermark 11, [5,15) until 16."""
    h = sliding("allowed_lateness: 3,")
    h.send(6)
    h.watermark(12)  # [0,10) fired and purged (9 + 3 <= 12); [5,15) open
    assert h.fired() == [("a", 0, 10, 1, 9)]
    h.send(7)  # late for [0,10), on time for [5,15)
    assert h.fired() == []
    h.watermark(14)
    assert h.fired() == [("a", 5, 15, 2, 14)]
    h.send(8)  # [5,15) fired but within lateness (14 + 3 > 14): re-fires
    assert h.fired() == [("a", 5, 15, 3, 14)]
    h.watermark(17)
    h.send(9)
    assert h.fired() == []
    assert [r.value["ts"] for r in h.driver.late("in")] == [9]


def test_late_but_allowed_in_two_windows_refires_both_latest_first() -> None:
    h = sliding("allowed_lateness: 100,")
    h.send(7)
    h.watermark(20)
    h.fired()
    h.send(8)
    assert h.fired() == [("a", 5, 15, 2, 14), ("a", 0, 10, 2, 9)]


def test_sliding_with_offset() -> None:
    """offset 2: windows [-3, 7), [2, 12), [7, 17), ..."""
    h = sliding("offset: 2,")
    h.send(7)  # [7, 17) and [2, 12)
    h.send(3)  # [2, 12) and [-3, 7)
    h.watermark(100)
    assert [f[1:4] for f in h.fired()] == [(-3, 7, 1), (2, 12, 2), (7, 17, 1)]


def test_slide_not_dividing_size() -> None:
    """size 10, slide 3: ts 3 is in [3,13), [0,10), [-3,7) and [-6,4)."""
    h = Harness(f"{{type: sliding, size: 10, slide: 3, {AGG}}}")
    h.send(3)
    h.watermark(100)
    assert [f[1:3] for f in h.fired()] == [(-6, 4), (-3, 7), (0, 10), (3, 13)]
