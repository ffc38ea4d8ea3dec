"""kstream.time.timers.TimerService: Flink InternalTimerService semantics (per key and
namespace, deduplicated, timestamp order, fire once) and its checkpointed store entries."""

from __future__ import annotations

import pytest

from kstream.time.timers import (
    EVENT_TIME,
    NEVER,
    PROCESSING_TIME,
    Timer,
    TimerService,
    decode_timer,
    encode_timer,
)


def fire(timers: TimerService, until: int, domain: str = EVENT_TIME) -> list[Timer]:
    """The timers that fire when event time (or processing time) reaches ``until``."""
    fired: list[Timer] = []
    advance = timers.advance_event_time if domain == EVENT_TIME else timers.advance_processing_time
    count = advance(until, lambda *timer: fired.append(timer))
    assert count == len(fired)
    return fired


def test_event_timers_fire_in_time_order_once_when_the_watermark_reaches_them() -> None:
    timers = TimerService()
    timers.register_event_time(300, "b")
    timers.register_event_time(100, "a")
    timers.register_event_time(200, "a", ("w", 1))
    assert timers.next_event_time == 100
    assert fire(timers, 99) == []
    assert fire(timers, 200) == [(100, "a", None), (200, "a", ("w", 1))]
    assert timers.next_event_time == 300
    assert fire(timers, 200) == []  # fired once
    assert fire(timers, 10**6) == [(300, "b", None)]
    assert timers.next_event_time == NEVER


def test_a_timer_is_registered_once_per_key_namespace_and_time() -> None:
    timers = TimerService()
    for _ in range(3):
        timers.register_event_time(100, "k", (0, 100))
    timers.register_event_time(100, "k", (50, 150))  # another namespace
    timers.register_event_time(100, "j", (0, 100))  # another key
    assert len(timers) == 3
    # same timestamp: registration order
    assert fire(timers, 100) == [
        (100, "k", (0, 100)),
        (100, "k", (50, 150)),
        (100, "j", (0, 100)),
    ]


def test_deleting_a_timer_and_one_that_does_not_exist() -> None:
    timers = TimerService()
    timers.register_event_time(100, "k")
    timers.register_event_time(200, "k")
    timers.delete_event_time(100, "k")
    timers.delete_event_time(150, "k")  # nothing there: no error
    assert timers.next_event_time == 200
    assert fire(timers, 1000) == [(200, "k", None)]


def test_a_timer_registered_while_firing_fires_in_the_same_pass_when_due() -> None:
    timers = TimerService()
    timers.register_event_time(100, "k")
    fired = []

    def on_timer(ts: int, key: str, _ns: None) -> None:
        fired.append(ts)
        if ts < 300:
            timers.register_event_time(ts + 100, key)

    assert timers.advance_event_time(500, on_timer) == 3
    assert fired == [100, 200, 300]
    assert timers.next_event_time == NEVER


def test_timers_of_the_firing_timestamp_deleted_or_registered_meanwhile() -> None:
    """Flink: a timer deleted by an earlier timer's callback does not fire; one registered
    for the same timestamp fires after the others of that timestamp."""
    timers = TimerService()
    for key in ("a", "b", "c"):
        timers.register_event_time(100, key)
    fired = []

    def on_timer(_ts: int, key: str, _ns: None) -> None:
        fired.append(key)
        if key == "a":
            timers.delete_event_time(100, "b")
            timers.register_event_time(100, "d")

    timers.advance_event_time(100, on_timer)
    assert fired == ["a", "c", "d"]
    assert len(timers) == 0 and timers.next_event_time == NEVER
    # deleting the last timer of a timestamp and registering it again while firing it
    timers.register_event_time(200, "x")
    timers.register_event_time(200, "y")
    fired = []

    def again(_ts: int, key: str, _ns: None) -> None:
        fired.append(key)
        if key == "x":
            timers.delete_event_time(200, "y")
            timers.register_event_time(200, "y")

    timers.advance_event_time(200, again)
    assert fired == ["x", "y"]


