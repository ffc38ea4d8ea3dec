"""Lag, part done and ETA of a run's source partitions (kstream/runtime/progress.py)."""

from __future__ import annotations

from kstream.runtime.progress import Progress, ProgressMeter, source_positions
from kstream.testing import PipelineDriver

A0, A1 = ("a", 0), ("a", 1)


def test_bounded_lag_part_done_and_eta_from_the_recent_rate() -> None:
    meter = ProgressMeter(window_s=10.0)
    ends = {A0: 1_000, A1: 600}
    # A0 starts at its committed offset 200, A1 from the beginning (no committed offset)
    assert meter.measure({A0: 200, A1: None}, ends, True, 0.0) == Progress(1_400, 0.0, None)
    p = meter.measure({A0: 400, A1: 100}, ends, True, 2.0)  # 300 records in 2 s
    assert p.lag == 1_100
    assert p.done is not None and abs(p.done - 300 / 1_400) < 1e-9
    assert p.eta_s is not None and abs(p.eta_s - 1_100 / 150) < 1e-9
    done = meter.measure({A0: 1_000, A1: 600}, ends, True, 9.0)
    assert done == Progress(0, 1.0, 0.0)


def test_the_eta_rate_forgets_samples_older_than_the_window() -> None:
    meter = ProgressMeter(window_s=10.0)
    ends = {A0: 10_000}
    meter.measure({A0: 0}, ends, True, 0.0)
    meter.measure({A0: 5_000}, ends, True, 1.0)  # fast at first
    for t in range(2, 30):
        p = meter.measure({A0: 5_000 + (t - 1) * 10}, ends, True, float(t))
    assert p.eta_s is not None and 400 < p.eta_s < 600  # ~4,730 left at 10/s


def test_unbounded_lag_only_and_unknown_until_an_end_offset_is_seen() -> None:
    meter = ProgressMeter()
    assert meter.measure({A0: 5}, {}, False, 0.0) == Progress()
    assert meter.measure({A0: 5, A1: 7}, {A0: 50}, False, 1.0) == Progress(45, None, None)
    # no partition measurable (tasks released at the end of the run): the last measurement
    assert meter.measure({}, {}, False, 2.0) == Progress(45, None, None)
    # a position past a stale end offset is no negative lag
    assert meter.measure({A0: 60}, {A0: 50}, False, 3.0).lag == 0


def test_source_positions_of_tasks() -> None:
    d = PipelineDriver.from_yaml(
        """
pipeline: pos
sources:
  - topic: a
    event_time: {field: ts, unit: ms}
operators:
  - id: k
    key_by: ts
sinks:
  - topic: out
""",
        partitions=2,
    )
    d.send("a", {"ts": 1}, partition=1)
    d.send("a", {"ts": 2}, partition=1)
    tasks = list(dict.fromkeys(d.tasks.values()))
    assert source_positions(tasks) == {("a", 0): None, ("a", 1): 2}
