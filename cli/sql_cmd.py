"""``kstream sql``: run a SELECT over Kafka topics and watch its result (Flink's SQL client).

The query runs as a kstream job of its own (a unique group and internal topics, a temporary
state directory) writing to a result topic, which the command follows and folds into rows or a
table (:mod:`kstream_cli.sql_screen`). When the query ends (``--bounded``: the end of the
input; otherwise Ctrl-C) the job stops and its topics, group and state are deleted.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import click
import orjson
from kstream_cli.errors import handle_errors
from kstream_cli.options import bootstrap_option, output_option
from kstream_cli.sql_repl import read_statements
from kstream_cli.sql_screen import ResultView
from kstream_cli.tail_cmd import consume_records, decode_value
from rich.console import Console
from rich.live import Live

from kstream.errors import KStreamError, UsageError
from kstream.graph.plan import Plan, build_plan
from kstream.io import kafka
from kstream.pipeline.spec import WindowSpec
from kstream.runtime.lifecycle import RunOptions
from kstream.runtime.reset import connect, delete_topics, internal_topics
from kstream.runtime.runner import Runner
from kstream.sql import load_sql_text
from kstream.sql.script import parse_script

_POLL_S = 0.2
_DELETE_WAIT_S = 30.0


@click.command(
    epilog="""\b
Examples:
  kstream sql tables.sql -e "SELECT origin, COUNT(*) AS n FROM flights GROUP BY origin" --bounded
  kstream sql tables.sql -e "SELECT * FROM flights WHERE dep_delay > 120" -o jsonl --bounded
  kstream sql tables.sql        (a prompt: CREATE TABLE, SET, and SELECT to run)
