"""The ``kstream`` command group. Each command lives in its own module and is registered here."""

from __future__ import annotations

import click

from kstream import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kstream")
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """kstream: stream processing on Kafka with event time, windows, state and exactly-once.

    \b
    Example (the flights, counted per origin and hour, on a local broker):
      kstream broker                  # in another terminal; Ctrl-C stops it
      kstream produce flights --dataset nycflights13 --partitions 4
      kstream run examples/flights-hourly.yaml --bounded
      kstream tail flights-hourly --from-beginning --max 20
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register() -> None:
    from kstream_cli import (
        broker_cmd,
        pipeline_cmd,
        produce_cmd,
        reset_cmd,
        run_cmd,
        savepoint_cmd,
        schema_cmd,
        sql_cmd,
        state_cmd,
        status_cmd,
        tail_cmd,
        top_cmd,
    )

    cli.add_command(broker_cmd.broker)
    cli.add_command(produce_cmd.produce)
    cli.add_command(tail_cmd.tail)
    cli.add_command(run_cmd.run)
    cli.add_command(pipeline_cmd.validate)
    cli.add_command(pipeline_cmd.plan)
    cli.add_command(schema_cmd.schema)
    cli.add_command(status_cmd.status)
    cli.add_command(top_cmd.top)
    cli.add_command(savepoint_cmd.savepoint)
    cli.add_command(state_cmd.state)
    cli.add_command(reset_cmd.reset)
    cli.add_command(sql_cmd.sql)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(obj={})


if __name__ == "__main__":
    main()
