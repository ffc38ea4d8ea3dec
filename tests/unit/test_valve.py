"""The watermark valve, case by case as Flink's ``StatusWatermarkValveTest``.

Timelines read left to right; ``ch<i>`` is an input channel, ``-`` nothing, a number a
watermark fed to the channel, ``I`` / ``A`` a status fed (idle / active), ``out`` the output
watermark after that step (``.`` when unchanged).
"""

from __future__ import annotations

import random

from kstream.time.valve import MAX_WATERMARK, MIN_WATERMARK, ChannelStatus, WatermarkValve


def outputs(valve: WatermarkValve[int], steps: list[tuple[int, int | str]]) -> list[int]:
    """Feed ``(channel, watermark | "idle" | "active")`` steps; the output after each."""
    out = []
    for channel, what in steps:
        if what == "idle":
            out.append(valve.input_status(channel, active=False))
        elif what == "active":
            out.append(valve.input_status(channel, active=True))
        else:
            assert isinstance(what, int)
            out.append(valve.input_watermark(channel, what))
    return out


# -- one channel ------------------------------------------------------------------------------


def test_single_input_increasing_watermarks() -> None:
    """Flink testSingleInputIncreasingWatermarks: the output follows the only channel."""
    valve: WatermarkValve[int] = WatermarkValve(1)
    assert outputs(valve, [(0, 0), (0, 25)]) == [0, 25]


def test_single_input_decreasing_watermarks_do_not_regress() -> None:
    """Flink testSingleInputDecreasingWatermarksYieldsNoOutput::

    ch0  25  18  42
    out  25   .  42
    """
    valve: WatermarkValve[int] = WatermarkValve(1)
    assert outputs(valve, [(0, 25), (0, 18), (0, 42)]) == [25, 25, 42]
    assert valve.channel(0).watermark == 42


def test_single_input_status_toggling() -> None:
    """Flink testSingleInputWatermarkStatusToggling: channels start active; only changes count;
    the valve is idle while its only channel is."""
    valve: WatermarkValve[int] = WatermarkValve(1)
    valve.input_status(0, active=True)
    assert not valve.idle and valve.channel(0).active
    valve.input_status(0, active=False)
    assert valve.idle
    valve.input_status(0, active=False)
    assert valve.idle
    valve.input_status(0, active=True)
    assert not valve.idle
    assert valve.output == MIN_WATERMARK  # status changes alone never move the output


def test_single_input_watermark_intact_during_idleness() -> None:
    """Flink testSingleInputWatermarksIntactDuringIdleness: an idle channel ignores watermarks::

    ch0  25  I  50  A  50
    out  25  .   .  .  50
    """
    valve: WatermarkValve[int] = WatermarkValve(1)
    got = outputs(valve, [(0, 25), (0, "idle"), (0, 50), (0, "active"), (0, 50)])
    assert got == [25, 25, 25, 25, 50]


# -- several channels -------------------------------------------------------------------------


def test_output_waits_for_every_expected_channel() -> None:
    """Flink testMultipleInputYieldsWatermarkOnlyWhenAllChannelsReceivesWatermarks: a channel
    not heard from is active at the minimum and holds the output there."""
    valve: WatermarkValve[int] = WatermarkValve(3)
    assert outputs(valve, [(0, 0), (1, 0)]) == [MIN_WATERMARK, MIN_WATERMARK]
    assert not valve.idle
    assert outputs(valve, [(2, 0)]) == [0]


def test_output_is_the_min_over_channels() -> None:
    """Flink testMultipleInputIncreasingWatermarks::

    ch0   0  12   .   .   .   .  20
    ch1   0   .   .   .  15   .   .
    ch2   0   .   8  10   .  17   .
    out   0   .   .   .  10  12  15
    """
    valve: WatermarkValve[int] = WatermarkValve(3)
    steps: list[tuple[int, int | str]] = [(0, 0), (1, 0), (2, 0), (0, 12), (2, 8), (2, 10)]
    assert outputs(valve, steps) == [MIN_WATERMARK, MIN_WATERMARK, 0, 0, 0, 0]
    assert outputs(valve, [(1, 15), (2, 17), (0, 20)]) == [10, 12, 15]


