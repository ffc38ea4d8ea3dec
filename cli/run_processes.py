"""``kstream run --processes N|auto``: the supervisor's side of the command
(:mod:`kstream.runtime.supervisor`): child command lines, merged metrics, one combined status
line and the summed final counts."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from kstream.runtime.lifecycle import Status
from kstream.runtime.metrics_merge import MergedMetrics, child_port
from kstream.runtime.siblings import Siblings, siblings_from
from kstream.runtime.supervisor import Supervisor

#: environment variable naming the file where a child keeps its latest status (JSON): then it
#: writes no status lines of its own; the supervisor shows the children's sum
STATUS_FILE_ENV = "KSTREAM_STATUS_FILE"
#: environment variable describing a child's siblings (:mod:`kstream.runtime.siblings`): they
#: join the consumer group together and, bounded, leave it together
SIBLINGS_ENV = "KSTREAM_SIBLINGS"
#: environment variable naming the module children run as (default ``kstream_cli.main``)
CHILD_MODULE_ENV = "KSTREAM_CHILD_MODULE"
#: seconds between two combined status lines
STATUS_EVERY_S = 5.0
#: the counts summed over the children
SUMMED = (
    "records_in",
    "records_out",
    "late",
    "skipped",
    "dead_letter",
    "tasks",
    "finished",
    "checkpoints",
)


def process_count(value: str) -> int:
    """``--processes``: a positive number, or ``auto`` (one per core).

    Raises:
        click.BadParameter: anything else.
    """
    if value == "auto":
        return os.cpu_count() or 1
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise click.BadParameter(
        f"{value!r}: write a number of processes or auto", param_hint="--processes"
    )


def child_program() -> list[str]:
    """How to start a child: ``python -m kstream_cli.main`` (the console script's command
    group), or ``python -m MODULE`` with ``KSTREAM_CHILD_MODULE=MODULE`` (a wrapper with the
    same command line, e.g. the benchmark's ``bench.kstream_timed``)."""
    return [sys.executable, "-m", os.environ.get(CHILD_MODULE_ENV) or "kstream_cli.main"]


def child_argv(pipeline: Path, params: dict[str, Any], metrics_port: int | None) -> list[str]:
    """A child's ``kstream run`` command line: the same options (``params``: option flag ->
    value; True: a flag without value; None or False: left out), its own metrics port."""
    argv = [*child_program(), "run", str(pipeline)]
    for flag, value in params.items():
        if value is None or value is False:
            continue
        argv += [flag] if value is True else [flag, str(value)]
    if metrics_port is not None:
        argv += ["--metrics-port", str(metrics_port)]
    return argv


def status_file() -> Path | None:
    """In a child: the file the supervisor reads its status from (None: not a child)."""
    path = os.environ.get(STATUS_FILE_ENV)
    return Path(path) if path else None


def siblings() -> Siblings | None:
    """In a child: its siblings' markers (None: not a child)."""
    return siblings_from(os.environ.get(SIBLINGS_ENV))


def write_status(path: Path, status: Status) -> None:
    """Replace the child's status file with ``status``'s counts (atomically: a rename)."""
    body = {k: getattr(status, k) for k in SUMMED}
    body["lag"] = status.lag
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(body))
    tmp.replace(path)


def run_processes(
    pipeline: Path,
    count: int,
    params: dict[str, Any],
    metrics_port: int | None,
    bounded: bool,
) -> int:
    """Run ``count`` children of ``kstream run PIPELINE`` with ``params`` (see
    :func:`child_argv`); returns the exit code (:meth:`Supervisor.run`)."""
    say: Callable[[str], None] = lambda line: click.echo(f"kstream: {line}", err=True)  # noqa: E731
    workdir = Path(tempfile.mkdtemp(prefix="kstream-processes-"))
    commands = []
    for n in range(1, count + 1):
        port = child_port(metrics_port, n) if metrics_port is not None else None
        env = {
            **os.environ,
            STATUS_FILE_ENV: str(workdir / f"status-{n}.json"),
            SIBLINGS_ENV: Siblings(workdir, n, count).encode(),
        }
        commands.append((child_argv(pipeline, params, port), env))
    if metrics_port is not None:
        children = [(n, child_port(metrics_port, n)) for n in range(1, count + 1)]
        MergedMetrics(children).start(metrics_port)
        say(f"metrics of the {count} processes on http://0.0.0.0:{metrics_port}/metrics")
    supervisor = Supervisor(commands, say)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda s, _f: supervisor.request_stop(s))
    started = time.monotonic()
    code = supervisor.run(_status_ticker(supervisor, say, workdir, started))
    totals = _summed(workdir, count)
    shutil.rmtree(workdir, ignore_errors=True)
    restarts = sum(c.restarts for c in supervisor.children)
    click.echo(
        f"{'finished' if bounded else 'stopped'}: {count} processes, "
        f"{totals['records_in']:,} records in, {totals['records_out']:,} out, "
        f"{totals['late']:,} late, {totals['skipped']:,} skipped, "
        f"{totals['dead_letter']:,} dead-lettered in {time.monotonic() - started:.1f} s"
        + (
            f" ({restarts} restarts: counts of the processes that died are not included)"
            if restarts
            else ""
        ),
        err=True,
    )
    return code


def _status_ticker(
    supervisor: Supervisor, say: Callable[[str], None], workdir: Path, started: float
) -> Callable[[], None]:
    """Every :data:`STATUS_EVERY_S` s, one line: the children's statuses summed."""
    count = len(supervisor.children)
    last = [time.monotonic()]

    def tick() -> None:
        now = time.monotonic()
        if now - last[0] < STATUS_EVERY_S:
            return
        last[0] = now
        s = _summed(workdir, count)
        lag = "-" if s["lag"] is None else f"{s['lag']:,}"
        say(
            f"[{now - started:7.1f}s] {supervisor.alive}/{count} processes: "
            f"in={s['records_in']:,} out={s['records_out']:,} late={s['late']:,} "
            f"skipped={s['skipped']:,} dead_letter={s['dead_letter']:,} "
            f"tasks={s['finished']}/{s['tasks']} checkpoints={s['checkpoints']} lag={lag}"
        )

    return tick


def _summed(workdir: Path, count: int) -> dict[str, Any]:
    """The children's latest statuses summed (``lag``: None until every child knows its)."""
    totals: dict[str, Any] = dict.fromkeys(SUMMED, 0)
    lags: list[int | None] = []
    for n in range(1, count + 1):
        try:
            body = json.loads((workdir / f"status-{n}.json").read_text())
        except (OSError, ValueError):
            lags.append(None)
            continue
        for key in SUMMED:
            totals[key] += int(body.get(key) or 0)
        lags.append(body.get("lag"))
    totals["lag"] = None if None in lags else sum(x for x in lags if x is not None)
    return totals
