"""The built-in function of a ``dedup`` item (docs/pipeline.md, "dedup"): per key, the first
record of each interval of ``within`` milliseconds of event time.

It runs as a process function (:class:`~kstream.operators.process.ProcessNode`) after a
``key_by``, with one value state, ``kept`` (the timestamp of the key's last kept record, epoch
ms) under an event-time TTL of ``within``: the state is checkpointed, restored and saved like
any process state, and an entry leaves the state once the watermark passes ``kept + within``.

A record of timestamp ``ts`` is

- a **duplicate** (dropped) when the key holds ``kept`` with ``|ts - kept| < within``;
- **late** (sent to port ``late``, dropped when nothing reads it) otherwise when
  ``ts + within <= watermark``: the kept record it might duplicate may already have expired, so
  it can be told neither kept nor dropped with certainty;
- **kept** (emitted on ``main``) otherwise; it becomes ``kept`` when it is later than the
  current one (an out-of-order record kept earlier than ``kept`` leaves it).
"""

from __future__ import annotations

from typing import Any

from kstream.api import Context, ProcessFunction
from kstream.pipeline.process_item import DEDUP_STATE


class Dedup(ProcessFunction):
    """Keep a key's first record per ``within_ms`` of event time (see the module docstring).

    Args:
        within_ms: the interval, ms (positive).
    """

    def __init__(self, within_ms: int) -> None:
        self.within = within_ms
        self.kept: Any = None

    def open(self, ctx: Context) -> None:
        self.kept = ctx.state(DEDUP_STATE)

    def process(self, value: Any, ctx: Context) -> None:
        ts = int(ctx.timestamp or 0)  # always set in process()
        kept = self.kept.value()
        if kept is not None and abs(ts - kept) < self.within:
            return
        if ts + self.within <= ctx.watermark:
            ctx.emit(value, port="late")
            return
        if kept is None or ts > kept:
            self.kept.update(ts)
        ctx.emit(value)
