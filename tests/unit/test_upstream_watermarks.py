"""UpstreamWatermarks: the in-band markers of upstream tasks fed to the watermark valve, end of
input and stop, and the checkpointed state (old shapes included, as in the format-v1 savepoint
fixture)."""

from __future__ import annotations

import sys
from pathlib import Path

from kstream.savepoint import open_savepoint
from kstream.time.watermarks import (
    ACTIVE,
    END,
    IDLE,
    MAX_WATERMARK,
    MIN_WATERMARK,
    STOPPED,
    UpstreamWatermarks,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
sys.path.insert(0, str(FIXTURES))

import make_savepoint_v1 as v1  # noqa: E402


def test_idle_marker_carries_the_last_watermark_before_going_idle() -> None:
    """An ``idle`` marker is the upstream task's last watermark, then IDLE: its watermark counts
    for the channel (and in the all-idle max), then the channel is left out::

    a:0  active 10   .          .
    a:1  active  5   idle 8     .         (8 recorded, then idle)
    out  5           10         (a:0 alone)
    """
    up = UpstreamWatermarks(upstream_tasks=2)
    up.update("a:0", 10, ACTIVE)
    assert up.update("a:1", 5, ACTIVE) == 5
    assert up.update("a:1", 8, IDLE) == 10
    assert up.latest == {"a:0": (10, ACTIVE), "a:1": (8, IDLE)}
    assert up.update("a:1", 9, IDLE) == 10  # an idle channel ignores watermarks
    assert up.latest["a:1"] == (8, IDLE)
    assert up.update("a:0", 10, IDLE) == 10  # all idle: the max (10)
    assert up.valve.idle


def test_active_marker_reactivates_before_its_watermark_counts() -> None:
    """Case 1 through markers: a:1 returns at 12, behind the output 30: left out until 30."""
    up = UpstreamWatermarks(upstream_tasks=2)
    up.update("a:0", 30, ACTIVE)
    up.update("a:1", 3, IDLE)
    assert up.watermark == 30
    assert up.update("a:1", 12, ACTIVE) == 30
    assert up.update("a:0", 50, ACTIVE) == 50  # not held back by a:1 at 12
    assert up.update("a:1", 55, ACTIVE) == 50
    assert up.update("a:0", 70, ACTIVE) == 55  # a:1 aligned again


def test_end_of_input_counts_as_finished() -> None:
    """An ended upstream task never holds the min; with the others idle the output is their max
    (not +infinity); every task ended: +infinity and ``ended``. Markers after ``end`` are
    ignored."""
    up = UpstreamWatermarks(upstream_tasks=3)
    up.update("a:0", 20, ACTIVE)
    up.update("a:1", 7, ACTIVE)
    assert up.update("a:2", 40, IDLE) == 7
    assert up.update("a:1", MAX_WATERMARK, END) == 20
    assert up.update("a:1", 1, ACTIVE) == 20 and up.latest["a:1"] == (MAX_WATERMARK, END)
    assert up.update("a:0", MAX_WATERMARK, END) == 40  # only a:2 is left, idle at 40
    assert not up.ended
    assert up.update("a:2", MAX_WATERMARK, END) == MAX_WATERMARK
    assert up.ended


def test_ended_needs_every_upstream_task() -> None:
    up = UpstreamWatermarks(upstream_tasks=2)
    assert up.update("a:0", MAX_WATERMARK, END) == MIN_WATERMARK
    assert not up.ended and up.stopped_by() is None


def test_stop_markers_count_as_active_and_stop_when_all_stopped() -> None:
    up = UpstreamWatermarks(upstream_tasks=2)
    up.update("a:0", 10, STOPPED + "sp-1")
    assert up.stopped_by() is None
    assert up.update("a:1", 6, STOPPED + "sp-1") == 6
    assert up.stopped_by() == "sp-1"
    up.resume_after_stop()
    assert up.stopped_by() is None
    assert up.latest == {"a:0": (10, ACTIVE), "a:1": (6, ACTIVE)}
    assert up.update("a:1", 12, ACTIVE) == 10


def test_state_round_trip_keeps_unaligned_channels() -> None:
    up = UpstreamWatermarks(upstream_tasks=2)
    up.update("a:0", 30, ACTIVE)
    up.update("a:1", 3, IDLE)
    up.update("a:1", 12, ACTIVE)  # unaligned: behind 30
    state = up.to_state()
    assert state == {
        "watermark": 30,
        "latest": {"a:0": [30, ACTIVE, True], "a:1": [12, ACTIVE, False]},
    }
    copy = UpstreamWatermarks(upstream_tasks=2)
    copy.load_state(state)
    assert copy.update("a:0", 50, ACTIVE) == 50


def test_old_state_without_aligned_flags_still_restores() -> None:
    """The shape before the valve: ``latest`` entries ``[watermark, status]``. An active entry
    behind the stored watermark restores unaligned, an idle one idle, an ended one finished."""
    old = {
        "watermark": 30,
        "latest": {"a:0": [30, ACTIVE], "a:1": [12, ACTIVE], "a:2": [40, IDLE], "a:3": [9, END]},
    }
    up = UpstreamWatermarks(upstream_tasks=4)
    up.load_state(old)
    assert up.watermark == 30
    assert [up.valve.channel(o).aligned for o in ("a:0", "a:1", "a:2", "a:3")] == [
        True,
        False,
        False,
        False,
    ]
    assert up.latest["a:3"] == (MAX_WATERMARK, END)
    assert up.update("a:0", 45, ACTIVE) == 45  # a:1 (12) does not hold it back
    assert up.update("a:0", MAX_WATERMARK, END) == 45  # a:1 is active, though unaligned
    assert up.update("a:1", 46, ACTIVE) == 46


def test_savepoint_v1_fixture_upstream_state_restores() -> None:
    """The stage-1 tasks of the committed format-v1 savepoint (stopped for ``fixture-v1``). Its
    origins are the old task ids ``<stage index>:<partition>``, kept as is here; a task renames
    them when it restores (``tests/unit/test_task_ids.py``)."""
    metas = [t.meta for t in open_savepoint(v1.TARGET).tasks() if t.stage == "by-user"]
    assert len(metas) == 2
    for meta in metas:
        up = UpstreamWatermarks(upstream_tasks=v1.PARTITIONS)
        up.load_state(meta["upstream"])
        assert up.watermark == meta["watermark"] == 138_999
        assert up.stopped_by() == v1.REQUEST_ID
        up.resume_after_stop()
        assert up.update("0:0", 150_000, ACTIVE) == 143_999  # 0:1 holds the min again
        assert up.update("0:1", 160_000, ACTIVE) == 150_000


def test_docs_examples() -> None:
    """The two timelines of docs/time-and-windows.md, "Combining watermarks"."""
    up = UpstreamWatermarks(upstream_tasks=2)
    markers = [
        [("in0", 30, ACTIVE), ("in1", 20, ACTIVE)],
        [("in1", 20, IDLE)],
        [("in1", 12, ACTIVE)],
        [("in0", 50, ACTIVE)],
        [("in1", 55, ACTIVE)],
        [("in0", 70, ACTIVE)],
    ]
    got = [[up.update(*m) for m in step][-1] for step in markers]
    assert got == [20, 30, 30, 50, 50, 55]
    up = UpstreamWatermarks(upstream_tasks=2)
    markers = [[("in0", 14, ACTIVE), ("in1", 24, ACTIVE)], [("in1", 24, IDLE)], [("in0", 14, IDLE)]]
    got = [[up.update(*m) for m in step][-1] for step in markers]
    assert got == [14, 14, 24]
