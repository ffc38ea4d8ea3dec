"""The columns a query can name: one table's physical and computed columns, with their types.

A computed column is replaced by its expression (``ts AS TO_TIMESTAMP_LTZ(sched_dep_ts, 3)``
reads ``sched_dep_ts`` as a TIMESTAMP_LTZ); a metadata column reads the field its source sets
from the Kafka record (``timestamp`` in epoch ms). Types are
those of :data:`kstream.sql.exprs.ColumnRef`.
"""

from __future__ import annotations

from sqlglot import exp

from kstream.sql import decimals
from kstream.sql.avro_schema import is_avro
from kstream.sql.catalog import Column, Table
from kstream.sql.exprs import Untranslatable, translate_typed

__all__ = ["JoinScope", "Scope", "projection", "sink_value", "sql_type_kind"]


_KINDS: dict[str, str] = {
    **{name: decimals.int_kind(digits) for name, digits in decimals.INT_DIGITS.items()},
    "DOUBLE": "float",
    "FLOAT": "float",
    "STRING": "str",
    "TEXT": "str",
    "VARCHAR": "str",
    "CHAR": "str",
    "BOOLEAN": "bool",
    "TIMESTAMP": "ts",
    "TIMESTAMPLTZ": "ltz",
    "TIMESTAMP_LTZ": "ltz",
}


def sql_type_kind(sql_type: str) -> str | None:
    """``BIGINT`` -> ``int`` (of 19 digits), ``DECIMAL(10, 2)`` -> ``decimal`` (with its
    precision and scale), ``TIMESTAMP_LTZ(3)`` -> ``ltz``; None for other types."""
    return decimals.decimal_type(sql_type) or _KINDS.get(
        sql_type.split("(")[0].replace(" ", "_").upper()
    )


def sink_value(sql_type: str, text: str, kind: str | None, avro: bool = False) -> str:
    """Expression ``text`` (of type ``kind``) as Flink's ``json`` format writes a column of
    ``sql_type``: a DOUBLE is a float (``2.0``), a DECIMAL(p, s) a :class:`decimal.Decimal`
    rounded HALF_UP to ``s`` (Flink's implicit cast on INSERT; NULL beyond ``p`` digits),
    timestamps are text (``sql_timestamp``); a column without a type (the fields of records
    kstream makes) takes the value as it is. With ``avro`` (an Avro sink), as Flink's ``avro``
    format writes it: timestamps stay epoch ms, a DECIMAL is its Avro ``decimal`` bytes.

    Raises:
        Untranslatable: a DECIMAL value into an integer column (Flink refuses it too).
    """
    target = sql_type_kind(sql_type)
    if sql_type == "AUTO":  # kstream sql's result table: as the value's own type
        target = kind
    if target == "float":
        return f"float({text})"
    if isinstance(target, decimals.SqlDecimal) and sql_type != "AUTO":
        fitted = f"dec_cast({text}, {target.precision}, {target.scale})"
        return f"dec_avro({fitted}, {target.scale})" if avro else fitted
    if target == "int" and kind == "decimal":
        raise Untranslatable(None, f"a DECIMAL value into the {sql_type} column: CAST it")
    if avro and target in ("ts", "ltz") and kind in ("ts", "ltz"):
        return text
    if target == "ts" and kind in ("ts", "ltz"):
        return f"sql_timestamp({text})"
    if target == "ltz" and kind in ("ts", "ltz"):
        return f"sql_timestamp_ltz({text})"
    return text


def projection(scope: Scope, select: exp.Select, sink: Table) -> dict[str, str]:
    """The sink's fields: each SELECT item (by position, as Flink maps an INSERT) over
    ``scope``, as the sink column's type writes it (:func:`sink_value`)."""
    avro = is_avro(sink)
    return {
        column.name: sink_value(column.type, *scope.expr(item.unalias()), avro)
        for column, item in zip(sink.columns, select.expressions, strict=True)
    }


def json_timestamp_standard(table: Table) -> str | None:
    """The ``'json.timestamp-format.standard'`` of a json ``table`` (``'value.json...'`` with
    ``'value.format'``): ``SQL`` (the default) or ``ISO-8601``; None for another value."""
    key = "value.json.timestamp-format.standard" if "value.format" in table.options else ""
    value = table.options.get(key or "json.timestamp-format.standard", "SQL").upper()
    return value if value in ("SQL", "ISO-8601") else None


