"""Test-only fault points and hooks, set through environment variables; without them every
point is a no-op.

- ``KSTREAM_FAULT=<point>[:<n>]`` makes the process SIGKILL itself the n-th time (default 1st)
  it reaches ``<point>``. Points: the checkpoint steps (``flush_outputs``,
  ``produce_changelog``, ``send_offsets``, ``write_prepared``, ``commit``, ``apply_local``),
  the restore steps (``restore_start``, ``restore_changelog``, ``restore_done``),
  ``savepoint_write``, and ``source_offset`` whose ``<n>`` is a source offset: the process is
  killed before it processes the batch of source records that holds offset n (any partition).
  ``end_slice`` is reached before each slice of a task's end of input.
- ``KSTREAM_END_SLICE=<n>``: timers or keys per slice of the end of input (default
  :data:`kstream.runtime.activation.END_SLICE`), so a small input ends in many slices.
- ``KSTREAM_HOLD_AT=<n>``: source tasks process records up to offset n - 1 and then hold (their
  partition is paused) until the job is stopped, so a stop-with-savepoint lands exactly at
  position n of every source partition that has that many records.
"""

from __future__ import annotations

import os
import signal

_SPEC = os.environ.get("KSTREAM_FAULT", "")
_NAME, _, _NTH = _SPEC.partition(":")
_COUNT = {"n": 0}
_HOLD = os.environ.get("KSTREAM_HOLD_AT", "")
#: Source offset at which source tasks hold (``KSTREAM_HOLD_AT``), or None.
HOLD_AT: int | None = int(_HOLD) if _HOLD else None
_END_SLICE = os.environ.get("KSTREAM_END_SLICE", "")
#: Timers or keys per slice of the end of input (``KSTREAM_END_SLICE``), or None.
END_SLICE: int | None = int(_END_SLICE) if _END_SLICE else None
#: Whether a hook on source batches is armed (the runner skips them all otherwise).
SOURCE_HOOKS = HOLD_AT is not None or _NAME == "source_offset"


def point(name: str) -> None:
    """Reach fault point ``name`` (kills the process when it is the armed one)."""
    if _NAME and name == _NAME:
        _COUNT["n"] += 1
        if _COUNT["n"] >= int(_NTH or "1"):
            _kill()


def source_batch(first_offset: int, last_offset: int) -> None:
    """A source task is about to process offsets ``first_offset..last_offset`` (inclusive):
    kills the process when ``KSTREAM_FAULT=source_offset:<n>`` names one of them."""
    if _NAME == "source_offset" and first_offset <= int(_NTH) <= last_offset:
        _kill()


def _kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
