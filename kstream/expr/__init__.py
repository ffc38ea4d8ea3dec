"""The safe expression language and user-defined Python functions.

:func:`kstream.expr.compiler.compile_expression` turns an expression into an
:class:`kstream.expr.expression.Expression` (parsed and checked in :mod:`kstream.expr.syntax`,
calling only what :mod:`kstream.expr.functions` allows); :mod:`kstream.expr.udf` resolves the
``python: module:function`` escape hatch.
"""
