"""The Flink side of the conformance suite: run rendered Flink SQL scripts with PyFlink.

Run by the runner (``tests/conformance/run.py``) with the Flink venv's python
(``bench/peers.py``), by path, so it imports neither kstream nor the rest of the repository:

    python tests/conformance/flink_side.py JARS PARALLELISM TIMEOUT_S MANIFEST OUT

``JARS``: the jars Flink loads (``pipeline.jars``), separated by ``;``: the Kafka connector and
the Avro format.

``MANIFEST`` is a JSON file: a list of ``{"name": CASE, "script": PATH}``, each script a
complete Flink SQL script whose ``${...}`` placeholders the runner has already substituted.
One JVM (PyFlink's gateway) runs every script one after the other, each in a TableEnvironment
of its own (streaming mode, session time zone UTC), so the JVM starts once per suite.

Bounded reading: every Kafka source table (a ``CREATE TABLE`` that no ``INSERT INTO`` of the
script writes) gets ``'scan.bounded.mode' = 'latest-offset'`` here, Flink's run only: each
source ends at the offsets that were the latest when the job started and Flink then advances
the watermark to +infinity, as kstream's ``--bounded`` does.

``OUT`` receives one JSON line per case, written as soon as the case is done:
``{"name": CASE, "status": "FINISHED" | "FAILED" | "TIMEOUT", "error": TEXT | null,
"seconds": WALL_S}``. The JVM is stopped (SIGTERM, SIGKILL after a grace) and reaped at the
end. Exit code 0 once every case was run (whatever their status).
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import Any

#: Seconds the JVM may take to shut down after the last job before it is killed.
JVM_STOP_GRACE_S = 30.0
BOUNDED_OPTION = "'scan.bounded.mode' = 'latest-offset'"

_CREATE = re.compile(r"^\s*CREATE\s+(?:TEMPORARY\s+)?TABLE\s+`?(\w+)`?", re.I)
_INSERT = re.compile(r"\bINSERT\s+INTO\s+`?(\w+)`?", re.I)
_WITH = re.compile(r"\bWITH\s*\(", re.I)
_SET_START = re.compile(r"^\s*EXECUTE\s+STATEMENT\s+SET\s+BEGIN\b", re.I)


def split_statements(script: str) -> list[str]:
    """The statements of a SQL script, without ``--`` comments and trailing ``;``.

    Splits at ``;`` outside quotes ('...', `...`); an ``EXECUTE STATEMENT SET BEGIN ...
    END`` block stays one statement (its INSERTs keep their ``;``).
    """
    chunks: list[str] = []
    current: list[str] = []
    quote = ""
    i = 0
    while i < len(script):
        ch = script[i]
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'`":
            quote = ch
        elif script.startswith("--", i):
            i = script.find("\n", i) if "\n" in script[i:] else len(script)
            continue
        elif ch == ";":
            chunks.append("".join(current).strip())
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    chunks.append("".join(current).strip())
    return _merge_statement_sets([c for c in chunks if c])


def _merge_statement_sets(chunks: list[str]) -> list[str]:
    """Join the chunks of an ``EXECUTE STATEMENT SET BEGIN ...; ...; END`` block into one."""
    out: list[str] = []
    block: list[str] | None = None
    for chunk in chunks:
        if block is None and _SET_START.match(chunk):
            block = [chunk]
        elif block is not None and chunk.upper() == "END":
            out.append(";\n".join(block) + ";\nEND")
            block = None
        elif block is not None:
            block.append(chunk)
        else:
            out.append(chunk)
    if block is not None:
        out.append(";\n".join(block))
    return out


def bound_sources(statements: list[str]) -> list[str]:
    """The statements with :data:`BOUNDED_OPTION` added to the WITH clause of every table
    that no INSERT of the script writes (its sources), unless it has a bounded mode already."""
    targets = {m.lower() for s in statements for m in _INSERT.findall(s)}
    out = []
    for statement in statements:
        created = _CREATE.match(statement)
        with_clause = _WITH.search(statement)
        if (
            created
            and with_clause
            and created.group(1).lower() not in targets
            and "scan.bounded.mode" not in statement
        ):
            at = with_clause.end()
            statement = f"{statement[:at]}\n  {BOUNDED_OPTION},{statement[at:]}"
        out.append(statement)
    return out


def table_environment(jars: str, parallelism: int, name: str) -> Any:
    """A streaming TableEnvironment (local MiniCluster, UTC) with ``jars`` (paths separated by
    ``;``: the Kafka connector, the Avro format)."""
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    config = Configuration()
    for key, value in {
        "pipeline.jars": ";".join(Path(jar).resolve().as_uri() for jar in jars.split(";")),
        "pipeline.name": name,
        "parallelism.default": str(parallelism),
        "table.local-time-zone": "UTC",
    }.items():
        config.set_string(key, value)
    settings = EnvironmentSettings.new_instance().in_streaming_mode()
    return TableEnvironment.create(settings.with_configuration(config).build())


def short_error(exc: BaseException) -> str:
    """The most telling line of a (py4j) error: the last ``Caused by:`` of its Java trace,
    else its first line; at most 400 characters."""
    text = str(exc)
    causes = [line.strip() for line in text.splitlines() if line.strip().startswith("Caused by:")]
    if causes:
        line = causes[-1].removeprefix("Caused by:").strip()
    else:
        line = next((ln.strip() for ln in text.splitlines() if ln.strip()), repr(exc))
    return line[:400]


def run_script(t_env: Any, script: str, timeout_s: float) -> str:
    """Execute every statement of ``script``; wait for the job of its INSERT (or statement
    set) to end. Returns ``"FINISHED"`` or ``"TIMEOUT"`` (the job then cancelled).

    Raises:
        Exception: PyFlink's error when a statement or the job fails.
    """
    job = None
    for statement in bound_sources(split_statements(script)):
        result = t_env.execute_sql(statement)
        if result.get_job_client() is not None:
            job = result
    if job is None:
        raise ValueError("the script has no INSERT")
    try:
        job.wait(int(timeout_s * 1000))
    except Exception as exc:
        if "TimeoutException" not in str(exc) and "timeout" not in type(exc).__name__.lower():
            raise
        job.get_job_client().cancel().result()
        return "TIMEOUT"
    return "FINISHED"


def run_cases(argv: list[str]) -> None:
    """Run every case of the manifest, appending one JSON line per case to the output file."""
    jars, parallelism, timeout_s, manifest, out_path = argv
    cases = json.loads(Path(manifest).read_text())
    with open(out_path, "a") as out:
        for case in cases:
            started = time.monotonic()
            status, error = "FAILED", None
            try:
                t_env = table_environment(jars, int(parallelism), case["name"])
                status = run_script(t_env, Path(case["script"]).read_text(), float(timeout_s))
            except Exception as exc:
                error = short_error(exc)
            row = {"name": case["name"], "status": status, "error": error}
            row["seconds"] = round(time.monotonic() - started, 1)
            out.write(json.dumps(row) + "\n")
            out.flush()
            print(f"flink: {case['name']} {status} in {row['seconds']} s", file=sys.stderr)


def _children() -> list[int]:
    """PIDs of this process's children (``/proc/self/task/*/children``)."""
    out: list[int] = []
    for task in Path("/proc/self/task").iterdir():
        try:
            out += [int(p) for p in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return out


def stop_jvm(pids: list[int], grace_s: float = JVM_STOP_GRACE_S) -> None:
    """SIGTERM the gateway JVM(s), reap them (SIGKILL after ``grace_s`` seconds)."""
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    pending = set(pids)
    while pending:
        for pid in list(pending):
            done, _status = os.waitpid(pid, os.WNOHANG)
            if done:
                pending.discard(pid)
        if pending and time.monotonic() > deadline:
            for pid in pending:
                os.kill(pid, signal.SIGKILL)
            deadline = float("inf")
        time.sleep(0.05)


def main(argv: list[str]) -> int:
    """Run the cases, then stop and reap the JVM; 0 when every case was attempted."""
    try:
        run_cases(argv)
    finally:
        stop_jvm(_children())
    return 0


if __name__ == "__main__":
    try:
        code = main(sys.argv[1:])
    except Exception:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip py4j's clean-up, which would call the stopped JVM
