"""Calls into a client library that must not block the job past a bounded time.

librdkafka's transactional calls take a timeout, but one has been seen to hang anyway: after the
broker's connections dropped for about 10 s, ``send_offsets_to_transaction`` did not return for
more than 13 minutes (issue 17). :func:`call_with_deadline` runs such a call on a daemon thread
and gives up waiting after a deadline; the caller then abandons the client (its thread may stay
blocked) and rewinds to its last checkpoint with a new one, which fences the old.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class DeadlineExceeded(Exception):
    """The call did not return within its deadline (it may still be running)."""


def call_with_deadline(fn: Callable[..., T], *args: Any, deadline_s: float) -> T:
    """``fn(*args)``, waiting at most ``deadline_s`` seconds for it.

    Returns:
        what ``fn`` returned.

    Raises:
        DeadlineExceeded: ``fn`` was still running after ``deadline_s`` seconds.
        Exception: whatever ``fn`` raised, re-raised in the caller's thread.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:  # re-raised below, in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=run, name=f"deadline:{getattr(fn, '__name__', fn)}")
    worker.daemon = True
    worker.start()
    worker.join(deadline_s)
    if worker.is_alive():
        raise DeadlineExceeded(f"{getattr(fn, '__name__', fn)} did not return in {deadline_s} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
