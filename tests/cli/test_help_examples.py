"""Every command's ``--help`` shows an example: each command and subcommand of the ``kstream``
group (walked recursively, so a new command is covered without being listed here) and
``python -m kstream_cli.demo``."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner
from kstream_cli import demo
from kstream_cli.main import cli


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The argv path of ``group`` and of every command below it, depth first."""
    yield path
    ctx = click.Context(group, info_name="kstream")
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        elif command is not None:
            yield (*path, name)


ALL = list(commands(cli))


def test_the_walk_finds_nested_commands() -> None:
    assert () in ALL and ("produce",) in ALL and ("schema",) in ALL
    assert any(len(path) == 2 for path in ALL)  # e.g. savepoint create


@pytest.mark.parametrize("path", ALL, ids=lambda path: " ".join(("kstream", *path)))
def test_help_has_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], obj={})
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout, f"kstream {' '.join(path)} --help has no example"


def test_demo_help_has_an_example() -> None:
    result = CliRunner().invoke(demo.main, ["--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.stdout and "make demo" in result.stdout
