"""kstream.io.deadline.call_with_deadline: a hung client call gives up waiting, without a hang."""

from __future__ import annotations

import threading
import time

import pytest

from kstream.io.deadline import DeadlineExceeded, call_with_deadline


def test_returns_the_value() -> None:
    assert call_with_deadline(lambda a, b: a + b, 2, 3, deadline_s=5) == 5


def test_reraises_in_the_caller() -> None:
    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        call_with_deadline(fail, deadline_s=5)


def test_a_hung_call_is_abandoned_after_the_deadline() -> None:
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded, match=r"wait did not return in 0\.2 s"):
        call_with_deadline(release.wait, deadline_s=0.2)
    assert time.monotonic() - started < 5
    release.set()  # the abandoned thread ends by itself
