"""Test-only fault points. ``KSTREAM_FAULT=<point>[:<n>]`` makes the process SIGKILL itself the
n-th time (default 1st) it reaches ``<point>``; without the variable every point is a no-op.

Points: the checkpoint steps (``flush_outputs``, ``produce_changelog``, ``send_offsets``,
``write_prepared``, ``commit``, ``apply_local``) and restore steps (``restore_start``,
``restore_changelog``, ``restore_done``).
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("KSTREAM_FAULT", "")
_NAME, _, _NTH = _SPEC.partition(":")
_COUNT = {"n": 0}


def point(name: str) -> None:
    """Reach fault point ``name`` (kills the process when it is the armed one)."""
    if _NAME and name == _NAME:
        _COUNT["n"] += 1
        if _COUNT["n"] >= int(_NTH or "1"):
            os.kill(os.getpid(), signal.SIGKILL)
