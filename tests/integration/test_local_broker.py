"""kstream.tools.tansu.TansuBroker and ``kstream broker`` with their own Tansu processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from kstream.errors import BrokerError
from kstream.io.kafka import Admin, TopicConfig
from kstream.tools.process import free_port
from kstream.tools.tansu import TansuBroker

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still "exists"; check its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_start_stop_and_context_manager(tmp_path: Path) -> None:
    log = tmp_path / "tansu.log"
    with TansuBroker(log_path=log) as local:
        pid = local.pid
        assert pid is not None and local.is_running()
        assert local.bootstrap == f"127.0.0.1:{local.port}"
        admin = Admin(local.bootstrap, timeout_s=5)
        admin.ensure_topics([TopicConfig("x", 2)])
        assert admin.topics()["x"] == 2
        with pytest.raises(BrokerError, match="already started"):
            local.start()
    assert local.pid is None and not local.is_running()
    assert not _alive(pid)
    local.stop()  # idempotent
    assert "listening on" in log.read_text()


def test_start_on_given_port_and_port_in_use() -> None:
    port = free_port()
    with TansuBroker().start(port) as local:
        assert local.port == port
        with pytest.raises(BrokerError, match=f"port {port} on 127.0.0.1 is already in use"):
            TansuBroker().start(port)


def test_check_alive_reports_a_dead_broker() -> None:
    local = TansuBroker().start()
    try:
        assert local.pid is not None
        os.kill(local.pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while local.is_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(BrokerError, match="killed by SIGKILL"):
            local.check_alive()
    finally:
        local.stop()


@pytest.fixture
def cli_broker() -> Iterator[Callable[[int], subprocess.Popen[str]]]:
    """Starts ``kstream broker --port N`` in a subprocess; kills what is left at teardown."""
    procs: list[subprocess.Popen[str]] = []

    def run(port: int) -> subprocess.Popen[str]:
        code = "from kstream_cli.broker_cmd import broker; broker()"
        proc = subprocess.Popen(
            [sys.executable, "-c", code, "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(proc)
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith(f"kstream broker listening on 127.0.0.1:{port} (Tansu "), first
        assert "in-memory; Ctrl-C to stop)" in first
        hint = proc.stdout.readline().strip()
        assert hint == f"export KSTREAM_BOOTSTRAP_SERVERS=127.0.0.1:{port}"
        return proc

    yield run
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()  # the CLI stops its Tansu child on SIGTERM
            proc.communicate(timeout=15)


def _children(pid: int) -> list[int]:
    """PIDs whose parent is ``pid`` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_broker_stops_cleanly_on_signal(sig: signal.Signals, cli_broker: Any) -> None:
    port = free_port()
    proc = cli_broker(port)
    children = _children(proc.pid)
    assert len(children) == 1
    assert Admin(f"127.0.0.1:{port}", timeout_s=5).topics() == {}
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 0, err
    assert not _alive(children[0])


def test_cli_broker_exits_non_zero_when_broker_dies(cli_broker: Any) -> None:
    proc = cli_broker(free_port())
    (child,) = _children(proc.pid)
    os.kill(child, signal.SIGKILL)
    _, err = proc.communicate(timeout=15)
    assert proc.returncode == 3
    assert err.strip().splitlines() == ["error: broker process was killed by SIGKILL unexpectedly"]
