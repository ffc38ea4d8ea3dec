"""Hints for SQL habits in an expression that does not parse (``AND`` -> ``and``, ``=`` -> ``==``).

:func:`sql_hints` scans the tokens of the text (never evaluating anything) for SQL spellings
that are not valid in the expression language, which follows Python's syntax, and says how to
write each in kstream. The parser appends them to its syntax error, so
``dep_delay > 10 AND origin = 'JFK'`` reports "write `and` instead of `AND`; use `==` to compare
(`=` assigns)".
"""

from __future__ import annotations

import io
import tokenize

__all__ = ["sql_hints"]

_KEYWORDS = {"and", "or", "not", "is", "in"}
_WORDS = {
    "BETWEEN": "write `low <= x <= high` instead of `BETWEEN`",
    "LIKE": "use startswith(s, p), endswith(s, p) or contains(s, p) instead of `LIKE`",
    "CASE": "write `a if condition else b` instead of `CASE WHEN`",
}
_NULL_TESTS = {
    ("IS", "NULL"): "write `x is None` instead of `x IS NULL`",
    ("IS", "NOT", "NULL"): "write `x is not None` instead of `x IS NOT NULL`",
}


def _tokens(text: str) -> list[tokenize.TokenInfo]:
    tokens: list[tokenize.TokenInfo] = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            tokens.append(token)
    except (tokenize.TokenError, SyntaxError):  # e.g. an unclosed bracket: keep what was read
        pass
    return tokens


def _null_test(words: list[str], i: int) -> tuple[str, int] | None:
    """The hint for ``IS [NOT] NULL`` starting at ``words[i]``, and how many words it spans."""
    for spelling, hint in _NULL_TESTS.items():
        found = words[i : i + len(spelling)]
        sql = found[0] != "is" or found[-1] != "null"  # `x is null` is valid kstream
        if tuple(w.upper() for w in found) == spelling and sql:
            return hint, len(spelling)
    return None


def _word_hint(word: str) -> str | None:
    if word.lower() in _KEYWORDS and word != word.lower():
        return f"write `{word.lower()}` instead of `{word}`"
    if word.upper() == "NULL" and word not in ("null", "None"):
        return f"write `null` instead of `{word}`"
    return _WORDS.get(word.upper())


def _operator_hint(token: tokenize.TokenInfo, following: tokenize.TokenInfo | None) -> str | None:
    adjacent = following is not None and following.start == token.end
    if token.string == "=":
        return "use `==` to compare (`=` assigns)"
    if token.string == "<" and adjacent and following is not None and following.string == ">":
        return "use `!=` instead of `<>`"
    if token.string == "|" and adjacent and following is not None and following.string == "|":
        return "use concat(a, b) instead of `||`"
    return None


def sql_hints(text: str) -> list[str]:
    """Hints for the SQL spellings in ``text``, in order of appearance, each once.

    Returns:
        e.g. ``["write `and` instead of `AND`", "use `==` to compare (`=` assigns)"]``; empty
        when nothing looks like SQL.
    """
    tokens = [t for t in _tokens(text) if t.type in (tokenize.NAME, tokenize.OP)]
    words = [t.string if t.type == tokenize.NAME else "" for t in tokens]
    hints: list[str] = []
    i = 0
    while i < len(tokens):
        token, hint, span = tokens[i], None, 1
        if token.type == tokenize.NAME:
            found = _null_test(words, i)
            hint, span = found if found else (_word_hint(token.string), 1)
        else:
            hint = _operator_hint(token, tokens[i + 1] if i + 1 < len(tokens) else None)
        if hint and hint not in hints:
            hints.append(hint)
        i += span
    return hints
