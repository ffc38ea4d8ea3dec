"""Mapping of kstream errors to one-line messages and exit codes (traceback only with --debug)."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from kstream.errors import ConfigError, KStreamError
from kstream.pipeline.view import redact

F = TypeVar("F", bound=Callable[..., Any])


def _debug_enabled() -> bool:
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx else None
    return bool(root and root.obj and root.obj.get("debug"))


def handle_errors(func: F) -> F:
    """Decorate a click command: a :class:`KStreamError` becomes ``error: ...`` on stderr and
    the error's ``exit_code``; a :class:`ConfigError` prints one line per issue. The values of
    secret settings seen by the process are masked (:func:`kstream.pipeline.view.redact`). With
    ``--debug`` the traceback is re-raised instead."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except KStreamError as exc:
            if _debug_enabled():
                raise
            _report(exc)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _report(exc: KStreamError) -> None:
    if isinstance(exc, ConfigError):
        for issue in exc.issues:
            click.echo(f"error: {redact(issue.render())}", err=True)
        return
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    click.echo(f"error: {redact(message)}", err=True)
