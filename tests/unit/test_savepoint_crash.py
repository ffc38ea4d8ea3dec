"""A writer killed with SIGKILL at any point leaves nothing that passes for a savepoint: the
fault point ``savepoint_write`` (after each file, and after the manifest, before the rename) and a
kill in the middle of a large file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from kstream_cli.main import cli

from kstream.errors import SavepointError
from kstream.savepoint import dispose, is_partial, list_savepoints, open_savepoint

TESTS = Path(__file__).resolve().parents[1]

WRITER = """
import sys
from pathlib import Path

import savepoint_kit as kit
from kstream.savepoint import StateEntry, TaskSnapshot, write_savepoint

target, count = Path(sys.argv[1]), int(sys.argv[2])
BIAS = 1 << 63


def rows():
    for i in range(count):
        key = (60_000 + BIAS).to_bytes(8, "big") + BIAS.to_bytes(8, "big") + b'"k%d"' % i
        yield StateEntry("by-key", i % 2, key, b'[[1, 2, [0]], null, 0]', b'"k%d"' % i)


meta = {"position": 5, "watermark": 1}
stages = ("sp-events", "by-key")
tasks = [TaskSnapshot(s, p, ("t",), meta) for s in stages for p in (0, 1)]
write_savepoint(target, kit.spec(), tasks, {"per-minute": {"": rows()}})
print("written", flush=True)
"""


def _writer(target: Path, count: int, fault: str | None) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("KSTREAM_FAULT", None)
    if fault:
        env["KSTREAM_FAULT"] = fault
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target), str(count)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _assert_nothing_usable(root: Path, target: Path) -> None:
    assert not target.exists()
    leftovers = [p for p in root.iterdir() if p != target]
    assert leftovers and all(is_partial(p) for p in leftovers)
    assert list_savepoints(root) == []
    for partial in leftovers:
        with pytest.raises(SavepointError, match="incomplete savepoint"):
            open_savepoint(partial)
        result = CliRunner().invoke(cli, ["savepoint", "inspect", str(partial)], obj={})
        assert result.exit_code == 4 and "incomplete savepoint" in result.output
        dispose(partial)  # its writer is gone: the leftover can be removed
    assert list(root.iterdir()) == []


# 6 fault points: tasks.avro, node-pairs.avro, node-per-minute.avro, timers-per-minute.avro,
# node-totals.avro, manifest.json
@pytest.mark.parametrize("nth", [1, 2, 3, 4, 5, 6])
def test_killed_at_each_fault_point(tmp_path: Path, nth: int) -> None:
    target = tmp_path / "sp"
    proc = _writer(target, 100, f"savepoint_write:{nth}")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, err
    _assert_nothing_usable(tmp_path, target)


def test_without_a_fault_the_writer_completes(tmp_path: Path) -> None:
    target = tmp_path / "sp"
    proc = _writer(target, 100, "other_point")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0 and "written" in out, err
    assert [s.path for s in list_savepoints(tmp_path)] == [target]
    assert open_savepoint(target).manifest.operators["per-minute"].entries == 100


def test_killed_in_the_middle_of_a_large_file(tmp_path: Path) -> None:
    target = tmp_path / "sp"
    proc = _writer(target, 20_000_000, None)
    try:
        growing = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            files = list(tmp_path.glob(".sp.partial-*/node-per-minute.avro"))
            if files and files[0].stat().st_size > 200_000:
                growing = files[0]
                break
            time.sleep(0.02)
        assert growing is not None, "the writer never got going"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    _assert_nothing_usable(tmp_path, target)
