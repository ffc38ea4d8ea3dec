"""Reading the status topic without a broker (kstream/runtime/status_read.py): the latest record
per process, tombstones, bad records, stale records, reading to the end (also past an end
signalled too early, as on Tansu), following the topic, and what ``kstream status`` takes from
the fresh records (owners, live watermarks, rates; the group's description skipped)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import kstream.runtime.status as status_module
from kstream.graph.plan import Plan, build_plan
from kstream.io import kafka
from kstream.pipeline.load import load_pipeline
from kstream.runtime.status import LocalTask, status_row, task_statuses
from kstream.runtime.status_read import (
    StatusBoard,
    StatusFeed,
    job_nodes,
    live_tasks,
    process_name,
    read_statuses,
)
from kstream.runtime.status_record import NodeRow, ProcessStatus, TaskRow

HOURLY = Path(__file__).resolve().parents[2] / "examples" / "flights-hourly.yaml"
NOW = 1_700_000_000_000
T = 1_357_016_400_000  # 2013-01-01 05:00:00 UTC


def process(pid: int, time_ms: int = NOW, host: str = "h1", **changes: Any) -> ProcessStatus:
    """A record of process ``host:pid`` made at ``time_ms`` (interval 2 s: stale after 6 s)."""
    base = ProcessStatus("flights-hourly", "flights-hourly", host, pid, NOW - 60_000, time_ms, 2000)
    return replace(base, **changes)


# -- merging ---------------------------------------------------------------------------


def test_the_latest_record_of_each_key_wins_and_a_tombstone_removes_it() -> None:
    board = StatusBoard()
    board.apply(b"h1:2", process(2, NOW - 4000).to_json())
    board.apply(b"h1:1", process(1, NOW - 3000).to_json())
    board.apply(b"h1:2", process(2, NOW - 1000, phase="restoring 2 tasks").to_json())
    assert [(s.pid, s.time_ms, s.phase) for s in board.statuses()] == [
        (1, NOW - 3000, "running"),
        (2, NOW - 1000, "restoring 2 tasks"),
    ]
    board.apply(b"h1:1", None)  # process 1 stopped cleanly
    assert [s.pid for s in board.statuses()] == [2]
    board.apply(b"h1:9", None)  # a tombstone of a key never seen: nothing to remove
    assert [s.pid for s in board.statuses()] == [2]


def test_bad_records_are_skipped_with_a_warning_and_the_previous_record_stays(
    caplog: pytest.LogCaptureFixture,
) -> None:
    board = StatusBoard()
    board.apply(b"h1:1", process(1).to_json())
    with caplog.at_level(logging.WARNING, "kstream.runtime.status_read"):
        board.apply(b"h1:1", b"{not json")
        board.apply(b"h1:2", b'{"pipeline": "p"}')  # fields missing
        board.apply(b"h1:3", b"[1, 2]")  # not an object
        board.apply(None, process(4).to_json())
    assert [s.pid for s in board.statuses()] == [1]
    assert len(caplog.records) == 4
    assert "the record of h1:2 was skipped" in caplog.text and "without a key" in caplog.text


def test_fields_a_newer_writer_adds_are_ignored() -> None:
    board = StatusBoard()
    body = process(1, tasks=(TaskRow("flights:0", in_per_s=5.0),)).to_json()
    board.apply(b"h1:1", body[:-1] + b',"gpu":"none"}')
    [status] = board.statuses()
    assert status.tasks == (TaskRow("flights:0", in_per_s=5.0),)


def test_stale_records_are_kept_by_the_board_and_left_out_of_the_live_views() -> None:
    fresh = process(1, NOW - 5_000, tasks=(TaskRow("flights:0", in_per_s=10.0),))
    stale = process(2, NOW - 7_000, tasks=(TaskRow("flights:1", in_per_s=10.0),))
    assert not fresh.is_stale(NOW) and stale.is_stale(NOW)  # 3 intervals of 2 s
    assert sorted(live_tasks([fresh, stale], NOW)) == ["flights:0"]


def test_a_task_listed_twice_belongs_to_the_newest_record() -> None:
    old = process(1, NOW - 3000, tasks=(TaskRow("flights:0", watermark_ms=T),))
    new = process(2, NOW - 1000, host="h2", tasks=(TaskRow("flights:0", watermark_ms=T + 1),))
    owner, row = live_tasks([new, old], NOW)["flights:0"]
    assert (owner, row.watermark_ms) == ("h2:2", T + 1)
    assert process_name(new) == "h2:2"


def test_nodes_are_summed_over_live_processes_with_the_lowest_known_watermark() -> None:
    a = process(1, nodes=(NodeRow("hourly", "window", 10, 2, 1, 5.0, 1.0, T + 10),))
    b = process(2, nodes=(NodeRow("hourly", "window", 20, 3, 2, 7.0, 2.0, None),))
    c = process(3, nodes=(NodeRow("hourly", "window", 30, 4, 3, 9.0, 3.0, T),))
    dead = process(4, NOW - 60_000, nodes=(NodeRow("hourly", "window", 99, 9, 9, 9, 9, 0),))
    assert job_nodes([a, b, c, dead], NOW) == {
        "hourly": NodeRow("hourly", "window", 60, 9, 6, 21.0, 6.0, T)
    }
    assert job_nodes([b], NOW)["hourly"].watermark_ms is None


# -- reading the topic -------------------------------------------------------------------


class FakeError:
    def __init__(self, code: int) -> None:
        self._code = code

    def code(self) -> int:
        return self._code

    def str(self) -> str:
        return "broker trouble"


class Msg:
    """A consumed message: a record, or an event (``error``: a :class:`FakeError`)."""

    def __init__(self, key: bytes | None, value: bytes | None, error: FakeError | None = None):
        self._key, self._value, self._error = key, value, error

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def error(self) -> FakeError | None:
        return self._error

    def partition(self) -> int:
        return 0

    def topic(self) -> str:
        return "g.status"


EOF = Msg(None, None, FakeError(kafka.PARTITION_EOF))


class FakeReader:
    """Hands out ``batches`` one per ``consume`` call, then nothing."""

    def __init__(self, batches: list[list[Msg]]) -> None:
        self.batches, self.closed = batches, False

    def consume(self, limit: int = 10_000, timeout_s: float = 0.0) -> list[Msg]:
        return self.batches.pop(0) if self.batches else []

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def topic(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The fake broker: ``partitions`` of ``g.status`` (None: no such topic) and the reader's
    batches; ``readers`` lists the readers made."""
    broker: dict[str, Any] = {"partitions": 1, "batches": [], "readers": []}

    class Admin:
        def __init__(self, *_args: Any, **_kwargs: Any) -> None:
            pass

        def partitions(self, name: str) -> int | None:
            assert name == "g.status"
            return broker["partitions"]

    def reader(bootstrap: str, settings: Any, name: str, partitions: int) -> FakeReader:
        made = FakeReader(broker["batches"])
        broker["readers"].append(made)
        return made

    monkeypatch.setattr(kafka, "Admin", Admin)
    monkeypatch.setattr(kafka, "PartitionsReader", reader)
    yield broker


