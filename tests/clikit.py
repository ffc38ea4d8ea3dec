"""Running the real ``kstream`` CLI from integration tests (subprocesses, as a user would)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

from ruamel.yaml import YAML

#: Seconds one CLI invocation may take before the test fails.
RUN_TIMEOUT_S = 300


def kstream_argv() -> list[str]:
    """The installed ``kstream`` script next to this interpreter."""
    script = Path(sys.executable).with_name("kstream")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "from kstream_cli.main import main; main()"]


def kstream_raw(
    *args: str, timeout: float = RUN_TIMEOUT_S, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``kstream ARGS`` to completion, whatever its exit code; past ``timeout`` seconds it is
    killed and the test fails with the end of its stderr (its progress lines say where it was)."""
    try:
        return subprocess.run(
            [*kstream_argv(), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        stderr = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else ""
        raise AssertionError(
            f"kstream {' '.join(args)} still running after {timeout} s\nstderr:\n{stderr[-4000:]}"
        ) from None


def kstream(*args: str, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """Run ``kstream ARGS``; fail the test (with its output) unless it exits 0."""
    proc = kstream_raw(*args, timeout=timeout)
    assert proc.returncode == 0, (
        f"kstream {' '.join(args)} exited {proc.returncode}\n"
        f"stdout:\n{proc.stdout[-2000:]}\nstderr:\n{proc.stderr[-4000:]}"
    )
    return proc


def unique(prefix: str) -> str:
    """``prefix`` plus a random suffix: topic, pipeline and group names per test."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def hourly_pipeline_copy(
    directory: Path, source: str, prefix: str, **overrides: object
) -> tuple[Path, str, str]:
    """``examples/flights-hourly.yaml`` (comments kept) reading ``source`` under the unique
    pipeline name ``<prefix>-<8 hex>``, writing its own sink ``<name>-out``, with top-level
    keys replaced by ``overrides`` (e.g. ``checkpoint={"interval": "1s"}``); returns
    ``(path, pipeline name, sink topic)``."""
    yaml = YAML()
    doc = yaml.load(Path(__file__).resolve().parents[1] / "examples" / "flights-hourly.yaml")
    doc["pipeline"] = name = unique(prefix)
    doc["sources"][0]["topic"] = source
    doc["sinks"][0]["topic"] = sink = f"{name}-out"
    doc.update(overrides)
    path = directory / f"{name}.yaml"
    with path.open("w", encoding="utf-8") as fh:
        yaml.dump(doc, fh)
    return path, name, sink


class LoggedRun:
    """``kstream run PIPELINE ... -v`` as a background process whose log goes to a file, for
    tests that act on a job while it works (pause it, kill the broker under it).

    Args:
        log_path: where the job's stderr (its ``-v`` log) goes.
        args: the arguments after ``kstream run`` (``-v`` is added).
        env: extra environment variables (e.g. ``KSTREAM_FAULT``).
    """

    def __init__(self, log_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        import os

        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [*kstream_argv(), "run", *args, "-v"],
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env={**os.environ, **(env or {})},
        )

    def text(self) -> str:
        """The log so far."""
        return self.log_path.read_text(errors="replace")

    def count(self, pattern: str) -> int:
        """How many times the regular expression ``pattern`` matches the log so far."""
        import re

        return len(re.findall(pattern, self.text()))

    def wait_for(self, pattern: str, at_least: int = 1, timeout_s: float = 120.0) -> bool:
        """Wait until ``pattern`` matched ``at_least`` times (True) or ``timeout_s`` passed or
        the process ended (False)."""
        import time

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.count(pattern) >= at_least:
                return True
            if self.proc.poll() is not None:
                return self.count(pattern) >= at_least
            time.sleep(0.1)
        return False

    def finish(self, timeout_s: float = RUN_TIMEOUT_S) -> int:
        """Wait for the exit status; SIGKILL the job (and fail) when it takes longer."""
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"kstream run did not end within {timeout_s} s") from None

    def kill(self) -> None:
        """SIGKILL the job if it still runs (its CONT first, in case it was paused)."""
        import signal

        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
        self._log.close()
