"""``kstream run --processes N``: N members of one consumer group in child processes.

The :class:`Supervisor` starts each child (``kstream run`` with the same options), prefixes
each line a child writes to stderr with ``[N]``, turns SIGINT/SIGTERM into SIGINT for every
child, a clean stop (each checkpoints and leaves the group; sent again each second to a child
still starting), and restarts a child that died while the
job was not stopping, after a backoff that doubles from 1 s to 30 s and starts over once a
child has lived a minute (Flink's exponential-delay restart strategy; Kafka rebalances the
dead child's partitions to the others meanwhile). A child that ends with exit code 0 (a bounded
run finished, or a savepoint's stop) is not restarted; the supervisor ends when every child has
ended, with the first non-zero exit code of a child that was not restarted (128 + N for a child
killed by signal N), else 0.

Children are plain OS processes: one per core gives the job every core of the machine, since
one Python process runs its tasks on one core.
"""

from __future__ import annotations

import enum
import logging
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO

log = logging.getLogger("kstream.runtime.supervisor")

#: first and largest restart delay (s); the delay doubles after each death in a row
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
#: a child that lived this long (s) before dying starts the backoff over
BACKOFF_RESET_S = 60.0
#: how long (s) children have to stop after SIGINT/SIGTERM before they are killed
STOP_GRACE_S = 60.0
#: while stopping, the stop signal goes again to the children still running every this many s
#: (a child still starting ignores it until ``kstream run`` installed its handlers)
RESIGNAL_S = 1.0


def _ignore_sigint() -> None:
    """In a new child, before Python starts: SIGINT ignored, so Ctrl-C or a stop during its
    imports does not kill it with a traceback; ``kstream run`` installs its handler (Python
    keeps an inherited SIG_IGN for SIGINT instead of raising KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class SupervisorState(enum.Enum):
    """Lifecycle of a supervisor: RUNNING -> STOPPING (a signal) -> STOPPED."""

    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass
class Child:
    """One child process slot: its number (1..N), command, current process and restarts."""

    number: int
    argv: list[str]
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    restarts: int = 0
    delay_s: float = BACKOFF_FIRST_S
    restart_at: float | None = None
    exit_code: int | None = None
    readers: list[threading.Thread] = field(default_factory=list)


class Supervisor:
    """Runs the children and keeps them running (see the module's docstring).

    Args:
        commands: each child's command line (``argv``) and extra environment (None: ours).
        say: one line for the user (a start, a death, a restart, a stop); thread-safe.
        out: where children's stderr lines go, prefixed ``[N] `` (default: our stderr).
    """

    def __init__(
        self,
        commands: Sequence[tuple[list[str], dict[str, str] | None]],
        say: Callable[[str], None],
        out: IO[str] | None = None,
    ) -> None:
        self.children = [Child(n, argv, env) for n, (argv, env) in enumerate(commands, 1)]
        self.say = say
        self.out = out or sys.stderr
        self.state = SupervisorState.RUNNING
        self._lock = threading.Lock()

    @property
    def alive(self) -> int:
        """How many children are running now."""
        return sum(1 for c in self.children if c.process is not None and c.process.poll() is None)

    def request_stop(self, signum: int = signal.SIGTERM) -> None:
        """Ask every running child to stop (SIGINT: each checkpoints and leaves the group); no
        child is restarted after this. ``signum``: the signal the supervisor got (logged)."""
        if self.state == SupervisorState.RUNNING:
            self.state = SupervisorState.STOPPING
            self.say(f"stopping {self.alive} processes (signal {signal.Signals(signum).name})")
        self._signal_children()

    def _signal_children(self) -> None:
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                child.process.send_signal(signal.SIGINT)

    def run(self, on_tick: Callable[[], None] | None = None, tick_s: float = 0.05) -> int:
        """Start the children and supervise them until all ended; ``on_tick`` runs every
        ``tick_s`` seconds (the combined status). Returns the exit code (see the module)."""
        for child in self.children:
            self._start(child)
        stop_deadline: float | None = None
        resignal = 0.0
        while True:
            now = time.monotonic()
            for child in self.children:
                self._check(child, now)
            if self.state == SupervisorState.STOPPING:
                stop_deadline = stop_deadline or now + STOP_GRACE_S
                if now > stop_deadline:
                    self._kill_all()
                elif now >= resignal:
                    resignal = now + RESIGNAL_S
                    self._signal_children()
            if all(c.exit_code is not None for c in self.children):
                break
            if on_tick is not None:
                on_tick()
            time.sleep(tick_s)
        for child in self.children:
            for reader in child.readers:
                reader.join(timeout=5)
        self.state = SupervisorState.STOPPED
        code = next((c.exit_code for c in self.children if c.exit_code), 0) or 0
        return code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as shells say

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.argv,
            env=child.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_ignore_sigint,  # until the child's own handlers (see RESIGNAL_S)
        )
        child.started, child.restart_at, child.exit_code = time.monotonic(), None, None
        reader = threading.Thread(
            target=self._forward,
            args=(child.number, child.process.stdout),
            name=f"kstream-child-{child.number}",
            daemon=True,
        )
        reader.start()
        child.readers.append(reader)
        self.say(f"process {child.number} started (pid {child.process.pid})")

    def _forward(self, number: int, stream: IO[bytes] | None) -> None:
        """Copy a child's output lines to :attr:`out`, each prefixed ``[number] ``."""
        if stream is None:
            return
        for raw in iter(stream.readline, b""):
            line = raw.decode(errors="replace").rstrip("\n")
            with self._lock:
                self.out.write(f"[{number}] {line}\n")
                self.out.flush()

    def _check(self, child: Child, now: float) -> None:
        """Notice a child's end; restart it when it is due (see the module's docstring)."""
        if child.restart_at is not None:
            if self.state == SupervisorState.RUNNING and now >= child.restart_at:
                child.restarts += 1
                self._start(child)
            elif self.state != SupervisorState.RUNNING:
                child.restart_at, child.exit_code = None, child.exit_code or 1
            return
        if child.process is None or child.exit_code is not None:
            return
        code = child.process.poll()
        if code is None:
            return
        if code == 0 or self.state != SupervisorState.RUNNING:
            child.exit_code = code
            return
        lived = now - child.started
        if lived >= BACKOFF_RESET_S:
            child.delay_s = BACKOFF_FIRST_S
        reason = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        self.say(
            f"process {child.number} (pid {child.process.pid}) died ({reason}) after "
            f"{lived:.1f} s; restarting in {child.delay_s:.0f} s"
        )
        child.restart_at = now + child.delay_s
        child.delay_s = min(child.delay_s * 2, BACKOFF_MAX_S)

    def _kill_all(self) -> None:
        for child in self.children:
            if child.process is not None and child.process.poll() is None:
                self.say(f"process {child.number} did not stop in {STOP_GRACE_S:.0f} s: killed")
                child.process.kill()
