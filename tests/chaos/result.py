"""What a chaos run is asked to do (:class:`ChaosConfig`) and what it found
(:class:`ChaosResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class ChaosConfig:
    """How hard to shake: ``kills`` SIGKILLs in total over about ``duration_s`` of input."""

    kills: int = 30
    duration_s: float = 60.0
    keys: int = 200
    per_key: int = 500
    seed: int = 11
    workdir: Path | None = None
    finish_timeout_s: float = 240.0
    #: the broker: ``kafka`` (Apache Kafka, read_committed everywhere) or ``tansu``
    engine: str = "kafka"
    #: arm every fault point before the random kills (make chaos); False mixes them (the
    #: gentler schedule of the subset in make test)
    faults_first: bool = True
    #: remove the extra worker with SIGKILL (True) or SIGTERM (a graceful leave)
    kill_on_remove: bool = True
    #: times the broker is frozen (SIGSTOP) for ``pause_s``, longer than the session timeout
    broker_pauses: int = 1
    pause_s: float = 8.0
    #: Apache Kafka only: times the broker is SIGKILLed and restarted on its data dir
    broker_restarts: int = 1
    #: Apache Kafka only: times a worker is SIGSTOPped while it holds an open transaction until
    #: its tasks have moved to another worker (at most ``zombie_wait_s``), then SIGCONTed
    zombies: int = 1
    zombie_wait_s: float = 40.0
    #: how long a planned kill waits for a steady worker not armed with a fault point (0: the
    #: kill is skipped when both are armed)
    unarmed_wait_s: float = 0.0
    #: one state directory for all workers (processes on one machine, tasks handed over through
    #: RocksDB's lock), or one per worker (machines of their own: a task that moves is restored
    #: from its changelog). Default: shared on Tansu (its changelogs can hold aborted entries),
    #: one per worker on Apache Kafka.
    shared_state: bool | None = None
    #: ``window`` (a tumbling window) or ``process`` (a keyed process function with state and
    #: event-time timers): tests/chaos/workload.py, tests/chaos/process_workload.py
    workload: str = "window"


@dataclass
class ChaosResult:
    engine: str = "kafka"
    kills: int = 0
    during_commit: int = 0
    windows: int = 0
    lost: int = 0
    inflated: int = 0
    wrong: int = 0
    #: extra copies of a window in the sink (must be 0 on Apache Kafka)
    duplicated: int = 0
    offset_regressions: list[str] = field(default_factory=list)
    #: Tansu only: regressions to an offset committed earlier (the broker applied a stale commit)
    stale_offset_applies: list[str] = field(default_factory=list)
    state_mismatches: list[str] = field(default_factory=list)
    restore_times: list[float] = field(default_factory=list)
    fault_hits: dict[str, int] = field(default_factory=dict)
    #: fault points a restarted worker was armed with (each hit is in ``fault_hits``)
    faults_armed: dict[str, int] = field(default_factory=dict)
    broker_pauses: int = 0
    broker_restarts: int = 0
    zombies: int = 0
    #: zombies whose work after SIGCONT was refused by the broker (fenced) or dropped
    zombies_fenced: int = 0
    #: why windows are missing, when they are (see checks.stable_offsets)
    diagnosis: list[str] = field(default_factory=list)
    workdir: str = ""
    #: what the sink holds: ``windows``, or ``window sums`` of the process workload
    unit: str = "windows"

    @property
    def ok(self) -> bool:
        duplicates_matter = self.engine != "tansu"
        return not (
            self.lost
            or self.inflated
            or self.wrong
            or (self.duplicated and duplicates_matter)
            or self.offset_regressions
            or self.state_mismatches
        )

    def line(self) -> str:
        times = sorted(self.restore_times)
        p95 = times[min(len(times) - 1, int(len(times) * 0.95))] if times else 0.0
        hits = ", ".join(f"{k}={v}" for k, v in sorted(self.fault_hits.items())) or "none"
        stale = (
            f" ({len(self.stale_offset_applies)} stale commits re-applied by the broker)"
            if self.engine == "tansu"
            else ""
        )
        return (
            f"{self.engine}: {self.kills} kills ({self.during_commit} during commit; fault points "
            f"hit: {hits}); {self.broker_restarts} broker restarts, {self.zombies} zombies "
            f"({self.zombies_fenced} fenced), {self.broker_pauses} broker pauses: "
            f"{self.lost} lost, {self.inflated} inflated, {self.duplicated} duplicated, "
            f"{self.wrong} wrong of {self.windows} {self.unit}, "
            f"{len(self.offset_regressions)} offset regressions{stale}, "
            f"{len(self.state_mismatches)} state mismatches, restore p95 {p95:.1f} s"
        )
