"""Click options shared by several ``kstream`` commands."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

F = TypeVar("F", bound=Callable[..., Any])

#: Environment variable read by ``--bootstrap-servers``.
BOOTSTRAP_ENVVAR = "KSTREAM_BOOTSTRAP_SERVERS"
#: Where ``kstream broker`` listens by default.
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def bootstrap_option(func: F) -> F:
    """Add ``--bootstrap-servers HOST:PORT[,HOST:PORT...]`` to a command.

    The value reaches the command as the keyword argument ``bootstrap_servers`` (``str``):
    the option, else ``$KSTREAM_BOOTSTRAP_SERVERS``, else ``127.0.0.1:9092``.
    """
    return click.option(
        "--bootstrap-servers",
        "bootstrap_servers",
        envvar=BOOTSTRAP_ENVVAR,
        default=DEFAULT_BOOTSTRAP,
        show_default=True,
        show_envvar=True,
        metavar="HOST:PORT",
        help="Kafka bootstrap servers (comma-separated).",
    )(func)


def job_options(func: F) -> F:
    """Add the options that locate a running job: ``--bootstrap-servers`` (default: the
    pipeline's ``kafka: bootstrap.servers``, else the local default), ``--state-dir`` and
    ``--group``; they reach the command as ``bootstrap_servers``, ``state_dir``, ``group``."""
    func = click.option(
        "--group", help="Consumer group id (default: the pipeline's group or name)."
    )(func)
    func = click.option(
        "--state-dir",
        default=".kstream-state",
        show_default=True,
        type=click.Path(file_okay=False),
        help="Local RocksDB state directory.",
    )(func)
    return click.option(
        "--bootstrap-servers",
        "bootstrap_servers",
        envvar=BOOTSTRAP_ENVVAR,
        metavar="HOST:PORT",
        help=f"Kafka bootstrap servers [env {BOOTSTRAP_ENVVAR}; default: the pipeline's "
        f"kafka: bootstrap.servers, else {DEFAULT_BOOTSTRAP}].",
    )(func)


def stdout_console() -> Console:
    """A console for tables on stdout: terminal width on a terminal; piped output (scripts,
    tests) gets wide lines instead of wrapped or truncated cells."""
    return Console(width=None if sys.stdout.isatty() else PIPED_TABLE_WIDTH)


#: Width of tables written to a pipe (characters).
PIPED_TABLE_WIDTH = 400


def output_format(chosen: str | None) -> str:
    """``--output`` as chosen, else ``table`` on a terminal and ``jsonl`` when piped."""
    return chosen or ("table" if sys.stdout.isatty() else "jsonl")


def output_option(row: str, document: str | None = None) -> Callable[[F], F]:
    """Add ``--output``/``-o`` ``table|jsonl`` (and ``json`` when ``document`` describes one) to a
    table-printing command, the same way everywhere (docs/cli.md).

    The command receives ``output`` (``str``) already resolved by :func:`output_format`: as
    chosen, else ``table`` on a terminal and ``jsonl`` when stdout is piped.

    Args:
        row: what one jsonl line is, e.g. ``"task"`` (the help says "one JSON object per task").
        document: what ``json`` prints (one document), or None when there is no ``json``.
    """
    choices = ["table", "jsonl"] + (["json"] if document else [])
    rows = f"jsonl (one JSON object per {row})"
    text = f"table (rich), {rows} or json ({document})" if document else f"table (rich) or {rows}"
    return click.option(
        "--output",
        "-o",
        type=click.Choice(choices),
        callback=lambda _ctx, _param, value: output_format(value),
        help=f"{text}. Default: table on a terminal, jsonl when piped.",
    )