def test_decreasing_watermarks_never_regress_the_output() -> None:
    """Flink testMultipleInputDecreasingWatermarksYieldsNoOutput: out 10, then lower inputs on
    every channel leave it (and the channels) where they are."""
    valve: WatermarkValve[int] = WatermarkValve(3)
    assert outputs(valve, [(0, 25), (1, 10), (2, 17)])[-1] == 10
    assert outputs(valve, [(0, 12), (1, 8), (2, 15)]) == [10, 10, 10]
    assert [valve.channel(c).watermark for c in range(3)] == [25, 10, 17]


def test_valve_is_idle_only_when_every_channel_is() -> None:
    """Flink testMultipleInputWatermarkStatusToggling."""
    valve: WatermarkValve[int] = WatermarkValve(2)
    valve.input_status(0, active=True)
    valve.input_status(1, active=True)
    valve.input_status(1, active=False)
    assert not valve.idle
    valve.input_status(0, active=False)
    assert valve.idle
    valve.input_status(1, active=True)
    assert not valve.idle


def test_idle_channel_is_left_out_of_the_min() -> None:
    """Flink testMultipleInputWatermarkAdvancingWithPartiallyIdleChannels::

    ch0  15   .   .   .  20
    ch1   .  10   .  18   .
    ch2   .   .   I   .   .
    out   -   -  10  15  18
    """
    valve: WatermarkValve[int] = WatermarkValve(3)
    got = outputs(valve, [(0, 15), (1, 10), (2, "idle"), (1, 18), (0, 20)])
    assert got == [MIN_WATERMARK, MIN_WATERMARK, 10, 15, 18]


def test_output_advances_as_channels_become_idle_one_by_one() -> None:
    """Flink testMultipleInputWatermarkAdvancingAsChannelsIndividuallyBecomeIdle: the channel
    holding the output goes idle, the output moves to the next min::

    ch0  25   .   .   .
    ch1   .  10   I   .
    ch2   .   .  17   I
    out  10 (after all three)  17  25
    """
    valve: WatermarkValve[int] = WatermarkValve(3)
    assert outputs(valve, [(0, 25), (1, 10), (2, 17)])[-1] == 10
    assert outputs(valve, [(1, "idle"), (2, "idle")]) == [17, 25]
    assert not valve.idle


def test_all_idle_flushes_the_max_watermark() -> None:
    """Flink testMultipleInputFlushMaxWatermarkAndWatermarkStatusOnceAllInputsBecomeIdle (case
    2): once every channel is idle, the output advances to the max over the channels::

    ch0  10   I   .   .
    ch1   5   .   I   .
    ch2   3   .   .   I
    out   3   .   .  10      (idle)
    """
    valve: WatermarkValve[int] = WatermarkValve(3)
    assert outputs(valve, [(0, 10), (1, 5), (2, 3)])[-1] == 3
    assert outputs(valve, [(0, "idle"), (1, "idle")]) == [3, 3]
    assert outputs(valve, [(2, "idle")]) == [10]
    assert valve.idle


def test_returning_channel_behind_stays_unaligned_until_it_catches_up() -> None:
    """Flink testMultipleInputWatermarkRealignmentAfterResumeActive (case 1): a channel active
    again below the output is left out (it does not hold the output back) until its own
    watermark reaches the output::

    ch0  10   .   .   .   .   .
    ch1   7   .   .   .   .  12
    ch2   3   I   A   5   9   .
    out   3   7   .   .   .   9      ch2 unaligned from A to 9 (>= 7), then counts again
    """
    valve: WatermarkValve[int] = WatermarkValve(3)
    assert outputs(valve, [(0, 10), (1, 7), (2, 3)])[-1] == 3
    assert outputs(valve, [(2, "idle")]) == [7]
    assert outputs(valve, [(2, "active")]) == [7]
    assert not valve.channel(2).aligned
    assert outputs(valve, [(2, 5)]) == [7]  # accepted, but no output
    assert valve.channel(2).watermark == 5 and not valve.channel(2).aligned
    assert outputs(valve, [(2, 9)]) == [7]
    assert valve.channel(2).aligned
    assert outputs(valve, [(1, 12)]) == [9]  # ch2 holds the min again


