"""Flink SQL as a sqlglot dialect, kept in kstream (sqlglot's maintainers declined a Flink one).

Based on sqlglot's Hive dialect (backquoted identifiers, ``STRING``), it adds what Flink's DDL and
queries have that sqlglot does not parse (Flink 2.x, "SQL > CREATE statements" and "Queries >
Window Functions"):

- ``WATERMARK FOR rowtime AS expr`` inside ``CREATE TABLE (...)``:
  :class:`sqlglot.exp.WatermarkColumnConstraint` (``this`` the column, ``expression`` the
  watermark expression);
- ``col TYPE METADATA [FROM 'key'] [VIRTUAL]``: a :class:`MetadataColumn` column constraint;
- ``TABLE t`` as a function argument (window TVFs), optionally ``PARTITION BY k, ...``
  (``SESSION``): :class:`TableArgument`;
- ``DESCRIPTOR(col, ...)`` parses as a function call named ``DESCRIPTOR``.

Computed columns (``ts AS TO_TIMESTAMP_LTZ(ms, 3)``), ``PRIMARY KEY (...) NOT ENFORCED``,
``WITH ('k' = 'v')``, ``SET 'k' = 'v'`` and ``FOR SYSTEM_TIME AS OF`` already parse.
``EXECUTE STATEMENT SET BEGIN ... END;`` is handled by :mod:`kstream.sql.script` before parsing.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp
from sqlglot.dialects.hive import Hive
from sqlglot.parsers.hive import HiveParser
from sqlglot.tokens import TokenType

__all__ = ["Flink", "MetadataColumn", "TableArgument"]


class MetadataColumn(exp.Expression, exp.ColumnConstraintKind):
    """``METADATA [FROM 'key'] [VIRTUAL]``: ``this`` the key as a string literal or None (the
    column's own name), ``virtual`` True when the column is not written by a sink."""

    arg_types = {"this": False, "virtual": False}


class TableArgument(exp.Expression):
    """``TABLE t [PARTITION BY k, ...]`` as a table function argument: ``this`` the table,
    ``partition_by`` the key columns (``SESSION`` windows)."""

    arg_types = {"this": True, "partition_by": False}


def _watermark(parser: Any) -> exp.Expression:
    return parser.expression(
        exp.WatermarkColumnConstraint(
            this=parser._match(TokenType.FOR) and parser._parse_column(),
            expression=parser._match(TokenType.ALIAS) and parser._parse_disjunction(),
        )
    )


def _metadata(parser: Any) -> exp.Expression:
    key = parser._parse_string() if parser._match(TokenType.FROM) else None
    virtual = bool(parser._match_text_seq("VIRTUAL"))
    return parser.expression(MetadataColumn(this=key, virtual=virtual))


class Flink(Hive):
    """The Flink SQL dialect: ``sqlglot.parse(text, read=Flink)``."""

    class Tokenizer(Hive.Tokenizer):
        # SESSION is a window TVF in Flink, not a keyword
        KEYWORDS = {k: v for k, v in Hive.Tokenizer.KEYWORDS.items() if k != "SESSION"}

    class Parser(HiveParser):
        STRICT_CAST = True  # Flink's CAST fails on a bad value (TRY_CAST gives null)
        FUNCTION_PARSERS = {
            **HiveParser.FUNCTION_PARSERS,
            # JSON_VALUE(text, path [RETURNING type] [... ON EMPTY | ERROR]): exp.JSONValue
            "JSON_VALUE": lambda self: self._parse_json_value(json_path=False),
        }
        # Flink's meaning differs from Hive's: read as plain calls, translated by kstream.sql.exprs
        FUNCTIONS = {
            k: v
            for k, v in HiveParser.FUNCTIONS.items()
            if k not in ("DATE_FORMAT", "TIMESTAMPDIFF", "TIMESTAMPADD", "MOD", "JSON_VALUE")
        }
        CONSTRAINT_PARSERS = {
            **HiveParser.CONSTRAINT_PARSERS,
            "WATERMARK": _watermark,
            "METADATA": _metadata,
        }
        SCHEMA_UNNAMED_CONSTRAINTS = {*HiveParser.SCHEMA_UNNAMED_CONSTRAINTS, "WATERMARK"}

        def _parse_lambda(self, alias: bool = False) -> exp.Expr | None:
            table = self._parse_table_argument()
            if table is not None:
                return table
            if (
                self._curr
                and self._next
                and self._next.token_type == TokenType.FARROW
                and self._peek_table(2)
            ):
                name = exp.var(self._curr.text.upper())
                self._advance(2)
                return self.expression(
                    exp.Kwarg(this=name, expression=self._parse_table_argument())
                )
            return super()._parse_lambda(alias)

        def _peek_table(self, ahead: int) -> bool:
            """Whether the token ``ahead`` is ``TABLE`` not followed by ``(``."""
            index = self._index + ahead
            tokens = self._tokens
            if index >= len(tokens) or tokens[index].token_type != TokenType.TABLE:
                return False
            return index + 1 < len(tokens) and tokens[index + 1].token_type != TokenType.L_PAREN

        def _parse_table_argument(self) -> TableArgument | None:
            """``TABLE t [PARTITION BY k | PARTITION BY (k, ...)]``, else None (nothing read)."""
            if not self._peek_table(0):
                return None
            self._advance()
            table = self._parse_table_parts()
            keys = None
            if self._match(TokenType.PARTITION_BY):
                if self._match(TokenType.L_PAREN):
                    keys = self._parse_csv(self._parse_column)
                    self._match_r_paren()
                else:
                    column = self._parse_column()
                    keys = [column] if column is not None else []
            return self.expression(TableArgument(this=table, partition_by=keys))
