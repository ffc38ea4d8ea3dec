"""The prompt of ``kstream sql``: statements read up to their ``;``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TextIO

import click

__all__ = ["read_statements"]

_QUIT = {"QUIT", "EXIT", "\\Q"}


def read_statements(stream: TextIO) -> Iterator[str]:
    """Statements typed at the prompt (``kstream sql> ``), without their ``;``; ends at end of
    input or at ``quit;``/``exit;``. The prompt shows only on a terminal."""
    interactive = stream.isatty()
    lines: list[str] = []
    while True:
        if interactive:
            click.echo("kstream sql> " if not lines else "          -> ", nl=False, err=True)
        line = stream.readline()
        if not line:
            return
        lines.append(line.rstrip("\n"))
        text = "\n".join(lines).strip()
        if text.endswith(";"):
            lines = []
            statement = text.rstrip(";").strip()
            if statement.upper() in _QUIT:
                return
            if statement:
                yield statement
