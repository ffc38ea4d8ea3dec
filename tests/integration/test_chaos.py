"""The chaos suite's small subset (the full one is `make chaos`): SIGKILLs at random instants
and at checkpoint steps, a worker added and removed, and on Apache Kafka one broker SIGKILL and
restart and one zombie worker; then exact results (no window duplicated on Apache Kafka),
monotonic committed offsets and state equal to the truth at its checkpointed position."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chaos"))

from harness import CHECKPOINT_STEPS, ChaosConfig, run_chaos
from result import ChaosResult

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_chaos_subset_exactly_once(tmp_path: Path, broker_engine: str) -> None:
    result = run_chaos(
        ChaosConfig(
            kills=8,
            duration_s=25,
            keys=100,
            per_key=300,
            seed=3,
            workdir=tmp_path,
            engine=broker_engine,
            faults_first=False,
            # the extra worker is removed with SIGKILL, as in make chaos: a graceful leave during
            # the kills has left Tansu's group without any assignment (clean-clone CI,
            # 2026-11-21: both workers idle for 256 s; docs/fault-tolerance.md)
            kill_on_remove=True,
            broker_pauses=0,
            broker_restarts=1,
            zombies=1,
        )
    )
    print(result.line())
    assert result.ok, result.line()
    assert result.inflated == 0 and result.wrong == 0, result.line()
    assert result.offset_regressions == [], result.offset_regressions[:5]
    assert result.state_mismatches == [], result.state_mismatches[:5]
    assert result.lost == 0, result.line()
    if broker_engine == "kafka":
        assert result.duplicated == 0, result.line()
        assert result.broker_restarts == 1 and result.zombies == 1, result.line()
    # random kills spare workers armed with a fault point, so fewer than planned may land
    assert result.kills >= 6, result.line()


def run_checkpoint_step_chaos(tmp_path: Path, engine: str, workload: str, seed: int) -> ChaosResult:
    """A short run of ``workload`` with a SIGKILL armed at every checkpoint step and at a
    restore first (a planned kill waits up to 10 s for a worker not armed yet, so each step is
    reached while records flow), no broker fault, no zombie; asserts what every such run must
    show and returns the result."""
    result = run_chaos(
        ChaosConfig(
            kills=8,
            duration_s=25,
            keys=100,
            per_key=300,
            seed=seed,
            workdir=tmp_path,
            engine=engine,
            workload=workload,
            faults_first=True,
            unarmed_wait_s=10,
            kill_on_remove=True,
            broker_pauses=0,
            broker_restarts=0,
            zombies=0,
        )
    )
    print(result.line())
    assert result.ok, result.line()
    assert result.lost == 0 and result.inflated == 0 and result.wrong == 0, result.line()
    assert result.offset_regressions == [], result.offset_regressions[:5]
    if engine == "kafka":
        assert result.duplicated == 0, result.line()
    # a fault point is hit only when its armed worker reaches the step before the input ends:
    # on a loaded 2-core machine one of the six may be missed (CI missed `commit` once); the
    # full suite (make chaos, 30 kills) hits every one
    hit = set(CHECKPOINT_STEPS) & set(result.fault_hits)
    assert len(hit) >= len(CHECKPOINT_STEPS) - 2, (result.faults_armed, result.line())
    assert result.windows > 1000, result.line()
    return result


def test_chaos_process_function_with_timers_exactly_once(
    tmp_path: Path, broker_engine: str
) -> None:
    """The process workload (tests/chaos/process_workload.py: map, value and list state,
    event-time timers): every timer-driven record exactly once (on Apache Kafka) with the
    truth's values."""
    run_checkpoint_step_chaos(tmp_path, broker_engine, "process", seed=3)


def test_chaos_interval_join_exactly_once(tmp_path: Path, broker_engine: str) -> None:
    """The join workload (tests/chaos/join_workload.py: an interval join of each key's odd and
    even records, then 10 s windows of the pairs): every pair window exactly once (on Apache
    Kafka) with the truth's pair count and sum, and every task's pair windows equal to the
    truth at its checkpoint."""
    result = run_checkpoint_step_chaos(tmp_path, broker_engine, "join", seed=5)
    assert result.state_mismatches == [], result.state_mismatches[:5]
