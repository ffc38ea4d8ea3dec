"""``kstream broker``: run a local Kafka broker in the foreground (Tansu or Apache Kafka)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click
from kstream_cli.errors import handle_errors
from kstream_cli.options import BOOTSTRAP_ENVVAR

from kstream.errors import UsageError
from kstream.tools import ENGINES, new_broker


@click.command()
@click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default="tansu",
    show_default=True,
    help="tansu: embedded, in-memory, no Java. kafka: Apache Kafka 4 (single-node KRaft; "
    "needs Java 17+, its jars are resolved from Maven Central once).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=9092,
    show_default=True,
    help="TCP port on 127.0.0.1.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="kafka only: keep the broker's data in this folder, across restarts "
    "(default: a temporary folder, removed on stop).",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append the broker's own output to this file (default: not kept).",
)
@handle_errors
def broker(engine: str, port: int, data_dir: Path | None, log_file: Path | None) -> None:
    """Run a local Kafka broker on 127.0.0.1 until Ctrl-C.

    The default engine, Tansu, keeps everything in memory: it is lost when the broker stops.
    With --engine kafka it is Apache Kafka itself; with --data-dir its data survives a restart.
    Exits 0 on Ctrl-C or SIGTERM, non-zero with a one-line error if the port is taken, Java
    or Maven is missing, or the broker process dies.

    \b
    Examples:
      kstream broker
      kstream broker --engine kafka --port 9093 --data-dir ./kafka-data --log-file kafka.log
    """
    if data_dir is not None and engine != "kafka":
        raise UsageError("--data-dir needs --engine kafka (Tansu keeps its data in memory)")
    stop = threading.Event()
    local = new_broker(engine, log_path=log_file, data_dir=data_dir)
    with _stop_on_signals(stop), local.start(port):
        click.echo(
            f"kstream broker listening on {local.bootstrap} ({local.describe()}; Ctrl-C to stop)"
        )
        click.echo(f"  export {BOOTSTRAP_ENVVAR}={local.bootstrap}")
        while not stop.wait(0.25):
            local.check_alive()
        click.echo("stopping broker", err=True)


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT/SIGTERM instead of raising; restore the old handlers afterwards."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
