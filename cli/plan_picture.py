"""``kstream plan --output text|mermaid|dot|svg``: the job graph as a picture.

``text``, ``mermaid`` and ``dot`` are written by :mod:`kstream.graph.render` (pure Python);
``svg`` is the DOT laid out by Graphviz's ``dot`` program, run here when it is on PATH.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from kstream_cli.options import output_format

from kstream.errors import KStreamError, UsageError
from kstream.graph.plan import Plan
from kstream.graph.render import render

F = TypeVar("F", bound=Callable[..., Any])

#: The ``--output`` values of ``kstream plan`` that draw the job graph.
PICTURES = ("text", "mermaid", "dot", "svg")
#: How long ``dot`` may take to lay out a graph (seconds).
DOT_TIMEOUT_S = 60.0
#: The one-line error when ``--output svg`` finds no ``dot`` program.
NO_DOT = (
    "--output svg needs Graphviz's 'dot' program, which is not on PATH: install Graphviz "
    "(Debian/Ubuntu: apt-get install graphviz; macOS: brew install graphviz), or write DOT "
    "with --output dot and render it elsewhere"
)


def plan_output_option(func: F) -> F:
    """Add ``--output``/``-o`` to ``kstream plan``: the table outputs of every table-printing
    command (``table``, ``jsonl``, ``json``; docs/cli.md) and the pictures :data:`PICTURES`.
    The command receives ``output`` (``str``) resolved by
    :func:`kstream_cli.options.output_format` (default: ``table`` on a terminal, ``jsonl`` when
    piped)."""
    return click.option(
        "--output",
        "-o",
        type=click.Choice(["table", "jsonl", "json", *PICTURES]),
        callback=lambda _ctx, _param, value: output_format(value),
        help="table (rich), jsonl (one JSON object per stage or topic), json (the whole plan), "
        "or the job graph as a picture: text (plain), mermaid (flowchart), dot (Graphviz) or "
        "svg (laid out by Graphviz's dot program, which must be installed). Default: table on "
        "a terminal, jsonl when piped.",
    )(func)


def echo_picture(job: Plan, output: str) -> None:
    """Print ``job``'s graph on stdout as ``output`` (one of :data:`PICTURES`).

    Raises:
        UsageError: ``svg`` without Graphviz's ``dot`` on PATH.
        KStreamError: ``dot`` failed or timed out.
    """
    if output == "svg":
        svg = dot_to_svg(render(job, "dot"))
        sys.stdout.buffer.write(svg)
        sys.stdout.buffer.flush()
    else:
        click.echo(render(job, output), nl=False)


def dot_to_svg(dot_source: str) -> bytes:
    """``dot_source`` laid out as SVG by ``dot -Tsvg`` (Graphviz, found on PATH).

    Raises:
        UsageError: no ``dot`` on PATH (:data:`NO_DOT`).
        KStreamError: ``dot`` exited non-zero (its first error line) or took longer than
            :data:`DOT_TIMEOUT_S`.
    """
    program = shutil.which("dot")
    if program is None:
        raise UsageError(NO_DOT)
    try:
        proc = subprocess.run(
            [program, "-Tsvg"],
            input=dot_source.encode("utf-8"),
            capture_output=True,
            timeout=DOT_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise KStreamError(f"{program} -Tsvg took longer than {DOT_TIMEOUT_S:g} s") from exc
    except OSError as exc:
        raise KStreamError(f"cannot run {program}: {exc}") from exc
    if proc.returncode != 0:
        lines = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise KStreamError(
            f"{program} -Tsvg failed (exit {proc.returncode}): {lines[0] if lines else ''}"
        )
    return proc.stdout
