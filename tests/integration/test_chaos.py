"""The chaos suite's small subset (the full one is `make chaos`): SIGKILLs at random instants
and at checkpoint steps, a worker added and removed, then exact results, monotonic committed
offsets and state equal to the truth at its checkpointed position."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "chaos"))

from harness import ChaosConfig, run_chaos

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def test_chaos_subset_exactly_once(tmp_path: Path) -> None:
    result = run_chaos(
        ChaosConfig(
            kills=8,
            duration_s=25,
            keys=100,
            per_key=300,
            seed=3,
            workdir=tmp_path,
            faults_first=False,
            # the extra worker is removed with SIGKILL, as in make chaos: a graceful leave during
            # the kills has left the local broker's group without any assignment (clean-clone CI,
            # 2026-11-21: both workers idle for 256 s; docs/fault-tolerance.md)
            kill_on_remove=True,
            broker_pauses=0,
        )
    )
    print(result.line())
    assert result.inflated == 0 and result.wrong == 0, result.line()
    assert result.offset_regressions == [], result.offset_regressions[:5]
    assert result.state_mismatches == [], result.state_mismatches[:5]
    assert result.lost == 0, result.line()
    # random kills spare workers armed with a fault point, so fewer than planned may land
    assert result.kills >= 6, result.line()