def test_unaligned_channel_does_not_hold_the_output_back() -> None:
    """Case 1 seen from the other channels: while ch1 catches up, ch0 alone drives the output::

    ch0  20   .   .  30  40   .   .
    ch1   .   I   .   .   .   .   .
    ch1   .   .  A,5  .   .  35  45
    out   -  20   .  30  40   .  40     ch1 aligned at 45 (>= 40): min(40, 45)
    """
    valve: WatermarkValve[int] = WatermarkValve(2)
    steps: list[tuple[int, int | str]] = [(0, 20), (1, "idle"), (1, "active"), (1, 5)]
    assert outputs(valve, steps) == [MIN_WATERMARK, 20, 20, 20]
    assert outputs(valve, [(0, 30), (0, 40), (1, 35)]) == [30, 40, 40]
    assert not valve.channel(1).aligned
    assert outputs(valve, [(1, 45)]) == [40]
    assert valve.channel(1).aligned
    assert outputs(valve, [(0, 50)]) == [45]


def test_no_output_when_every_active_channel_is_unaligned() -> None:
    """Flink testNoOutputWhenAllActiveChannelsAreUnaligned: the only active channel is catching
    up; the output holds (it never jumps to +infinity)."""
    valve: WatermarkValve[int] = WatermarkValve(3)
    outputs(valve, [(0, 10), (1, 7)])
    assert outputs(valve, [(2, "idle")]) == [7]
    assert outputs(valve, [(2, "active"), (0, "idle"), (1, "idle")]) == [7, 7, 7]
    assert not valve.idle


def test_idle_then_active_again_ahead_is_aligned_at_once() -> None:
    """An idle channel whose watermark is still at or above the output when it returns counts
    in the min at once::

    ch0   5   .   .  30
    ch1  20   I   A   .
    out   5   .   .  20
    """
    valve: WatermarkValve[int] = WatermarkValve(2)
    assert outputs(valve, [(0, 5), (1, 20), (1, "idle"), (1, "active")]) == [
        MIN_WATERMARK,
        5,
        5,
        5,
    ]
    assert valve.channel(1).aligned
    assert outputs(valve, [(0, 30)]) == [20]


def test_all_idle_flush_needs_the_last_channel_to_hold_the_output() -> None:
    """Flink flushes the max only when the channel going idle last held the output: a last
    channel that was still catching up (unaligned) leaves the output where it is::

    ch0  10   .   .   I   .
    ch1   7   .   .   .   I
    ch2   3   I   A   .   .   I
    out   3   7   .   .   .   .      max is 10, but ch2 (3) never held the output
    """
    valve: WatermarkValve[int] = WatermarkValve(3)
    outputs(valve, [(0, 10), (1, 7), (2, 3), (2, "idle"), (2, "active")])
    got = outputs(valve, [(0, "idle"), (1, "idle"), (2, "idle")])
    assert got == [7, 7, 7]
    assert valve.idle
    assert outputs(valve, [(0, "active"), (0, 11)]) == [7, 11]  # any progress moves it again


def test_channel_beyond_the_expected_ones_joins_unaligned() -> None:
    """A channel the valve was not told about, first heard of after the output moved, is
    treated like one returning behind the output: left out until it catches up."""
    valve: WatermarkValve[int] = WatermarkValve(1)
    assert valve.input_watermark(0, 10) == 10
    assert valve.input_watermark(1, 4) == 10
    assert not valve.channel(1).aligned
    assert outputs(valve, [(0, 20), (1, 15), (0, 30), (1, 25)]) == [20, 20, 30, 30]
    assert outputs(valve, [(1, 35), (0, 40)]) == [30, 35]  # aligned at 35: it counts


