"""``make demo``'s path: the local Tansu broker, the flights loaded, flights-hourly run bounded,
the results shown and checked (328,521 flights not cancelled, no duplicate window)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.tansu_smoke, pytest.mark.tansu_only]


def test_demo_runs_and_checks_its_results() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kstream_cli.demo"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "flights counted:      328,521 (expected 328,521" in proc.stdout, proc.stdout[-2000:]
    assert "ok" in proc.stdout and "broker stopped" in proc.stdout