def _avro_column(field: str, kind: str | None) -> tuple[str, str | None]:
    """A physical column of an Avro table: the decoded field, as kstream holds its type."""
    if isinstance(kind, decimals.SqlDecimal):
        return f"avro_dec({field}, {kind.scale})", kind
    return field, kind


class Scope:
    """Resolves column references of a query over ``table``; a physical column ``c`` reads as
    the field ``<prefix>c`` (a join's flattened record: ``l__c``, ``r__c``)."""

    def __init__(
        self,
        table: Table,
        prefix: str = "",
        extra: dict[str, tuple[str, str | None]] | None = None,
    ) -> None:
        self.table = table
        self.prefix = prefix
        #: columns beyond the table's: name -> (expression, type) (a window join's bounds)
        self.extra = extra or {}
        self._resolving: set[str] = set()

    def expr(self, node: exp.Expression) -> tuple[str, str | None]:
        """``node`` as a kstream expression and its type.

        Raises:
            Untranslatable: an unknown column or construct.
        """
        return translate_typed(node, self.column)

    def text(self, node: exp.Expression) -> str:
        return self.expr(node)[0]

    def column(self, col: exp.Column) -> tuple[str, str | None]:
        if col.name.lower() in self.extra:
            return self.extra[col.name.lower()]
        found = self.table.column(col.name)
        if found is None:
            raise Untranslatable(col, f"column {col.name} is not in table {self.table.name}")
        if found.computed is not None:
            return self._computed(col, found)
        if found.produced:
            return f"{self.prefix}{found.name}", found.kind
        kind = sql_type_kind(found.type)
        if found.metadata is not None and found.name.isidentifier():
            # set on the record by the source (``metadata:``); a timestamp is epoch ms
            return f"{self.prefix}{found.name}", kind
        if is_avro(self.table):  # a TIMESTAMP is epoch ms, a DECIMAL its Avro bytes
            return _avro_column(f"{self.prefix}{found.name}", kind)
        if not found.name.isidentifier():
            raise Untranslatable(col, f"column name {found.name!r} is not supported yet")
        if kind in ("ts", "ltz"):  # Flink's json text of a timestamp, as epoch ms
            standard = json_timestamp_standard(self.table.root)
            if standard is None:
                what = "'json.timestamp-format.standard' is 'SQL' or 'ISO-8601'"
                raise Untranslatable(col, what)
            field = f"{self.prefix}{found.name}"
            return f"sql_parse_timestamp({field}, '{kind}', '{standard}')", kind
        if isinstance(kind, decimals.SqlDecimal):  # a JSON number read as DECIMAL(p, s)
            return f"dec_cast({self.prefix}{found.name}, {kind.precision}, {kind.scale})", kind
        if kind == "float":  # Flink's json format reads an integral number as a DOUBLE too
            return f"float({self.prefix}{found.name})", kind
        return f"{self.prefix}{found.name}", kind

    def _computed(self, col: exp.Column, found: Column) -> tuple[str, str | None]:
        assert found.computed is not None
        if found.name in self._resolving:
            raise Untranslatable(col, f"computed column {found.name} refers to itself")
        self._resolving.add(found.name)
        try:
            if found.base is not None:  # a view's column: its expression over the view's table
                return Scope(found.base, self.prefix).expr(found.computed)
            return self.expr(found.computed)
        finally:
            self._resolving.discard(found.name)


class JoinScope(Scope):
    """Columns of a join of two tables, each known by its alias (or name): ``f.origin`` reads
    the left table's ``origin``, an unqualified column the one table that has it."""

    def __init__(self, sides: list[tuple[str, Scope]]) -> None:
        super().__init__(sides[0][1].table)
        self.sides = sides

    def column(self, col: exp.Column) -> tuple[str, str | None]:
        return self.side_of(col).column(col)

    def side_of(self, col: exp.Column) -> Scope:
        """The scope of the table ``col`` belongs to.

        Raises:
            Untranslatable: an unknown alias, or an unqualified name both tables have.
        """
        qualifier = col.table.lower()
        if qualifier:
            for alias, scope in self.sides:
                if alias.lower() == qualifier:
                    return scope
            raise Untranslatable(col, f"{col.table} is not a table of this query")
        having = [
            scope
            for _, scope in self.sides
            if scope.table.column(col.name) is not None or col.name.lower() in scope.extra
        ]
        if len(having) == 1:
            return having[0]
        what = "is in both tables: qualify it" if having else "is in neither table"
        raise Untranslatable(col, f"column {col.name} {what}")
