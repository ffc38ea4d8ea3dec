"""Click options shared by several ``kstream`` commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

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
