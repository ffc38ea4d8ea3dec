"""Task ids ``<stage id>:<partition>``, and checkpoints, records and markers of versions that named
tasks ``<stage index>:<partition>`` (read as the writing stage's ids)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from kstream.graph.plan import Stage, build_plan, task_id
from kstream.pipeline.load import load_pipeline_text
from kstream.runtime.control import all_tasks
from kstream.runtime.inputs import RepartitionInput, renamed_origin
from kstream.testing import PipelineDriver
from kstream.time.watermarks import ACTIVE, END, MIN_WATERMARK

PIPELINE = """
pipeline: t
sources:
  - topic: in
    event_time: ts
operators:
  - id: by-k
    key_by: k
  - id: w
    window: {type: tumbling, size: 10, aggregate: {n: count}}
sinks:
  - topic: out
"""
REPARTITION = "t.by-k.repartition"


def seq(n: int) -> int:
    """The sequence of the first output of input offset ``n``."""
    return n << 24 | 1


#: a downstream task's checkpoint as versions naming tasks by stage index wrote it (the upstream
#: stage ``in`` was stage 0)
OLD_META: dict[str, Any] = {
    "position": 5,
    "watermark": 40,
    "source": None,
    "upstream": {
        "watermark": 40,
        "latest": {"0:0": [40, ACTIVE, True], "0:1": [60, ACTIVE, True]},
    },
    "finished": False,
    "stopped_by": None,
    "marker": [MIN_WATERMARK, ACTIVE],
    "seen": {"0:0": seq(3), "0:1": seq(2)},
}


@dataclass
class Msg:
    """A repartition record (``value`` None: a marker) as confluent-kafka's Message reads."""

    _value: bytes | None
    _headers: list[tuple[str, bytes]]
    _offset: int
    _key: bytes | None = b'"a"'

    def topic(self) -> str:
        return REPARTITION

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]]:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return (1, 50)

    def offset(self) -> int:
        return self._offset


def record(origin: bytes, sequence: int, offset: int) -> Msg:
    return Msg(b'{"k": "a", "ts": 50}', [("kstream.seq", origin + b"/%d" % sequence)], offset)


def marker(origin: str, watermark: int, status: str, offset: int) -> Msg:
    headers = [
        ("kstream.watermark", str(watermark).encode()),
        ("kstream.origin", origin.encode()),
        ("kstream.status", status.encode()),
    ]
    return Msg(None, headers, offset, None)


@pytest.fixture
def driver() -> PipelineDriver:
    return PipelineDriver(load_pipeline_text(PIPELINE, "t.yaml"), partitions=2)


def test_task_ids_name_the_stage_by_its_id(driver: PipelineDriver) -> None:
    plan = driver.plan
    assert [s.id for s in plan.stages] == ["in", "by-k"]
    assert sorted(t.id for t in driver.tasks.values()) == ["by-k:0", "by-k:1", "in:0", "in:1"]
    assert all_tasks(plan, {"in": 2, REPARTITION: 2}) == {"in:0", "in:1", "by-k:0", "by-k:1"}
    assert task_id(plan.stages[1], 3) == "by-k:3"
    driver.send("in", {"k": "a", "ts": 5}, key="a", partition=1)
    data = [r for r in driver.topic(REPARTITION) if r.value is not None]
    assert data and data[0].headers["kstream.seq"].startswith("in:1/")


def test_an_old_checkpoint_restores_under_stage_ids(driver: PipelineDriver) -> None:
    task = driver.tasks[(REPARTITION, 0)]
    task.restore(OLD_META, {})
    source = task.input_of(REPARTITION)
    assert isinstance(source, RepartitionInput)
    assert source.seen == {b"in:0": seq(3), b"in:1": seq(2)}
    assert set(source.upstream.statuses) == set(source.upstream.valve.channels) == {"in:0", "in:1"}
    assert task.meta()["seen"] == {"in:0": seq(3), "in:1": seq(2)}
    assert task.watermark == 40
    # the current origins move the same two channels: no third channel holds the watermark
    task.process([marker("in:0", 70, ACTIVE, 5)])
    assert task.watermark == 60 and len(source.upstream.valve.channels) == 2


def test_a_replay_across_the_upgrade_is_dropped(driver: PipelineDriver) -> None:
    task = driver.tasks[(REPARTITION, 0)]
    task.restore(OLD_META, {})
    source = task.input_of(REPARTITION)
    assert isinstance(source, RepartitionInput)
    task.process([record(b"in:1", seq(2), 5)])  # replayed by the new version: applied before
    assert task.counters["duplicates"] == 1
    task.process([record(b"0:0", seq(3), 6)])  # left in the topic by the old version: too
    assert task.counters["duplicates"] == 2
    task.process([record(b"0:0", seq(4), 7), record(b"in:0", seq(4), 8)])
    assert task.counters["duplicates"] == 3  # the old record was new; its replay is not
    assert source.seen == {b"in:0": seq(4), b"in:1": seq(2)}


def test_a_marker_left_by_the_old_version_moves_the_renamed_channel(
    driver: PipelineDriver,
) -> None:
    task = driver.tasks[(REPARTITION, 0)]
    task.restore(OLD_META, {})
    source = task.input_of(REPARTITION)
    assert isinstance(source, RepartitionInput)
    task.process([marker("0:0", 80, ACTIVE, 5), marker("0:1", 90, END, 6)])
    assert set(source.upstream.valve.channels) == {"in:0", "in:1"}
    assert task.watermark == 80
    task.process([marker("in:0", 100, END, 7)])
    assert source.upstream.ended and task.finished


def test_renamed_origin_only_renames_the_writers_old_ids() -> None:
    def stage(index: int, stage_id: str) -> Stage:
        return Stage(index, (), (), (), (), stage_id)

    writer = stage(0, "in")
    assert renamed_origin("0:3", writer) == "in:3"
    assert renamed_origin("0:3.1", writer) == "in:3.1"  # a task reading several topics
    assert renamed_origin("in:3", writer) == "in:3"
    assert renamed_origin("in:3.1", writer) == "in:3.1"
    assert renamed_origin("1:3", writer) == "1:3"  # another stage's index: not this writer's
    # stage ids of digits: the current id is kept, the old one renamed
    assert renamed_origin("1:3", stage(0, "1")) == "1:3"
    assert renamed_origin("0:3", stage(0, "1")) == "1:3"
    assert renamed_origin("0:3", stage(0, "0")) == "0:3"
    assert renamed_origin("a.b:3", stage(0, "a.b")) == "a.b:3"


def test_plan_keeps_stage_positions() -> None:
    plan = build_plan(load_pipeline_text(PIPELINE, "t.yaml"))
    assert [(s.index, s.id) for s in plan.stages] == [(0, "in"), (1, "by-k")]