"""
)
@click.argument(
    "script", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("-e", "--execute", "query", help="Run this SELECT, then exit.")
@click.option(
    "--bounded", is_flag=True, help="Read the inputs to their end, show the result, exit."
)
@click.option("--max-rows", default=40, show_default=True, help="Rows the table shows.")
@output_option(
    "result row; of an updating result, each change with an op field, +I, +U or -D, or with "
    "--bounded the rows of its final table"
)
@bootstrap_option
@handle_errors
def sql(
    script: Path | None,
    query: str | None,
    bounded: bool,
    max_rows: int,
    output: str,
    bootstrap_servers: str,
) -> None:
    """Run a SELECT over topics and show its result as it changes (Flink's SQL client).

    SCRIPT holds the CREATE TABLE, CREATE VIEW and SET statements the queries use (docs/sql.md).
    With -e the query runs once; without it a prompt reads statements, running each SELECT
    until Ctrl-C (or the end of the input with --bounded). An append-only query shows its rows
    as they come; an updating one (GROUP BY without a window, deduplication) shows its table,
    a row per key. Each query runs as a job of its own, whose topics, group and state are
    deleted when it ends.
    """
    init = script.read_text(encoding="utf-8") if script is not None else ""
    if init.strip():  # syntax errors before any prompt; jobs belong to kstream run
        parsed = parse_script(init, str(script))
        if parsed.has_insert:
            raise UsageError(
                f"{script} has INSERT INTO statements: kstream sql takes the CREATE TABLE, "
                f"CREATE VIEW and SET statements its queries use; run the job with kstream run"
            )
    if query is not None:
        run_query(init, query, bounded, max_rows, output, bootstrap_servers)
        return
    for statement in read_statements(sys.stdin):
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            try:
                run_query(init, statement, bounded, max_rows, output, bootstrap_servers)
            except KStreamError as exc:
                click.echo(f"error: {exc}", err=True)
        else:
            try:
                parse_script(init + "\n" + statement + ";", "<prompt>")
                init += "\n" + statement + ";"
                click.echo("ok", err=True)
            except KStreamError as exc:
                click.echo(f"error: {exc}", err=True)


def run_query(
    init: str, query: str, bounded: bool, max_rows: int, output: str, bootstrap: str
) -> None:
    """Run ``query`` as a job, follow its result topic, then delete what the job made.

    Raises:
        ConfigError: the query does not compile.
        KStreamError: the job failed.
    """
    name = f"kstream-sql-{uuid.uuid4().hex[:10]}"
    topic = f"{name}.result"
    text = f"{init}\nSET 'pipeline.name' = '{name}';\n{query.strip().rstrip(';')};\n"
    spec = load_sql_text(text, "<kstream sql>", result_topic=topic)
    updating = any(isinstance(op, WindowSpec) and op.type == "global" for op in spec.operators)
    plan = build_plan(spec)
    view = ResultView(updating, max_rows)
    with tempfile.TemporaryDirectory(prefix="kstream-sql-") as state_dir:
        job = _Job(Runner(plan, RunOptions(bootstrap, state_dir, bounded)))
        try:
            _show(job, view, topic, bootstrap, output, " ".join(query.split())[:80], bounded)
        finally:
            job.stop()
            _clean_up(plan, topic, bootstrap)
    if job.error is not None:
        raise job.error


class _Job:
    """The query's runner on a thread of its own; its failure, if any, in :attr:`error`."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="kstream-sql-job", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.runner.run()
        except BaseException as exc:  # reported by the command, after clean-up
            self.error = exc

    @property
    def done(self) -> bool:
        return not self.thread.is_alive()

    def stop(self) -> None:
        self.runner.request_stop()
        self.thread.join()


def _write_jsonl(lines: list[Any]) -> None:
    for line in lines:
        sys.stdout.buffer.write(orjson.dumps(line) + b"\n")
    sys.stdout.flush()


def _show(
    job: _Job, view: ResultView, topic: str, bootstrap: str, output: str, title: str, bounded: bool
) -> None:
    console = Console()
    live = Live(console=console, auto_refresh=False) if output == "table" else None
    try:
        if live is not None:
            live.start()
        final_only = bounded and view.updating  # a bounded updating query: its final table
        for batch, status in _follow(job, topic, bootstrap):
            lines = [view.add(key, value) for key, value in batch]
            if live is not None:
                live.update(view.render(f"kstream sql · {title}", status), refresh=True)
            elif not final_only:
                _write_jsonl(lines)
        if live is None and final_only:
            _write_jsonl(list(view.table.values()))
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.update(view.render(f"kstream sql · {title}", "stopped"), refresh=True)
            live.stop()


def _follow(job: _Job, topic: str, bootstrap: str) -> Any:
    """``(records, status)`` batches of the result topic until the job has ended and every
    partition has been read to its end; ``records`` are ``(key, value)`` decoded as JSON."""
    partitions = _wait_for_topic(job, topic, bootstrap)
    if partitions is None:
        return
    conf = kafka.consumer_config(bootstrap, f"{topic}-reader", {})
    consumer = kafka.new_consumer(conf)
    try:
        consumer.assign(
            [kafka.topic_partition(topic, p, kafka.OFFSET_BEGINNING) for p in range(partitions)]
        )
        at_end: set[int] = set()
        while True:
            done = job.done  # read before consuming: nothing is written after it
            batch = consume_records(consumer, 5_000, at_end)
            records = [(decode_value(m.key()), decode_value(m.value())) for m in batch]
            status = "finished" if done else "running (Ctrl-C stops)"
            yield records, status
            if done and len(at_end) == partitions:
                return
    finally:
        consumer.close()


def _wait_for_topic(job: _Job, topic: str, bootstrap: str) -> int | None:
    admin = kafka.Admin(bootstrap)
    while True:
        partitions = admin.topics().get(topic)
        if partitions is not None or job.done:
            return partitions
        job.thread.join(_POLL_S)


def _clean_up(plan: Plan, topic: str, bootstrap: str) -> None:
    """Delete the job's topics (internal and result) and its consumer group."""
    broker = connect(plan, bootstrap)
    try:
        delete_topics(broker, [*internal_topics(plan), topic], _DELETE_WAIT_S)
        broker.delete_group()
    except KStreamError as exc:
        click.echo(f"warning: could not clean up after the query: {exc}", err=True)
    finally:
        broker.close()
