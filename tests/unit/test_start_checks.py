"""The checks a run makes about its consumer group: a savepoint restored into a group with
progress, and a bounded rerun of a group that has read its sources to the end."""

from __future__ import annotations

import pytest

from kstream.errors import StateError
from kstream.runtime.start_checks import check_restore_target, finished_group_note

REF = "hourly@1700000000000/abcdef"


def test_a_group_without_committed_offsets_is_seeded() -> None:
    assert check_restore_target({}, [], REF, "g2", force=False) == "new"


def test_a_group_with_progress_is_refused_with_the_way_out() -> None:
    committed = {("flights", p): 1000 * (p + 1) for p in range(4)}
    with pytest.raises(StateError) as err:
        check_restore_target(committed, [], REF, "g1", force=False)
    message = str(err.value)
    assert "'g1' already has committed offsets (flights:0 at 1,000" in message
    assert ", ...)" in message  # 4 partitions, 3 shown
    assert "--group NEW-GROUP" in message and "--force" in message
    assert "\n" not in message  # the CLI shows one line


def test_force_applies_the_savepoint_to_a_group_with_progress() -> None:
    assert check_restore_target({("flights", 0): 5}, [], REF, "g1", force=True) == "forced"


def test_a_restore_of_the_same_savepoint_continues_without_force() -> None:
    restores = [{"type": "restore", "savepoint": REF, "created_ms": 1}]
    assert check_restore_target({("flights", 0): 5}, restores, REF, "g2", False) == "continue"


def test_a_group_seeded_from_another_savepoint_is_refused() -> None:
    restores = [
        {"type": "restore", "savepoint": REF, "created_ms": 1},
        {"type": "restore", "savepoint": "other@2/x", "created_ms": 2},
    ]
    with pytest.raises(StateError):
        check_restore_target({("flights", 0): 5}, restores, REF, "g2", force=False)


def test_a_rerun_of_a_finished_group_says_how_to_start_over() -> None:
    ends = {("flights", 0): 84_000, ("flights", 1): 90_000, ("flights", 2): 0}
    note = finished_group_note("hourly", dict(ends), ends)
    assert note is not None
    assert "'hourly' has already read flights to the end" in note
    assert "all 3 partitions" in note and "--group hourly-2" in note


def test_no_note_when_something_was_left_to_read_or_the_input_is_empty() -> None:
    ends = {("flights", 0): 84_000, ("flights", 1): 90_000}
    assert finished_group_note("g", {("flights", 0): 84_000, ("flights", 1): 0}, ends) is None
    assert finished_group_note("g", {("flights", 0): 0}, {("flights", 0): 0}) is None
    assert finished_group_note("g", {}, ends) is None