def test_a_bounded_advance_fires_the_first_timers_and_leaves_the_rest_due() -> None:
    """The end of input fires in slices: ``most`` timers per call, in the same order as one
    unbounded call (mid-bucket too)."""
    timers = TimerService()
    for ts, key in [(10, "a"), (10, "b"), (10, "c"), (20, "d"), (30, "e")]:
        timers.register_event_time(ts, key)
    fired: list[Timer] = []
    assert timers.advance_event_time(25, lambda *t: fired.append(t), most=2) == 2
    assert fired == [(10, "a", None), (10, "b", None)] and timers.next_event_time == 10
    assert timers.advance_event_time(25, lambda *t: fired.append(t), most=2) == 2
    assert fired[2:] == [(10, "c", None), (20, "d", None)] and timers.next_event_time == 30
    assert timers.advance_event_time(25, lambda *t: fired.append(t), most=2) == 0
    assert timers.changes() == [(encode_timer(EVENT_TIME, (30, "e", None)), b"\x01")]


def test_processing_time_timers_are_separate_from_event_time() -> None:
    timers = TimerService()
    timers.register_processing_time(1_000, "k")
    timers.register_event_time(1_000, "k")
    assert timers.next_processing_time == 1_000
    assert fire(timers, 999, PROCESSING_TIME) == []
    assert fire(timers, 1_000, PROCESSING_TIME) == [(1_000, "k", None)]
    assert timers.next_processing_time is None
    assert timers.next_event_time == 1_000
    timers.register_processing_time(2_000, "k")
    timers.delete_processing_time(2_000, "k")
    assert timers.next_processing_time is None


def test_negative_times_sort_before_positive_ones_in_the_store() -> None:
    keys = [encode_timer(EVENT_TIME, (ts, "k", None)) for ts in (-(2**62), -1, 0, 1, 2**62)]
    assert keys == sorted(keys)
    for ts in (-(2**62), -1, 0, 2**62):
        raw = encode_timer(PROCESSING_TIME, (ts, ["a", 1], [0, 60_000]))
        assert decode_timer(raw) == (PROCESSING_TIME, (ts, ("a", 1), (0, 60_000)))
    with pytest.raises(ValueError, match="not a timer key"):
        decode_timer(b"x" + bytes(12))


def test_changes_write_each_changed_timer_once_and_skip_short_lived_ones() -> None:
    timers = TimerService()
    timers.register_event_time(100, "a")
    timers.register_event_time(200, "b")
    timers.register_event_time(300, "c")
    timers.delete_event_time(300, "c")  # registered and removed between checkpoints
    first = dict(timers.changes())
    assert first == {
        encode_timer(EVENT_TIME, (100, "a", None)): b"\x01",
        encode_timer(EVENT_TIME, (200, "b", None)): b"\x01",
    }
    assert timers.changes() == []
    assert fire(timers, 100) == [(100, "a", None)]
    timers.register_processing_time(5, "p")
    timers.delete_processing_time(5, "p")
    assert timers.changes() == [(encode_timer(EVENT_TIME, (100, "a", None)), None)]


def test_a_stored_timer_deleted_and_registered_again_is_written_once() -> None:
    timers = TimerService()
    timers.register_event_time(100, "a")
    timers.register_event_time(200, "b")
    timers.changes()  # both stored
    timers.delete_event_time(100, "a")
    timers.register_event_time(100, "a")  # back before the next checkpoint: one put
    timers.delete_event_time(200, "b")
    timers.register_event_time(200, "b")
    timers.delete_event_time(200, "b")  # gone again: one delete
    timers.register_event_time(300, "c")
    timers.delete_event_time(300, "c")
    timers.register_event_time(300, "c")  # registered twice, never stored: one put
    changes = timers.changes()
    assert len(changes) == 3 and dict(changes) == {
        encode_timer(EVENT_TIME, (200, "b", None)): None,
        encode_timer(EVENT_TIME, (100, "a", None)): b"\x01",
        encode_timer(EVENT_TIME, (300, "c", None)): b"\x01",
    }
    assert timers.changes() == []
    assert fire(timers, 1_000) == [(100, "a", None), (300, "c", None)]
    assert sorted(v is None for _k, v in timers.changes()) == [True, True]


def test_restore_replaces_the_timers_with_the_stored_ones() -> None:
    timers = TimerService()
    timers.register_event_time(100, "a", (0, 101))
    timers.register_processing_time(7, "b")
    stored = {k: v for k, v in timers.changes() if v is not None}
    other = TimerService()
    other.register_event_time(50, "x")
    assert other.restore(stored.items()) == 2
    assert other.changes() == []  # restored timers are in the store already
    assert list(other.event_timers()) == [(100, "a", (0, 101))]
    assert list(other.processing_timers()) == [(7, "b", None)]
    assert other.next_event_time == 100
    fire(other, 100)
    assert other.changes() == [(encode_timer(EVENT_TIME, (100, "a", (0, 101))), None)]
