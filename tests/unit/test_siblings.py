"""The markers through which the children of ``kstream run --processes N`` join the group
together and, bounded, leave it together (kstream.runtime.siblings)."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from kstream.runtime.siblings import Siblings, siblings_from


def test_the_environment_text_round_trips_a_directory_with_spaces(tmp_path: Path) -> None:
    siblings = Siblings(tmp_path / "work dir", 2, 3)
    assert Siblings.parse(siblings.encode()) == siblings
    assert siblings_from(siblings.encode()) == siblings
    assert siblings_from(None) is None and siblings_from("") is None


def test_a_malformed_text_is_ignored_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert siblings_from("two of three") is None
    assert "malformed siblings" in caplog.text


def test_the_rendezvous_waits_for_the_last_sibling(tmp_path: Path) -> None:
    first, second = Siblings(tmp_path, 1, 2), Siblings(tmp_path, 2, 2)
    arrived: list[float] = []
    waiter = threading.Thread(target=lambda: arrived.append(first.rendezvous(timeout_s=10)))
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive(), "the first child went on before its sibling was ready"
    assert second.rendezvous(timeout_s=10) is True
    waiter.join(5)
    assert arrived == [True]


def test_the_rendezvous_gives_up_after_its_timeout(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        assert Siblings(tmp_path, 1, 2).rendezvous(timeout_s=0.1) is False
    assert time.monotonic() - started >= 0.1
    assert "joining without them" in caplog.text


def test_a_restarted_child_finds_its_siblings_ready_and_forgets_its_old_done(
    tmp_path: Path,
) -> None:
    first, second = Siblings(tmp_path, 1, 2), Siblings(tmp_path, 2, 2)
    (tmp_path / "ready-1").touch()
    assert second.all_done(True) is False  # done before it died
    assert second.rendezvous(timeout_s=0.1) is True  # restarted: the sibling is ready
    assert first.all_done(True) is False, "the restarted child's old done marker counted"


def test_the_run_ends_when_every_sibling_is_done_and_not_before(tmp_path: Path) -> None:
    first, second = Siblings(tmp_path, 1, 2), Siblings(tmp_path, 2, 2)
    assert first.all_done(True) is False
    assert second.all_done(False) is False
    # the sibling was given unfinished partitions back: the first one's marker follows too
    assert first.all_done(False) is False
    assert first.all_done(True) is False
    assert second.all_done(True) is True
    assert first.all_done(True) is True
