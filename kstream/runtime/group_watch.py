"""The consumer's group join state, from librdkafka statistics: a member stuck outside the
steady state rejoins the group."""

from __future__ import annotations

import time

import orjson

#: seconds outside the "steady" group join state before the consumer rejoins
STUCK_JOIN_S = 30.0


class GroupWatch:
    """Tracks the consumer's group join state from librdkafka statistics (JSON every 2 s)."""

    def __init__(self, stuck_after_s: float = STUCK_JOIN_S) -> None:
        self.stuck_after_s = stuck_after_s
        self.reset()

    def reset(self) -> None:
        self.state = "init"
        self.since = time.monotonic()

    def on_stats(self, stats_json: str) -> None:
        try:
            state = str(orjson.loads(stats_json).get("cgrp", {}).get("join_state", "steady"))
        except (orjson.JSONDecodeError, AttributeError):
            return
        if state != self.state:
            self.state, self.since = state, time.monotonic()

    def stuck(self) -> bool:
        """True when the member has been outside the steady state for too long. (A member
        steady with nothing assigned is left alone: rejoining means a LeaveGroup, which has
        stalled Tansu's group during kill storms.)"""
        return self.state not in ("steady", "init") and (
            time.monotonic() - self.since > self.stuck_after_s
        )
