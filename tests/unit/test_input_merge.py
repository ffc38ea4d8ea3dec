"""InputMerger: a task's inputs taken lowest Kafka timestamp first (ties: the input declared
first), waiting in bounded runs for an input known to hold more records, and ending an input
right after its last record before the end offset.

    input 0:  ts 1   4   4   9
    input 1:  ts   2 4     8
    order:    1 2 4(0) 4(0) 4(1) 8 9
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kstream.runtime.merge import InputMerger


@dataclass
class Msg:
    ts: int
    off: int
    marker: bool = False

    def timestamp(self) -> tuple[int, int]:
        return (1, self.ts)

    def value(self) -> bytes | None:
        return None if self.marker else b"{}"

    def offset(self) -> int:
        return self.off


@dataclass
class FakeInput:
    index: int
    taken: list[tuple[int, int, int]]
    position: int | None = None
    end_offset: int | None = None
    eof_offset: int | None = None
    finished: bool = False
    stopped_by: str | None = None
    chunks: list[int] = field(default_factory=list)
    kind: str = "source"

    def process(self, msgs: list[Any]) -> None:
        self.chunks.append(len(msgs))
        self.taken.extend((m.ts, self.index, m.off) for m in msgs)
        self.position = msgs[-1].offset() + 1


def msgs(*times: int) -> list[Msg]:
    return [Msg(ts, off) for off, ts in enumerate(times)]


def merger(ends: tuple[int | None, int | None] = (None, None)) -> tuple[InputMerger, list[Any]]:
    taken: list[tuple[int, int, int]] = []
    inputs = [FakeInput(0, taken, end_offset=ends[0]), FakeInput(1, taken, end_offset=ends[1])]
    ended: list[int] = []

    def on_end(source: Any) -> None:
        source.finished = True
        ended.append(source.index)

    m = InputMerger(inputs, on_end)  # type: ignore[arg-type]
    return m, [inputs, taken, ended]


def test_lowest_timestamp_first_and_ties_to_the_first_input() -> None:
    m, (inputs, taken, _) = merger()
    m.add(inputs[0], msgs(1, 4, 4, 9))
    m.add(inputs[1], msgs(2, 4, 8))
    m.drain()
    assert [(ts, i) for ts, i, _ in taken] == [
        (1, 0),
        (2, 1),
        (4, 0),
        (4, 0),
        (4, 1),
        (8, 1),
        (9, 0),
    ]
    assert inputs[0].chunks == [1, 2, 1]  # runs before the other input's next record


def test_without_known_ends_what_is_buffered_is_taken() -> None:
    m, (inputs, taken, _) = merger()
    m.add(inputs[0], msgs(5, 6))
    m.drain()
    assert [ts for ts, _, _ in taken] == [5, 6]


def test_a_bounded_merge_waits_for_an_input_known_to_hold_records() -> None:
    m, (inputs, taken, ended) = merger(ends=(2, 2))
    m.add(inputs[0], msgs(5, 6))
    m.drain()
    assert taken == []  # input 1 holds records not fetched yet
    m.add(inputs[1], msgs(1, 7))
    m.drain()
    assert [(ts, i) for ts, i, _ in taken] == [(1, 1), (5, 0), (6, 0), (7, 1)]
    assert ended == [0, 1]  # each right after its last record


def test_a_transactional_input_ends_at_its_eof_once_its_records_are_taken() -> None:
    """Input 0's partition ends with a commit marker: records at offsets 0 and 1, the marker
    at 2, end offset 3. Its EOF (3) comes while both records wait behind input 1's later
    one; they are taken before input 0 ends, and then it no longer holds input 1 back
    (input 1's record goes at once, without waiting for a next record of input 0).

        input 0:  [r ts5][r ts6][commit]|end 3      eof 3
        input 1:  [r ts7] ............. |end 2      (its second record not fetched yet)
    """
    m, (inputs, taken, ended) = merger(ends=(3, 2))
    m.add(inputs[0], msgs(5, 6))
    inputs[0].eof_offset = 3
    assert not m.read_to_end(inputs[0])  # delivered to the end, not yet taken
    m.drain()
    assert taken == []  # input 1 holds records not fetched yet
    m.add(inputs[1], msgs(7))
    m.drain()
    assert [(ts, i) for ts, i, _ in taken] == [(5, 0), (6, 0), (7, 1)]
    assert ended == [0] and inputs[0].position == 2  # position stops short of the marker
    m.add(inputs[1], [Msg(9, 1)])
    m.drain()
    assert [(ts, i) for ts, i, _ in taken] == [(5, 0), (6, 0), (7, 1), (9, 1)]
    assert ended == [0, 1]


def test_without_its_eof_an_input_short_of_its_end_offset_still_waits() -> None:
    m, (inputs, taken, _) = merger(ends=(3, None))
    m.add(inputs[0], msgs(5, 6))
    m.drain()
    assert not m.read_to_end(inputs[0])
    m.add(inputs[1], msgs(8))
    m.drain()
    assert [(ts, i) for ts, i, _ in taken] == [(5, 0), (6, 0)]  # 8 waits for input 0's next
    inputs[0].eof_offset = 3
    m.drain()
    assert [(ts, i) for ts, i, _ in taken] == [(5, 0), (6, 0), (8, 1)]


def test_records_at_or_past_the_end_offset_are_not_taken() -> None:
    m, (inputs, taken, ended) = merger(ends=(1, 0))
    inputs[1].finished = True  # an empty partition ends at once
    m.add(inputs[0], msgs(3, 4, 5))
    m.drain()
    assert [ts for ts, _, _ in taken] == [3]
    assert ended == [0]


def test_a_stopped_input_is_not_taken_from() -> None:
    m, (inputs, taken, _) = merger()
    m.add(inputs[0], msgs(1))
    inputs[1].stopped_by = "sp-1"
    m.add(inputs[1], msgs(0))
    m.drain()
    assert [(ts, i) for ts, i, _ in taken] == [(1, 0)]


def test_markers_at_the_head_of_a_repartition_input_do_not_order_the_inputs() -> None:
    """A watermark marker's Kafka timestamp is the writer's wall clock: taken at once, it must
    not make its input look far ahead (the other input would run past it)."""
    taken: list[tuple[int, int, int]] = []
    a, b = FakeInput(0, taken, kind="repartition"), FakeInput(1, taken, kind="repartition")
    merge = InputMerger([a, b], lambda source: None)
    merge.add(a, [Msg(10**12, 0, marker=True), Msg(5, 1), Msg(10**12, 2, marker=True), Msg(30, 3)])
    merge.add(b, [Msg(10, 0), Msg(20, 1), Msg(40, 2)])
    merge.drain()
    got = [(ts, i) for ts, i, _ in taken]
    assert got == [(10**12, 0), (5, 0), (10**12, 0), (10, 1), (20, 1), (30, 0), (40, 1)]


def test_a_bounded_merge_waits_for_a_repartition_input_that_has_not_ended() -> None:
    taken: list[tuple[int, int, int]] = []
    a, b = FakeInput(0, taken, kind="repartition"), FakeInput(1, taken, kind="repartition")
    merge = InputMerger([a, b], lambda source: None)
    merge.bounded = True
    merge.add(a, msgs(5, 6))
    merge.drain()
    assert taken == []  # b may still bring earlier records
    merge.add(b, msgs(1))
    merge.drain()
    assert [(ts, i) for ts, i, _ in taken] == [(1, 1)]
    b.finished = True
    merge.drain()
    assert [(ts, i) for ts, i, _ in taken] == [(1, 1), (5, 0), (6, 0)]


def test_one_drain_takes_at_most_its_budget_and_says_more_are_ready() -> None:
    """What piled up while a bounded merge waited is taken a budget at a time, in the same
    order as in one step (the runtime polls and checkpoints in between)."""
    m, (inputs, taken, _) = merger()
    m.add(inputs[0], msgs(*range(0, 24, 2)))  # 12 records
    m.add(inputs[1], msgs(*range(1, 8, 2)))  # 4 records
    assert m.drain(budget=5) is True and m.more
    assert len(taken) == 5
    while m.drain(budget=5):
        assert len(taken) % 5 == 0
    assert not m.more
    assert [ts for ts, _, _ in taken] == [*range(0, 8), *range(8, 24, 2)]
    assert m.buffered(inputs[0]) == m.buffered(inputs[1]) == 0


def test_a_drain_that_waits_is_not_more() -> None:
    m, (inputs, taken, _) = merger(ends=(9, 9))
    m.add(inputs[0], msgs(*range(9)))
    assert m.drain(budget=3) is False and not m.more  # input 1 holds records not fetched
    assert taken == []
    assert m.buffered(inputs[0]) == 9
