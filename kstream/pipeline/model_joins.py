"""The file models of joins and tables (see :mod:`kstream.pipeline.model`): a ``join:``
operator body and a source's ``table:`` (docs/joins.md)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool

from kstream.pipeline.model_base import Duration, Expression, FileModel, Text, absent

_HOW = "inner, left, right or full (temporal and lookup joins: inner or left)."


class Table(FileModel):
    """Read the source as a table: the latest value per key (a null value deletes)."""

    key: Expression = Field(description="The row key: an expression over the value.")
    versioned: Duration = absent("Keep versions this long of event time (temporal joins).")
    broadcast: StrictBool = Field(False, description="Every task holds the whole table.")


class JoinOn(FileModel):
    """A join key per side."""

    left: Expression = Field(description="The left input's join key (an expression).")
    right: Expression = Field(description="The right input's join key (an expression).")


class JoinWindow(FileModel):
    """The window both sides must share (window joins)."""

    type: Literal["tumbling", "sliding", "session"] = Field(description="The window type.")
    size: Duration = absent("The window length (tumbling, sliding).")
    slide: Duration = absent("The time between window starts (sliding).")
    gap: Duration = absent("The inactivity that closes a session (session).")
    offset: Duration = absent("Shift of the window boundaries (tumbling, sliding).")


class JoinBody(FileModel):
    """Join the input (`from:`, the left side) with another (`right:`)."""

    type: Literal["interval", "window", "temporal", "lookup"] = Field(
        description="interval, window, temporal (AS OF a versioned table) or lookup (a table)."
    )
    right: Text = Field(description="The right input: a node, node.port or table source.")
    on: Expression | JoinOn = Field(description="The join key: one expression or {left, right}.")
    how: Literal["inner", "left", "right", "full"] = Field("inner", description=_HOW)
    between: list[Duration] = absent("interval: [lo, hi], right.ts - left.ts within (inclusive).")
    window: JoinWindow = absent("window: the window both sides share.")
    select: dict[str, Expression] = absent("Output fields: name -> expression (default: all).")
    state_ttl: Duration = absent(
        "interval: a buffered record leaves after this long of processing time (Flink SQL's "
        "regular join state TTL; default: only its cleanup timer removes it)."
    )