def test_channels_are_any_hashable_id() -> None:
    valve: WatermarkValve[tuple[str, int]] = WatermarkValve(2)
    valve.input_watermark(("in", 0), 4)
    assert valve.input_watermark(("in", 1), 9) == 4
    assert set(valve.channels) == {("in", 0), ("in", 1)}


# -- finished channels (end of input) ---------------------------------------------------------


def test_finished_channel_never_holds_the_min_and_all_finished_is_max() -> None:
    """A finished channel is left out for good; every channel finished: ``MAX_WATERMARK``."""
    valve: WatermarkValve[int] = WatermarkValve(2)
    outputs(valve, [(0, 5), (1, 9)])
    assert valve.finish(0) == 9
    assert outputs(valve, [(0, 1), (0, "active")]) == [9, 9]  # ignored after the end
    assert valve.channel(0) == ChannelStatus(MAX_WATERMARK, False, False, True)
    assert valve.input_watermark(1, 12) == 12
    assert valve.finish(1) == MAX_WATERMARK
    assert valve.finished and not valve.idle


def test_finished_channel_does_not_outrun_idle_ones() -> None:
    """With the others idle, a channel that finishes flushes the max of the idle channels, not
    +infinity (its watermark is not in the all-idle max)::

    ch0   4   .   I        (idle at 4)
    ch1   .   6   .  end
    out   -   4   6   6
    """
    valve: WatermarkValve[int] = WatermarkValve(2)
    assert outputs(valve, [(0, 4), (1, 6), (0, "idle")]) == [MIN_WATERMARK, 4, 6]
    assert valve.finish(1) == 6
    assert valve.idle and not valve.finished
    assert valve.finish(0) == MAX_WATERMARK


def test_finish_of_the_channel_holding_the_output_moves_it_to_the_next_min() -> None:
    valve: WatermarkValve[int] = WatermarkValve(3)
    outputs(valve, [(0, 3), (1, 8), (2, 6)])
    assert valve.finish(0) == 6
    assert valve.finish(2) == 8
    assert valve.finish(1) == MAX_WATERMARK


def test_not_heard_from_channel_blocks_all_finished() -> None:
    valve: WatermarkValve[int] = WatermarkValve(2)
    assert valve.finish(0) == MIN_WATERMARK
    assert not valve.finished
    assert valve.input_watermark(1, 7) == 7


# -- state and invariants ---------------------------------------------------------------------


def test_state_round_trip() -> None:
    valve: WatermarkValve[str] = WatermarkValve(3)
    for step in [("a", 10), ("b", 7), ("c", 3)]:
        valve.input_watermark(*step)
    valve.input_status("c", active=False)
    valve.input_status("c", active=True)
    valve.finish("a")
    copy: WatermarkValve[str] = WatermarkValve(3)
    copy.load_state(valve.to_state())
    assert copy.output == valve.output == 7
    assert dict(copy.channels) == dict(valve.channels)
    assert not copy.channel("c").aligned
    assert copy.input_watermark("c", 8) == valve.input_watermark("c", 8) == 7
    assert copy.input_watermark("b", 20) == 8


def test_random_inputs_keep_the_invariants() -> None:
    """Under any input sequence: the output never regresses; an aligned channel is active and
    at or above the output; an idle channel's watermark does not move."""
    rng = random.Random(11)
    for _ in range(200):
        valve: WatermarkValve[int] = WatermarkValve(3)
        previous = valve.output
        for _ in range(40):
            channel, roll = rng.randrange(4), rng.random()  # 4: one unexpected
            before = valve.channel(channel)
            was_idle, old_wm = not before.active, before.watermark
            if roll < 0.6:
                valve.input_watermark(channel, rng.randrange(0, 100))
                assert not was_idle or valve.channel(channel).watermark == old_wm
            elif roll < 0.97:
                valve.input_status(channel, active=rng.random() < 0.5)
            else:
                valve.finish(channel)
            assert valve.output >= previous
            previous = valve.output
            for status in valve.channels.values():
                assert not status.aligned or (status.active and status.watermark >= valve.output)
