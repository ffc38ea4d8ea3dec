"""Reading a Flink SQL script into statements, with positions for every error.

``EXECUTE STATEMENT SET BEGIN ... END;`` is blanked out before parsing (same length, so every
offset stays right) and its statements are marked as one set; kstream runs every ``INSERT`` of
a script as one job anyway (a consumer group), as Flink runs a statement set.

Errors are :class:`~kstream.errors.ConfigError` with ``file:line:col``, the offending text and a
hint (:func:`sql_issue`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import cast

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from kstream.errors import ConfigError, ConfigIssue
from kstream.sql.dialect import Flink

__all__ = ["Script", "SqlIssues", "parse_script"]

_SET_BEGIN = re.compile(r"\bEXECUTE\s+STATEMENT\s+SET\s+BEGIN\b", re.IGNORECASE)
_SET_END = re.compile(r"\bEND\s*;", re.IGNORECASE)


@dataclass(frozen=True)
class Script:
    """A parsed script: its ``path``, ``text`` and top-level ``statements`` in order."""

    path: str
    text: str
    statements: tuple[exp.Expression, ...]

    @property
    def has_insert(self) -> bool:
        """Whether the script writes somewhere (an ``INSERT INTO``): a job, not table
        definitions."""
        return any(isinstance(s, exp.Insert) for s in self.statements)


class SqlIssues:
    """Collects problems of one script; :meth:`raise_if_any` raises them as one ConfigError."""

    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.text = text
        self.items: list[ConfigIssue] = []

    def add(self, node: exp.Expression | None, message: str, hint: str = "") -> None:
        """Record ``message`` at ``node``'s first token (its text is quoted in the message)."""
        start, end = _span(node)
        line, col = _line_col(self.text, start) if start >= 0 else (0, 0)
        near = self.text[start : end + 1].strip() if start >= 0 else ""
        if near:
            message = f"{message} (at '{_short(near)}')"
        self.items.append(ConfigIssue(self.path, line, "", message, hint, col))

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


def parse_script(text: str, path: str) -> Script:
    """Parse the Flink SQL ``text`` (read from ``path``, used in messages).

    Raises:
        ConfigError: a syntax error, at its ``file:line:col`` with the offending text.
    """
    blanked = _blank_statement_sets(text)
    try:
        parsed = sqlglot.parse(blanked, read=Flink)
    except (ParseError, TokenError) as exc:
        raise ConfigError([_syntax_issue(exc, path)]) from exc
    statements = tuple(cast(exp.Expression, s) for s in parsed if s is not None)
    if not statements:
        hint = "write CREATE TABLE statements and an INSERT INTO ... SELECT"
        raise ConfigError([ConfigIssue(path, 0, "", "the script has no statements", hint)])
    return Script(path, text, statements)


def _blank_statement_sets(text: str) -> str:
    match = _SET_BEGIN.search(text)
    if match is None:
        return text
    end = _SET_END.search(text, match.end())
    blanked = text[: match.start()] + " " * (match.end() - match.start()) + text[match.end() :]
    if end is not None:  # a missing END is left to the parser's error
        blanked = blanked[: end.start()] + " " * (end.end() - end.start()) + blanked[end.end() :]
    return blanked


def _syntax_issue(exc: Exception, path: str) -> ConfigIssue:
    errors = getattr(exc, "errors", None) or [{}]
    first = errors[0]
    line = int(first.get("line") or 0)
    col = int(first.get("col") or 0)
    near = (first.get("highlight") or "").strip()
    what = (first.get("description") or str(exc).splitlines()[0]).strip()
    message = f"syntax error: {what}" + (f" (at '{_short(near)}')" if near else "")
    hint = "see docs/sql.md for the statements kstream reads"
    return ConfigIssue(path, line, "", message, hint, col)


def _span(node: exp.Expression | None) -> tuple[int, int]:
    """The first and last character offsets of ``node``'s tokens, (-1, -1) when unknown."""
    if node is None:
        return -1, -1
    starts = [n.meta["start"] for n in node.walk() if "start" in n.meta]
    ends = [n.meta["end"] for n in node.walk() if "end" in n.meta]
    if not starts:
        return -1, -1
    return min(starts), max(ends)


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= 60 else flat[:57] + "..."