def record(status: ProcessStatus | None, name: bytes = b"h1:1") -> Msg:
    return Msg(name, None if status is None else status.to_json())


def test_a_missing_topic_reads_as_no_records(topic: dict[str, Any]) -> None:
    topic["partitions"] = None
    assert read_statuses("b:9092", {}, "g") == []
    assert topic["readers"] == []


def test_reading_goes_on_past_an_end_signalled_too_early(topic: dict[str, Any]) -> None:
    topic["batches"] += [
        [record(process(1, NOW - 9000)), record(process(2), b"h1:2")],
        [EOF],  # Tansu: the end it reports is the base offset of the last batch
        [record(process(1, NOW - 1000)), record(None, b"h1:2")],
    ]
    [status] = read_statuses("b:9092", {}, "g")
    assert (status.pid, status.time_ms) == (1, NOW - 1000)
    assert topic["readers"][0].closed


def test_an_error_event_is_logged_and_reading_goes_on(
    topic: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    topic["batches"] += [[Msg(None, None, FakeError(-185)), record(process(1)), EOF]]
    with caplog.at_level(logging.WARNING, "kstream.runtime.status_read"):
        assert [s.pid for s in read_statuses("b:9092", {}, "g")] == [1]
    assert "broker trouble" in caplog.text


def test_the_feed_waits_for_the_topic_then_reads_only_what_is_new(topic: dict[str, Any]) -> None:
    topic["partitions"] = None
    feed = StatusFeed("b:9092", {}, "g")
    assert feed.poll() == [] and topic["readers"] == []
    topic["partitions"] = 1
    topic["batches"] += [[record(process(1, NOW - 2000)), EOF]]
    assert [s.time_ms for s in feed.poll()] == [NOW - 2000]
    topic["batches"] += [[record(process(1, NOW))], [record(process(2), b"h1:2")]]
    assert [(s.pid, s.time_ms) for s in feed.poll()] == [(1, NOW), (2, NOW)]
    assert len(topic["readers"]) == 1  # one reader, never rewound
    topic["batches"] += [[record(None, b"h1:1")]]
    assert [s.pid for s in feed.poll()] == [2]
    feed.close()
    assert topic["readers"][0].closed


# -- kstream status -----------------------------------------------------------------------


def test_a_live_row_gives_the_owner_the_live_watermark_rate_and_newer_checkpoint() -> None:
    local = LocalTask({"checkpoint_id": 3, "time_ms": T, "watermark": T - 5}, 4096, locked=True)
    live = ("h2:77", TaskRow("flights:0", in_per_s=12.5, watermark_ms=T + 9, checkpoint_id=4,
                             checkpoint_ms=T + 1, state_bytes=9999))  # fmt: skip
    row = status_row("flights:0", "flights", 0, (10, 12), local, "c@h", None, live)
    assert row.owner == "h2:77, locked here"
    assert (row.watermark_ms, row.in_per_s) == (T + 9, 12.5)
    assert (row.checkpoint_id, row.checkpoint_time_ms, row.state_bytes) == (4, T + 1, 4096)
    # no local state: the live state size; no live watermark: the checkpointed one
    other = ("h2:77", TaskRow("flights:0", state_bytes=9999, checkpoint_id=2))
    row = status_row("flights:0", "flights", 0, (10, 12), local, None, None, other)
    assert (row.watermark_ms, row.checkpoint_id) == (T - 5, 3)
    row = status_row("flights:0", "flights", 0, (10, 12), LocalTask(), None, None, other)
    assert (row.state_bytes, row.checkpoint_id, row.owner) == (9999, 2, "h2:77")
    # without a live row: as before
    row = status_row("flights:0", "flights", 0, (10, 12), LocalTask(), "c@h")
    assert (row.owner, row.in_per_s, row.watermark_ms) == ("c@h", None, None)


class FakeAdmin:
    def __init__(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def topics(self) -> dict[str, int]:
        return {"flights": 2, "flights-hourly.by-origin.repartition": 2, "flights-hourly.status": 1}


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Offsets and the group's description faked; ``statuses`` are what the status topic
    holds; ``described`` counts the group descriptions."""
    state: dict[str, Any] = {"statuses": [], "described": 0}

    def group_members(*_args: Any, **_kwargs: Any) -> dict[tuple[str, int], str]:
        state["described"] += 1
        return {("flights", 0): "kstream@member"}

    class Consumer:
        def close(self) -> None:
            pass

    monkeypatch.setattr(kafka, "Admin", FakeAdmin)
    monkeypatch.setattr(kafka, "group_members", group_members)
    monkeypatch.setattr(kafka, "new_consumer", lambda conf: Consumer())
    monkeypatch.setattr(kafka, "committed_offsets", lambda c, t, ps: dict.fromkeys(ps, 5))
    monkeypatch.setattr(kafka, "end_offsets", lambda c, t, ps: dict.fromkeys(ps, 7))
    monkeypatch.setattr(status_module, "read_statuses", lambda *a, **k: state["statuses"])
    return state


@pytest.fixture
def plan() -> Plan:
    return build_plan(load_pipeline(HOURLY))


ALL_TASKS = ("flights:0", "flights:1", "by-origin:0", "by-origin:1")


def test_status_skips_the_group_description_when_fresh_records_list_every_task(
    broker: dict[str, Any], plan: Plan, tmp_path: Path
) -> None:
    one = process(1, tasks=tuple(TaskRow(t, in_per_s=3.0) for t in ALL_TASKS[:2]))
    two = process(2, host="h2", tasks=tuple(TaskRow(t, watermark_ms=T) for t in ALL_TASKS[2:]))
    broker["statuses"] = [one, two]
    rows = {r.task: r for r in task_statuses(plan, "b:9092", str(tmp_path), now_ms=NOW)}
    assert broker["described"] == 0
    assert [rows[t].owner for t in ALL_TASKS] == ["h1:1", "h1:1", "h2:2", "h2:2"]
    assert rows["flights:0"].in_per_s == 3.0 and rows["by-origin:1"].watermark_ms == T
    assert rows["flights:0"].lag == 2


def test_status_describes_the_group_for_tasks_no_fresh_record_lists(
    broker: dict[str, Any], plan: Plan, tmp_path: Path
) -> None:
    broker["statuses"] = [process(1, tasks=(TaskRow("flights:1"),)), process(2, NOW - 60_000)]
    rows = {r.task: r for r in task_statuses(plan, "b:9092", str(tmp_path), now_ms=NOW)}
    assert broker["described"] == 1
    assert (rows["flights:0"].owner, rows["flights:1"].owner) == ("kstream@member", "h1:1")
    assert rows["by-origin:0"].owner == "-" and rows["by-origin:0"].in_per_s is None
    broker["statuses"] = []  # the job is not running: the description, as before
    task_statuses(plan, "b:9092", str(tmp_path), now_ms=NOW)
    assert broker["described"] == 2
