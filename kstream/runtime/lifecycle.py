"""The runner's lifecycle and value types: its states with their allowed transitions, the run
options, and the live status it reports."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kstream.runtime.siblings import Siblings


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
    #: processing time (ms) one input may hold a stage's watermark back, while others advance,
    #: before the run warns about it (:mod:`kstream.runtime.watermark_watch`)
    held_watermark_warning_ms: int = 30_000
    #: the state cache in bytes (``--state-cache``); None: the pipeline's ``state: {cache}``
    state_cache_bytes: int | None = None
    #: serve Prometheus metrics on this port (``--metrics-port``; None: no metrics)
    metrics_port: int | None = None
    #: a child of ``kstream run --processes N``: its siblings' markers (joint group join and,
    #: bounded, joint leave; :mod:`kstream.runtime.siblings`); None: a process on its own
    siblings: Siblings | None = None


#: :attr:`Status.phase` before the group assigned this process its first partitions
JOINING = "joining the consumer group"


def run_phase(
    state: RunnerState, bounded: bool, stop_requested: bool, assigned: bool, restoring: int
) -> str:
    """:attr:`Status.phase` of a runner in ``state`` (``assigned``: the group assigned it
    partitions once; ``restoring``: tasks waiting for their restore)."""
    if state == RunnerState.STOPPED:
        return "finished" if bounded and not stop_requested else "stopped"
    if state in (RunnerState.STOPPING, RunnerState.FAILED):
        return state.value
    if not assigned:
        return JOINING
    if restoring:
        return f"restoring {restoring} task{'s' if restoring > 1 else ''}"
    return "running"


@dataclass(frozen=True)
class StageWatermark:
    """The watermark of one stage in this process, for the status display.

    Attributes:
        stage: the stage id.
        watermark: the min over the stage's tasks here (epoch ms).
        holder: the input holding it back while others are ahead, e.g. ``task flights:2
            (topic flights partition 2)``; None when nothing is behind the others.
        warning: the held-back warning once the holder has held it longer than the threshold.
    """

    stage: str
    watermark: int
    holder: str | None = None
    warning: str | None = None


@dataclass
class Status:
    """A live snapshot for the status display (elapsed time in seconds)."""

    elapsed_s: float
    records_in: int
    records_out: int
    late: int
    skipped: int
    dead_letter: int
    tasks: int
    finished: int
    watermarks: dict[str, int] = field(default_factory=dict)
    #: records behind the end offsets of this process's source partitions (None: unknown yet)
    lag: int | None = None
    checkpoints: int = 0
    #: what the process does: :data:`JOINING`, ``restoring N tasks``, ``running``,
    #: ``stopping``, then ``finished`` or ``stopped``
    phase: str = "running"
    #: bounded runs: the part of the source records (from the start positions to the end
    #: offsets) read so far, 0.0 to 1.0
    done: float | None = None
    #: bounded runs: seconds to the end offsets at the recent reading rate
    eta_s: float | None = None
    stages: list[StageWatermark] = field(default_factory=list)
