"""Running a job's process(es) and measuring them: wall time, CPU, peak RSS, broker CPU.

Every job process is started by :func:`run_processes` and waited for with ``os.wait4``:

- ``wall_s``: from just before the process is spawned until it has exited (seconds);
- ``cpu_s``: user + system CPU seconds from ``os.wait4`` (``ru_utime + ru_stime``), which
  include every child the process waited for (the Flink job stops and reaps its JVM);
- ``peak_rss_mb``: the process's peak resident set (``VmHWM``, MB), polled every
  :attr:`PeakRss.POLL_S`; with ``tree=True`` the sum of the peaks of the process and all its
  descendants (PyFlink's JVM), each process's own peak, which may have come at different times.

After the run, :func:`state_bytes` sizes the job's state directories on disk.

``ru_maxrss`` cannot be used for RSS: Linux carries the parent's peak RSS at fork time into the
child's ``ru_maxrss`` across ``exec``, so every job would inherit the harness's (~1 GB: the data
set and the expected results). ``VmHWM`` belongs to the program's own address space.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Seconds a job may run before it is killed.
JOB_TIMEOUT_S = 900.0

#: One process to start: (argv, environment, log file receiving stdout and stderr).
Command = tuple[list[str], dict[str, str], Path]


@dataclass
class Sample:
    """One process's measurements (seconds, MB)."""

    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    returncode: int
    first_record_s: float | None


def vm_hwm_mb(pid: int) -> float | None:
    """Peak resident set size of ``pid``'s current program (``VmHWM``) in MB; ``None`` when
    the process is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (``/proc/PID/task/TID/children``, recursively)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tasks:
            with contextlib.suppress(OSError, ValueError):
                with open(f"/proc/{parent}/task/{tid}/children") as handle:
                    children = [int(c) for c in handle.read().split()]
                out += children
                todo += children
    return out


class PeakRss(threading.Thread):
    """Polls ``VmHWM`` of a process (and, with ``tree``, of its descendants) until stopped.

    ``VmHWM`` only grows, so each process's last reading before it exits is its peak (give or
    take the last ``POLL_S`` seconds). :attr:`peak_mb` is the sum over the processes seen.
    """

    POLL_S = 0.02

    def __init__(self, pid: int, tree: bool = False) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.tree = tree
        self.peaks: dict[int, float] = {}
        self._stop_event = threading.Event()

    @property
    def peak_mb(self) -> float:
        return sum(self.peaks.values())

    def run(self) -> None:
        while not self._stop_event.is_set():
            pids = [self.pid, *descendants(self.pid)] if self.tree else [self.pid]
            for pid in pids:
                value = vm_hwm_mb(pid)
                if value is not None and value > self.peaks.get(pid, 0.0):
                    self.peaks[pid] = value
            self._stop_event.wait(self.POLL_S)

    def stop(self) -> float:
        """Stop polling; the peak in MB."""
        self._stop_event.set()
        self.join()
        return self.peak_mb


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc`` and its descendants (a job past its timeout)."""
    if proc.poll() is not None:
        return
    for pid in [*descendants(proc.pid), proc.pid]:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def wait_sample(
    proc: subprocess.Popen[bytes], started: float, timeout_s: float, tree: bool = False
) -> Sample:
    """Wait for ``proc`` with ``os.wait4`` while polling its peak RSS; kill it (and its
    descendants) after ``timeout_s`` seconds."""
    timer = threading.Timer(timeout_s, _kill_tree, args=(proc,))
    timer.start()
    peak = PeakRss(proc.pid, tree)
    peak.start()
    try:
        _pid, status, usage = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    ended = time.time()
    peak_mb = peak.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Sample(
        wall_s=ended - started,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=peak_mb,
        returncode=proc.returncode,
        first_record_s=None,
    )


def process_cpu_s(pid: int | None) -> float | None:
    """CPU seconds (user + system, all threads) a running process has used so far."""
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def system_busy_s() -> float | None:
    """CPU seconds all CPUs of the machine have been busy since boot (``/proc/stat``)."""
    try:
        with open("/proc/stat", "rb") as handle:
            fields = [int(x) for x in handle.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def run_processes(
    commands: list[Command],
    first_record_files: list[Path],
    timeout_s: float = JOB_TIMEOUT_S,
    tree: bool = False,
) -> tuple[float, list[Sample]]:
    """Start every command at once (cwd: the repository), wait for all; return (start time
    as ``time.time()``, one sample per command). ``tree``: peak RSS over each process tree."""
    procs = []
    started = time.time()
    for cmd, env, log in commands:
        with open(log, "ab") as handle:
            procs.append(
                subprocess.Popen(
                    cmd,
                    cwd=ROOT,
                    env=env,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            )
    samples: list[Sample | None] = [None] * len(procs)

    def wait(i: int) -> None:
        samples[i] = wait_sample(procs[i], started, timeout_s, tree)

    threads = [threading.Thread(target=wait, args=(i,)) for i in range(len(procs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out = [s for s in samples if s is not None]
    for sample, path in zip(out, first_record_files, strict=True):
        sample.first_record_s = first_record(path, started)
    return started, out


def first_record(path: Path, started: float) -> float | None:
    """Seconds from ``started`` to the first record, from the time (``time.time()``) a job
    wrote to ``path`` (a bare number per line, the earliest counts: one line per process of
    ``--processes N``; or JSON ``{"first_record": ...}``); ``None`` if absent."""
    try:
        lines = [line for line in path.read_text().splitlines() if line.strip()]
    except OSError:
        return None
    times = []
    for line in lines:
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            value = value.get("first_record")
        if value is not None:
            times.append(float(value))
    return min(times) - started if times else None


def state_bytes(rundir: Path) -> int | None:
    """Bytes on disk of the state directories (``state*``) a run left in ``rundir``: the sum
    of the sizes of their files (RocksDB's SST files, logs, checkpoints); ``None`` when the job
    wrote no state directory (floor, Flink)."""
    dirs = [d for d in rundir.glob("state*") if d.is_dir()]
    if not dirs:
        return None
    total = 0
    for top in dirs:
        for parent, _dirs, files in os.walk(top):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(parent, name)).st_size
    return total


def job_env(extra: dict[str, str] | None = None, peer: bool = False) -> dict[str, str]:
    """The environment of a job process: the harness's, unbuffered, without
    ``KSTREAM_BOOTSTRAP_SERVERS``; for a peer venv also without ``PYTHONPATH`` and
    ``VIRTUAL_ENV`` (so nothing of kstream's venv leaks in)."""
    env = dict(os.environ)
    env.pop("KSTREAM_BOOTSTRAP_SERVERS", None)
    if peer:
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def log_tail(path: Path, lines: int = 6) -> str:
    """The last ``lines`` lines of a log, joined with `` | `` (empty if unreadable)."""
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " | ".join(text[-lines:])


def renice(pid: int, niceness: int) -> None:
    """Set the niceness of every thread of ``pid`` (Linux: niceness is per thread)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, int(tid), niceness)
