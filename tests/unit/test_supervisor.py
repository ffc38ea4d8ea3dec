"""The supervisor of ``kstream run --processes N`` (kstream.runtime.supervisor) with real child
processes (small Python programs standing in for ``kstream run``): output prefixed per child,
a child that died restarted after its backoff, a clean stop forwarded as SIGINT (also to a child
still starting), and the exit code."""

from __future__ import annotations

import io
import signal
import sys
import threading
from pathlib import Path

import pytest

from kstream.runtime import supervisor as sup
from kstream.runtime.supervisor import Supervisor, SupervisorState


def python(code: str) -> tuple[list[str], None]:
    return [sys.executable, "-c", code], None


def run(
    children: list[tuple[list[str], None]], **kw: object
) -> tuple[int, Supervisor, str, list[str]]:
    said: list[str] = []
    out = io.StringIO()
    s = Supervisor(children, said.append, out)
    code = s.run(tick_s=0.02, **kw)  # type: ignore[arg-type]
    return code, s, out.getvalue(), said


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sup, "BACKOFF_FIRST_S", 0.05)
    monkeypatch.setattr(sup, "RESIGNAL_S", 0.05)


def test_children_that_end_well_are_not_restarted_and_their_lines_are_prefixed() -> None:
    code, s, out, said = run([python("print('one')"), python("print('two')")])
    assert code == 0 and s.state == SupervisorState.STOPPED
    assert "[1] one\n" in out and "[2] two\n" in out
    assert [c.restarts for c in s.children] == [0, 0]
    assert sum("started" in line for line in said) == 2


def test_a_child_that_died_is_restarted_after_its_backoff(tmp_path: Path) -> None:
    marker = tmp_path / "died-once"
    code_text = (
        f"import os, sys; p = {str(marker)!r}\n"
        "if os.path.exists(p): sys.exit(0)\n"
        "open(p, 'w').close(); sys.exit(3)"
    )
    code, s, _out, said = run([python(code_text)])
    assert code == 0
    assert s.children[0].restarts == 1
    assert any("died (exit code 3)" in line and "restarting in" in line for line in said), said


def test_a_child_killed_by_a_signal_is_named_so() -> None:
    code_text = "import os, signal, sys\nif len(sys.argv) < 2: os.kill(os.getpid(), signal.SIGKILL)"
    s = Supervisor([python(code_text)], lambda _l: None, io.StringIO())
    said: list[str] = []
    s.say = said.append
    # stop after the first death: the restart is not started once stopping
    threading.Timer(0.5, s.request_stop).start()
    code = s.run(tick_s=0.02)
    assert any("died (signal SIGKILL)" in line for line in said), said
    assert code != 0


def test_a_stop_reaches_a_child_still_starting_and_it_ends_cleanly(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    # the child takes 0.5 s to "import" (SIGINT ignored meanwhile), then handles SIGINT
    code_text = (
        "import signal, sys, time\n"
        "time.sleep(0.5)\n"
        "signal.signal(signal.SIGINT, lambda *a: sys.exit(0))\n"
        f"open({str(ready)!r}, 'w').close()\n"
        "time.sleep(30); sys.exit(5)"
    )
    s = Supervisor([python(code_text)], lambda _l: None, io.StringIO())
    threading.Timer(0.1, s.request_stop, args=(signal.SIGTERM,)).start()
    assert s.run(tick_s=0.02) == 0
    assert ready.exists()  # it lived through the first SIGINT, and stopped at a later one
    assert s.children[0].restarts == 0
