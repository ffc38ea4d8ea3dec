"""kstream.time.timers.TimerService: Flink InternalTimerService semantics (per key and
namespace, deduplicated, timestamp order, fire once) and its checkpointed store entries."""

from __future__ import annotations

import pytest

from kstream.time.timers import (
    EVENT_TIME,
    NEVER,
    PROCESSING_TIME,
    TimerService,
    decode_timer,
    encode_timer,
)


def test_event_timers_fire_in_time_order_once_when_the_watermark_reaches_them() -> None:
    timers = TimerService()
    timers.register_event_time(300, "b")
    timers.register_event_time(100, "a")
    timers.register_event_time(200, "a", ("w", 1))
    assert timers.next_event_time == 100
    assert list(timers.due_event_time(99)) == []
    assert list(timers.due_event_time(200)) == [(100, "a", None), (200, "a", ("w", 1))]
    assert timers.next_event_time == 300
    assert list(timers.due_event_time(200)) == []  # fired once
    assert list(timers.due_event_time(10**6)) == [(300, "b", None)]
    assert timers.next_event_time == NEVER


def test_a_timer_is_registered_once_per_key_namespace_and_time() -> None:
    timers = TimerService()
    for _ in range(3):
        timers.register_event_time(100, "k", (0, 100))
    timers.register_event_time(100, "k", (50, 150))  # another namespace
    timers.register_event_time(100, "j", (0, 100))  # another key
    assert len(timers) == 3
    # same timestamp: registration order
    assert list(timers.due_event_time(100)) == [
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
    assert list(timers.due_event_time(1000)) == [(200, "k", None)]


def test_a_timer_registered_while_firing_fires_in_the_same_pass_when_due() -> None:
    timers = TimerService()
    timers.register_event_time(100, "k")
    fired = []
    for ts, key, _ns in timers.due_event_time(500):
        fired.append(ts)
        if ts < 300:
            timers.register_event_time(ts + 100, key)
    assert fired == [100, 200, 300]
    assert timers.next_event_time == NEVER


def test_timers_of_the_firing_timestamp_deleted_or_registered_meanwhile() -> None:
    """Flink: a timer deleted by an earlier timer's callback does not fire; one registered
    for the same timestamp fires after the others of that timestamp."""
    timers = TimerService()
    for key in ("a", "b", "c"):
        timers.register_event_time(100, key)
    fired = []
    for _ts, key, _ns in timers.due_event_time(100):
        fired.append(key)
        if key == "a":
            timers.delete_event_time(100, "b")
            timers.register_event_time(100, "d")
    assert fired == ["a", "c", "d"]
    assert len(timers) == 0 and timers.next_event_time == NEVER
    # deleting the last timer of a timestamp and registering it again while firing it
    timers.register_event_time(200, "x")
    timers.register_event_time(200, "y")
    fired = []
    for _ts, key, _ns in timers.due_event_time(200):
        fired.append(key)
        if key == "x":
            timers.delete_event_time(200, "y")
            timers.register_event_time(200, "y")
    assert fired == ["x", "y"]


def test_processing_time_timers_are_separate_from_event_time() -> None:
    timers = TimerService()
    timers.register_processing_time(1_000, "k")
    timers.register_event_time(1_000, "k")
    assert timers.next_processing_time == 1_000
    assert list(timers.due_processing_time(999)) == []
    assert list(timers.due_processing_time(1_000)) == [(1_000, "k", None)]
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
    assert list(timers.due_event_time(100)) == [(100, "a", None)]
    timers.register_processing_time(5, "p")
    timers.delete_processing_time(5, "p")
    assert timers.changes() == [(encode_timer(EVENT_TIME, (100, "a", None)), None)]


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
    list(other.due_event_time(100))
    assert other.changes() == [(encode_timer(EVENT_TIME, (100, "a", (0, 101))), None)]
