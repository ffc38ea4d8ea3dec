"""``kstream broker``: run the local in-memory Kafka-compatible broker (Tansu) in the foreground."""

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

from kstream.broker import LocalBroker, tansu_version


@click.command()
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=9092,
    show_default=True,
    help="TCP port on 127.0.0.1.",
)
@click.option(
    "--log-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Append the broker's own output to this file (default: not kept).",
)
@handle_errors
def broker(port: int, log_file: Path | None) -> None:
    """Run a local Kafka-compatible broker (Tansu, in-memory) until Ctrl-C.

    Everything it stores is lost when it stops. Exits 0 on Ctrl-C or SIGTERM, non-zero with a
    one-line error if the port is taken or the broker process dies.
    """
    stop = threading.Event()
    with _stop_on_signals(stop), LocalBroker(log_path=log_file).start(port) as local:
        click.echo(
            f"kstream broker listening on {local.bootstrap} "
            f"(Tansu {tansu_version()}, in-memory; Ctrl-C to stop)"
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
