"""The built-in function of a ``top_n`` item (docs/pipeline.md, "top_n"): per key, the first
``n`` rows of an updating input by an order, emitted as they change.

It runs as a process function (:class:`~kstream.operators.process.ProcessNode`) after a
``key_by`` (the PARTITION BY of Flink SQL's ``ROW_NUMBER() OVER (PARTITION BY k ORDER BY ...)
<= n``), with two states: ``rows`` (a map: row key, as JSON text, -> the row's latest record)
and ``emitted`` (a value: the ranked records it emitted last). Each record replaces its row's
record (an upsert, as the rows of a non-windowed GROUP BY arrive), the rows are ranked again
(:func:`~kstream.expr.sql_rank.rank_rows`: rows equal in every order field keep the order in
which their rows first arrived), and every rank whose record changed is emitted: the record
with its rank in the field ``rank`` (1 = first), with the key and timestamp of the record
being processed. Read as an upsert stream keyed by (key, rank), the output is Flink's Top-N
table. A row never leaves (the input has no deletes), so ranks are only ever added or
replaced, never deleted. Without ``row_key`` every record is a row of its own (an append-only
input, Flink's ``AppendOnlyTopNFunction``): a row that drops out of the first ``n`` can never
rank again, so only ``emitted`` is kept and ``rows`` stays empty.

``state_ttl`` (Flink SQL's ``table.exec.state.ttl`` on its rank functions): both states get a
processing-time TTL (:func:`~kstream.pipeline.process_item.top_n_ttl`; the process functions'
TTL, :mod:`kstream.operators.process_ttl`): a row not updated for the ttl is forgotten (it
ranks no more), and since every record of the key rewrites ``emitted``, a key idle for the ttl
starts again from nothing: its next record is emitted as rank 1.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kstream.api import Context, ProcessFunction
from kstream.errors import RecordError
from kstream.expr.compiler import compile_expression
from kstream.expr.sql_rank import rank_rows
from kstream.operators.stateless import guarded
from kstream.pipeline.process_item import TOP_N_EMITTED, TOP_N_ROWS
from kstream.pipeline.spec import TopNSpec


class TopN(ProcessFunction):
    """Rank a key's rows and emit the ranks that changed (see the module docstring).

    Args:
        top: the item's ranking: ``n``, ``row_key`` (an expression), ``order``, ``rank``.
        where: the node id, for error messages.
        keep_alive: rewrite ``emitted`` at every record, changed or not (under a ttl: a write
            restarts its life, so it lives as long as the key is written).
    """

    def __init__(self, top: TopNSpec, where: str, keep_alive: bool = False) -> None:
        self.top = top
        self.keep_alive = keep_alive
        self.row_key = _row_key(top.row_key, where) if top.row_key is not None else None
        self.rows: Any = None
        self.emitted: Any = None

    def open(self, ctx: Context) -> None:
        self.rows = ctx.state(TOP_N_ROWS)
        self.emitted = ctx.state(TOP_N_EMITTED)

    def process(self, value: Any, ctx: Context) -> None:
        if not isinstance(value, dict):
            raise RecordError("expression", f"top_n ranks records (objects), got {value!r:.80}")
        before = self.emitted.value() or []
        if self.row_key is None:  # append-only: only the ranked rows can ever rank again
            ranked = rank_rows([*before, value], self.top.n, self.top.order)
        else:
            self.rows.put(self.row_key(value), value)
            ranked = rank_rows(self.rows.values(), self.top.n, self.top.order)
        changed = False
        for i, row in enumerate(ranked):
            if i >= len(before) or before[i] != row:
                ctx.emit({**row, self.top.rank: i + 1})
                changed = True
        if changed or self.keep_alive:
            self.emitted.update(ranked)


def _row_key(text: str, where: str) -> Callable[[Any], str]:
    """The row key of a record as canonical JSON text (a map state key).

    The function raises :class:`~kstream.errors.RecordError` when the expression fails on a
    record (a bad record of the node).
    """
    evaluate = guarded(compile_expression(text, where=f"{where}.top_n.row_key"))
    return lambda value: json.dumps(
        evaluate(value), sort_keys=True, separators=(",", ":"), default=str
    )
