"""The runner's lifecycle and value types: its states with their allowed transitions, the run
options, and the live status it reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class RunnerState(enum.Enum):
    """Lifecycle of a runner."""

    CREATED = "created"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


ALLOWED_MOVES = {
    RunnerState.CREATED: {RunnerState.RUNNING, RunnerState.FAILED},
    RunnerState.RUNNING: {RunnerState.STOPPING, RunnerState.FAILED},
    RunnerState.STOPPING: {RunnerState.STOPPED, RunnerState.FAILED},
    RunnerState.STOPPED: set(),
    RunnerState.FAILED: set(),
}


@dataclass(frozen=True)
class RunOptions:
    """How to run: broker, state directory (ms intervals), bounded mode, group override."""

    bootstrap: str
    state_dir: str = ".kstream-state"
    bounded: bool = False
    group: str | None = None
    status_interval_ms: int = 1_000
    from_savepoint: str | None = None
    allow_non_restored_state: bool = False
    #: with ``from_savepoint``: restore into a group that has committed offsets
    force: bool = False


@dataclass
class Status:
    """A live snapshot for the status display."""

    elapsed_s: float
    records_in: int
    records_out: int
    late: int
    skipped: int
    dead_letter: int
    tasks: int
    finished: int
    watermarks: dict[str, int] = field(default_factory=dict)
    lag: int = 0
    checkpoints: int = 0
